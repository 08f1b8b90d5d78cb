"""Reading and writing attribute records on a dataset, in chunks, with a run record.

A per-view record is stored as an embedded document (so the App sidebar can
filter on it): the schema's values, ``confidence`` (one number per
attribute), ``provider`` and ``model``.

Example::

    writer = ChunkWriter(dataset, chunk_size=32)
    writer.add(sample.id, attributes={"gender": "female", ...}, confidence={"gender": 0.9})
    writer.close()
"""

from __future__ import annotations

import datetime
import os

from .. import contract, defaults


def to_document(values, confidence=None, **extra):
    """An embedded document holding ``values`` (a dict or pydantic model) and per-attribute ``confidence``."""
    import fiftyone as fo

    if hasattr(values, "model_dump"):
        values = values.model_dump()
    doc = dict(values)
    if confidence is not None:
        doc["confidence"] = fo.DynamicEmbeddedDocument(**{k: float(v) for k, v in confidence.items()})
    doc.update({k: v for k, v in extra.items() if v is not None})
    return fo.DynamicEmbeddedDocument(**doc)


def from_document(doc, schema):
    """``(values, confidence)`` of a stored document (or its dict): ``schema``'s fields, confidences default 1."""
    if doc is None:
        return None, None
    doc = doc if isinstance(doc, dict) else doc.to_dict()  # label attributes read with values() are dicts
    values = {f: doc.get(f) for f in schema.model_fields}
    conf = doc.get("confidence") or {}
    confidence = {f: conf[f] if conf.get(f) is not None else 1.0 for f in schema.model_fields}
    return values, confidence


def check_attributes_field(samples, field=contract.ATTRIBUTES_FIELD):
    """Raise ``ValueError`` when ``field`` holds the prototype's plain dicts instead of the plugin's documents.

    Example::

        check_attributes_field(load_hub_dataset("/data/prototype-hub"))   # ValueError: convert it first
    """
    import fiftyone as fo

    if isinstance(samples.get_field(field), fo.DictField):
        raise ValueError(f"{field!r} holds plain dicts (the reference prototype's format), not Person Finder's "
                         "attribute documents: convert the dataset once with the convert_prototype_dataset operator "
                         "(core.curation.prototype), which keeps the originals; nothing was changed")


def pending(samples, field=contract.ATTRIBUTES_FIELD, overwrite=False):
    """The samples still to do: those without ``field``, or all of them with ``overwrite``."""
    if overwrite or not samples.has_field(field):
        return samples
    return samples.exists(field, False)


class ChunkWriter:
    """Buffers finished samples and writes them every ``chunk_size``, so a killed run keeps what it wrote.

    A success sets ``field`` and clears ``error_field``; a failure sets
    ``error_field`` and leaves any earlier ``field`` value untouched. A
    record the database refuses (too large, ...) is not lost: it is saved
    as JSON in ``spool_dir`` (default: ``<FiftyOne dataset dir>/
    person_finder_unstored/<dataset>``), counted in ``unstored`` (not in
    ``failed``, which counts what the provider failed to answer) and its
    path becomes the sample's error; the rest of its chunk is still written.
    """

    def __init__(self, samples, field=contract.ATTRIBUTES_FIELD, error_field=contract.ATTRIBUTES_ERROR_FIELD,
                 chunk_size=defaults.ATTRIBUTES_CHUNK_SIZE, spool_dir=None):
        import fiftyone as fo

        self.dataset = samples._root_dataset
        self.spool_dir = spool_dir or os.path.join(fo.config.default_dataset_dir, "person_finder_unstored",
                                                   self.dataset.name)
        self.field = field
        self.error_field = error_field
        self.chunk_size = max(int(chunk_size), 1)
        self._done = {}
        self._errors = {}
        self.written = 0
        self.failed = 0
        self.unstored = 0
        self._ensure_fields()

    def _ensure_fields(self):
        import fiftyone as fo

        if not self.dataset.has_sample_field(self.error_field):
            self.dataset.add_sample_field(self.error_field, fo.StringField)

    def add(self, sample_id, document=None, error=None):
        """Record one finished sample: its ``document`` or its ``error`` message."""
        if document is not None:
            self._done[sample_id] = document
        else:
            self._errors[sample_id] = str(error)
        if len(self._done) + len(self._errors) >= self.chunk_size:
            self.flush()

    def flush(self):
        """Write what is buffered."""
        done, errors = self._done, self._errors
        self._done, self._errors = {}, {}
        self.failed += len(errors)
        try:
            self._write(done)
        except Exception:  # noqa: BLE001 - write one by one: only the refused records fail
            for sample_id, document in done.items():
                try:
                    self._write({sample_id: document})
                except Exception as exc:  # noqa: BLE001 - kept on disk, recorded on the sample
                    errors[sample_id] = (f"result could not be stored ({type(exc).__name__}: {str(exc)[:200]}); "
                                         f"the answer is kept in {self._spool(sample_id, document)}")
                    self.unstored += 1
        if errors:
            self._write_errors(errors)

    def _write_errors(self, errors):
        self.dataset.set_values(self.error_field, errors, key_field="id")

    def _spool(self, sample_id, document):
        """Save a refused record as JSON (the paid-for answer survives); returns its path."""
        import json

        os.makedirs(self.spool_dir, exist_ok=True)
        path = os.path.join(self.spool_dir, f"{sample_id}.json")
        with open(path, "w") as f:
            json.dump(document.to_dict(), f, default=str)
        return path

    def _write(self, done):
        if done:
            self.dataset.set_values(self.field, done, key_field="id", dynamic=True)
            self.dataset.set_values(self.error_field, {i: None for i in done}, key_field="id")
            self.written += len(done)

    def close(self):
        self.flush()


