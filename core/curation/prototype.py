"""Convert a dataset in the reference prototype's format, once and losslessly, into the plugin's data model.

The prototype's hub datasets have ``person_id`` / ``camera_id`` (ints or
strings), tags ``train`` / ``query`` / ``gallery``, ``attributes`` as a
plain nested dict with Title-case values and a ``description``. After
:func:`convert_prototype_dataset`:

- ``prototype_attributes``: the original dict, unchanged;
  ``attributes``: the same facts in the plugin's schema (an embedded
  document, ``provider="prototype"``), so merge, captions, fine-tuning and
  the audit read it; generating with ``overwrite=True`` replaces it with
  fresh answers (and ``audit_attributes(gt_field="prototype_attributes")``
  compares the two);
- ``person_id`` / ``camera_id``: integers; string ids get 1, 2, ... in
  sorted order, the originals kept in ``source_person_id`` /
  ``source_camera_id``;
- ``description`` and tags stay as they are.

Running it again is a no-op. Example::

    from person_finder.core.curation.prototype import convert_prototype_dataset
    convert_prototype_dataset(load_hub_dataset("/data/prototype-hub", name="reid"))
"""

from __future__ import annotations

from .. import contract

#: ``dataset.info`` key recording the conversion (what was renamed and how ids were mapped).
CONVERSION_INFO = "person_finder_prototype_conversion"
PROTOTYPE_ATTRIBUTES_FIELD = "prototype_attributes"
SOURCE_PREFIX = "source_"


def is_prototype_dataset(samples, attributes_field=contract.ATTRIBUTES_FIELD):
    """True when ``attributes_field`` is a plain dict field (the prototype's), not the plugin's document.

    Example::

        is_prototype_dataset(load_hub_dataset("/data/prototype-hub"))   # True before convert_prototype_dataset
    """
    import fiftyone as fo

    return isinstance(samples.get_field(attributes_field), fo.DictField)


def _map_ids(dataset, field):
    """For a string id field: ``{original: 1..N}`` in sorted order; None when the ids are already integers."""
    values = [v for v in dataset.distinct(field) if v is not None]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    if all(isinstance(v, str) and v.strip().lstrip("-").isdigit() for v in values):
        return {v: int(v) for v in values}
    return {v: n for n, v in enumerate(sorted(map(str, values)), start=1)}


def convert_prototype_dataset(dataset, include_sensitive=False, attributes_field=contract.ATTRIBUTES_FIELD,
                              on_progress=None):
    """Convert ``dataset`` (see the module docstring) in place; returns a summary. A second call does nothing.

    Raises ``ValueError`` before changing anything when the dataset is
    neither in the prototype's format nor already converted.

    Example::

        convert_prototype_dataset(dataset)["attributes_converted"]
    """
    from ..attributes.prototype import from_prototype
    from ..attributes.store import to_document
    from ..progress import notify

    dataset = dataset._root_dataset
    done = dataset.info.get(CONVERSION_INFO)
    if done:
        return {**done, "already_converted": True}
    if not dataset.has_field(contract.PERSON_ID_FIELD):
        raise ValueError(f"no {contract.PERSON_ID_FIELD!r} field: not a person-crop dataset in the prototype's format")
    if not is_prototype_dataset(dataset, attributes_field):
        raise ValueError(f"{attributes_field!r} is not a plain dict field ({type(dataset.get_field(attributes_field)).__name__}"
                         "): the dataset is not in the prototype's format; nothing was changed")
    ids, originals = dataset.values(["id", attributes_field])
    docs = {i: to_document(from_prototype(a, include_sensitive), provider="prototype") for i, a in zip(ids, originals)
            if a is not None}  # converted before anything is written: a failure leaves the dataset as it was
    mappings = {field: _map_ids(dataset, field) for field in (contract.PERSON_ID_FIELD, contract.CAMERA_ID_FIELD)
                if dataset.has_field(field)}
    notify(on_progress, 0.5, "converted attributes")
    dataset.rename_sample_field(attributes_field, PROTOTYPE_ATTRIBUTES_FIELD)
    renamed = {}
    for field, mapping in mappings.items():
        if mapping is None:
            continue
        source = SOURCE_PREFIX + field
        dataset.rename_sample_field(field, source)
        dataset.set_values(field, [mapping.get(v) for v in dataset.values(source)])
        renamed[field] = source
    dataset.set_values(attributes_field, docs, key_field="id", dynamic=True)  # after the renames (FiftyOne's
    # label-schema check of a rename fails on list subfields of embedded documents)
    summary = {"samples": len(dataset), "attributes_converted": len(docs),
               "original_attributes_field": PROTOTYPE_ATTRIBUTES_FIELD, "renamed_id_fields": renamed,
               "identities": len(dataset.distinct(contract.PERSON_ID_FIELD))}
    dataset.info[CONVERSION_INFO] = summary
    dataset.save()
    notify(on_progress, 1.0, "converted")
    return {**summary, "already_converted": False}