class LabelChunkWriter(ChunkWriter):
    """A :class:`ChunkWriter` for attributes of labels (the person detections of an indexed dataset).

    ``path`` is the labels' list field (``persons.detections`` or
    ``frames.persons.detections``); ``owners`` maps each label id to its
    sample id (images) or frame id (videos). ``field`` and ``error_field``
    become attributes of the labels, declared so the App can filter on them.

    Example::

        writer = LabelChunkWriter(dataset, "frames.persons.detections", {label_id: frame_id})
        writer.add(label_id, to_document({"hat": "yes"}))
        writer.close()
    """

    def __init__(self, samples, path, owners, **kwargs):
        self.path, self.owners = path, owners
        super().__init__(samples, **kwargs)

    def _ensure_fields(self):
        import fiftyone as fo

        name = f"{self.path}.{self.error_field}"
        if not self.dataset.has_field(name):
            if name.startswith("frames."):
                self.dataset.add_frame_field(name[len("frames."):], fo.StringField)
            else:
                self.dataset.add_sample_field(name, fo.StringField)

    def _set(self, attribute, values, dynamic=False):
        key = "frame_id" if self.path.startswith("frames.") else "sample_id"
        self.dataset.set_label_values(f"{self.path}.{attribute}", [
            {key: self.owners[label_id], "label_id": label_id, "value": value} for label_id, value in values.items()],
            dynamic=dynamic)

    def _write_errors(self, errors):
        self._set(self.error_field, errors)

    def _write(self, done):
        if done:
            self._set(self.field, done, dynamic=True)
            self._set(self.error_field, {i: None for i in done})
            self.written += len(done)


def save_run(samples, run_key, config, results):
    """Record a run on the dataset (``dataset.get_run_info(run_key)`` / ``load_run_results``).

    ``config`` and ``results`` are JSON-able dicts; the previous run under
    ``run_key`` is replaced. The record is always on the root dataset (a
    patches or frames view's own dataset is temporary).

    Example::

        save_run(dataset, "person_attributes", {"model": "gemini-2.5-flash"}, {"calls": 10})
        dataset.load_run_results("person_attributes").calls
    """
    dataset = samples._root_dataset
    # a generated view (patches, frames, clips) lives on a temporary dataset: the record goes to the real one
    owner = samples if samples._dataset is dataset else dataset
    config = owner.init_run(**config)
    if run_key in dataset.list_runs():
        dataset.delete_run(run_key)
    owner.register_run(run_key, config)
    finished = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    dataset.save_run_results(run_key, dataset.init_run_results(run_key, finished=finished, **results))
