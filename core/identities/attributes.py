"""Attributes of indexed persons: generated per embedded crop, merged per track or identity, on the detections.

:func:`attribute_persons` reads what ``index_persons`` wrote (a track's
keyframes in videos, every person of an image: the detections holding a
crop embedding), asks a provider for each one's attributes and writes them
on that detection (``view_attributes``, or ``attributes_error``). The zero-shot
provider needs no image at all: it compares the stored crop embedding with
the prompts of :mod:`core.attributes.zero_shot`, through the index's own
matcher. Gemini gets each crop (cut once into a cache folder). The views of
one track (video + track id; a person of an image alone) or of one identity
(after ``link_identities``) are then merged with :mod:`core.attributes.merge`
and the consensus goes on every detection of the group:
``merged_attributes`` (values, per-attribute confidence = the vote's share
times the winning views' own mean confidence, conflicts) and
``attribute_agreement``, declared so the App sidebar can filter them. A
re-run generates only for keyframes without attributes and merges again.

Example::

    from person_finder.core.identities.attributes import attribute_persons
    attribute_persons(dataset, provider="zero-shot")                 # after index_persons
    attribute_persons(dataset, provider="gemini", group_by="identity")   # after link_identities
    dataset.filter_labels("frames.persons", F("merged_attributes.backpack") == "yes")
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .. import contract, defaults
from ..progress import notify


def _persons_path(samples, persons_field):
    video = samples.media_type == "video"
    prefix = ("frames." if video else "") + persons_field
    if not (samples.has_frame_field(persons_field) if video else samples.has_sample_field(persons_field)):
        raise ValueError(f"{samples._root_dataset.name!r} has no {prefix!r} field: run index_persons first")
    return prefix + ".detections", video


def indexed_persons(samples, persons_field=contract.PERSONS_FIELD):
    """Every person detection of ``samples`` as a dict: ids, place, track, identity, embedding, attributes.

    Keys: ``label_id``, ``sample_id``, ``owner_id`` (the sample, or the frame
    in videos), ``filepath``, ``frame_number`` (None in images), ``box``,
    ``track`` (videos), ``identity``, ``embedding`` (None except on the
    detection a crop was embedded from) and ``attributes`` (its ``view_attributes`` document or None).

    Example::

        keyframes = [p for p in indexed_persons(dataset) if p["embedding"] is not None]
    """
    path, video = _persons_path(samples, persons_field)
    attrs = ["id", "bounding_box", "index", contract.EMBEDDING_ATTR, contract.IDENTITY_ATTR,
             contract.VIEW_ATTRIBUTES_ATTR]
    present = [a for a in attrs if a in ("id", "bounding_box") or samples.has_field(f"{path}.{a}")]
    fields = ["id", "filepath"] + (["frames.id", "frames.frame_number"] if video else []) + \
        [f"{path}.{a}" for a in present]
    values = samples.values(fields)
    out = []
    for sample_id, filepath, *rest in zip(*values):
        owners = zip(*rest) if video else [(sample_id, None, *rest)]
        for owner, number, *columns in owners:
            columns = [c or [] for c in columns]
            for row in zip(*columns):
                person = dict.fromkeys(attrs)
                person.update(zip(present, row))
                out.append({"label_id": person["id"], "sample_id": sample_id, "owner_id": str(owner),
                            "filepath": filepath, "frame_number": number, "box": person["bounding_box"],
                            "track": person["index"] if video else None, "identity": person[contract.IDENTITY_ATTR],
                            "embedding": person[contract.EMBEDDING_ATTR],
                            "attributes": person[contract.VIEW_ATTRIBUTES_ATTR]})
    return out


def group_key(person, group_by):
    """The merge group of a person: ``("track", video, track id)``, ``("person", label id)`` or ``("identity", n)``.

    Example::

        group_key({"sample_id": "v1", "track": 3, "identity": 7, "label_id": "x"}, "track")   # ('track', 'v1', 3)
    """
    if group_by == "identity":
        return ("identity", person["identity"]) if person["identity"] is not None else None
    if person["track"] is not None:
        return ("track", person["sample_id"], person["track"])
    return ("person", person["label_id"])


def _index_matcher(samples, brain_key):
    from ..search.gallery import checked_index, shared_matcher

    config = checked_index(samples, brain_key).get_brain_info(brain_key).config
    return shared_matcher(config.model_kwargs.get("name_or_path", defaults.MATCHER_MODEL))


def _zero_shot(samples, todo, writer, brain_key, min_confidence, batch_size, calibrated, on_progress):
    from ..attributes.schema import PersonAttributes
    from ..attributes.store import to_document
    from ..attributes.zero_shot import attributes_from_embeddings, prompt_embeddings

    model = _index_matcher(samples, brain_key)  # the stored embeddings are in its space only
    prompted = prompt_embeddings(model, PersonAttributes, calibrated)
    name = str(model.name_or_path)
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        vectors = np.stack([np.asarray(p["embedding"], dtype=np.float32) for p in batch])
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for person, (values, conf) in zip(batch, attributes_from_embeddings(model, vectors, PersonAttributes,
                                                                            min_confidence, prompted)):
            writer.add(person["label_id"], to_document(values, conf, provider="zero-shot", model=name))
        notify(on_progress, 0.8 * min(start + batch_size, len(todo)) / len(todo), "zero-shot attributes")
    writer.close()
    return {"todo": len(todo), "attributed": writer.written, "failed": writer.failed, "model": name,
            "reliability": prompted.reliability or None}


def _gemini(samples, todo, writer, crop_folder, api_key, run_key, on_progress, gemini_kwargs):
    from ..attributes.gemini import attribute_calls
    from ..search.crops import crop_files

    notify(on_progress, 0.05, "cutting crops")
    paths = crop_files(todo, crop_folder)
    for person in todo:
        if person["label_id"] not in paths:
            writer.add(person["label_id"], error="cannot read the image or frame of this person")
    jobs = [[(p["label_id"], paths[p["label_id"]])] for p in todo if p["label_id"] in paths]
    return attribute_calls(samples, jobs, writer, api_key, run_key=run_key,
                           on_progress=lambda f, label="": notify(on_progress, 0.1 + 0.7 * f, label),
                           **gemini_kwargs)


def _write_merged(samples, path, persons, group_by, accessory_min_views):
    """Merge the keyframes' attributes per group and write the consensus on every detection of each group."""
    from ..attributes.merge import merge_groups
    from ..attributes.schema import PersonAttributes
    from ..attributes.store import to_document

    members, detections = defaultdict(list), defaultdict(list)
    for person in persons:
        key = group_key(person, group_by)
        if key is None:
            continue
        detections[key].append(person)
        if person["embedding"] is not None:
            members[key].append((person["label_id"], person["attributes"]))
    merged = merge_groups(members, PersonAttributes, accessory_min_views, view_confidence=True)
    owner_key = "frame_id" if path.startswith("frames.") else "sample_id"
    docs, agreements = [], []
    for key, result in merged.items():
        doc = to_document(result.values, result.confidence, num_views=len(members[key]),
                          **{contract.CONFLICTS_ATTR: result.conflicts})
        for person in detections[key]:
            docs.append({owner_key: person["owner_id"], "label_id": person["label_id"], "value": doc})
            agreements.append({owner_key: person["owner_id"], "label_id": person["label_id"],
                               "value": result.agreement})
    if docs:
        samples._root_dataset.set_label_values(f"{path}.{contract.MERGED_ATTRIBUTES_FIELD}", docs, dynamic=True)
        samples._root_dataset.set_label_values(f"{path}.{contract.AGREEMENT_FIELD}", agreements)
    values = [m.agreement for m in merged.values()]
    return {"groups": len(merged), "groups_without_attributes": len(detections) - len(merged),
            "mean_agreement": round(float(np.mean(values)), 4) if values else None,
            "groups_with_conflicts": sum(1 for m in merged.values() if m.conflicts)}


def attribute_persons(samples, provider=defaults.ATTRIBUTES_PROVIDER, group_by=defaults.PERSON_ATTRIBUTE_GROUP,
                      persons_field=contract.PERSONS_FIELD, brain_key=contract.PERSON_INDEX_KEY, overwrite=False,
                      dry_run=False, min_confidence=defaults.ZERO_SHOT_MIN_CONFIDENCE,
                      accessory_min_views=defaults.ACCESSORY_MIN_VIEWS, crop_folder=None, api_key=None,
                      chunk_size=defaults.ATTRIBUTES_CHUNK_SIZE, run_key=contract.PERSON_ATTRIBUTES_RUN_KEY,
                      calibrated=True, on_progress=None, **gemini_kwargs):
    """Attributes for the embedded persons of an indexed image / video dataset, merged per track or identity.

    ``provider``: "zero-shot" (from the stored crop embeddings, through the
    index's own matcher, each attribute weighed by the reliability
    ``evaluate_matchers`` stored with it unless ``calibrated=False``) or "gemini" (``api_key`` or the
    ``GEMINI_API_KEY`` variable; ``gemini_kwargs``: model, concurrency,
    requests_per_minute, base_url, timeout_s, max_attempts ...). ``group_by``:
    "track" or "identity". Only keyframes without attributes are generated
    unless ``overwrite``; ``dry_run`` counts them (and, with Gemini, the calls
    and estimated tokens) without writing. Returns a summary dict.

    Example::

        attribute_persons(videos, provider="zero-shot", group_by="track")
        attribute_persons(videos, provider="gemini", group_by="identity", concurrency=4, dry_run=True)
    """
    from ..attributes import PROVIDERS
    from ..attributes.store import LabelChunkWriter

    if provider not in PROVIDERS:
        raise ValueError(f"provider={provider!r}; use one of {PROVIDERS}")
    if group_by not in defaults.PERSON_ATTRIBUTE_GROUPS:
        raise ValueError(f"group_by={group_by!r}; use one of {defaults.PERSON_ATTRIBUTE_GROUPS}")
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise ValueError(f"min_confidence={min_confidence!r}; use a number in [0, 1]")
    if int(accessory_min_views) < 1 or int(chunk_size) < 1:
        raise ValueError(f"accessory_min_views={accessory_min_views!r}, chunk_size={chunk_size!r}; "
                         "use integers >= 1")
    path, video = _persons_path(samples, persons_field)
    if group_by == "identity" and not samples.has_field(f"{path}.{contract.IDENTITY_ATTR}"):
        raise ValueError("group_by='identity' needs identities on the persons: run link_identities first, "
                         "or use group_by='track'")
    persons = indexed_persons(samples, persons_field)
    keyframes = [p for p in persons if p["embedding"] is not None]
    if not keyframes:
        raise ValueError(f"no embedded persons in {samples._root_dataset.name!r}'s {persons_field!r}: "
                         "run index_persons first")
    todo = [p for p in keyframes if overwrite or p["attributes"] is None]
    if dry_run:
        out = {"dry_run": True, "persons": len(keyframes), "todo": len(todo), "calls": 0}
        if provider == "gemini":
            from ..attributes.gemini import estimate_usage

            out.update(estimate_usage([[p["label_id"]] for p in todo]))
        return out
    summary = {"todo": 0, "attributed": 0, "failed": 0}
    if todo:
        if provider == "gemini":
            from ..attributes.gemini import resolve_api_key

            api_key = resolve_api_key(api_key)  # before anything is written
        writer = LabelChunkWriter(samples, path, {p["label_id"]: p["owner_id"] for p in todo},
                                  field=contract.VIEW_ATTRIBUTES_ATTR, chunk_size=chunk_size)
        if provider == "zero-shot":
            summary = _zero_shot(samples, todo, writer, brain_key, min_confidence, int(chunk_size), calibrated,
                                 on_progress)
        else:
            from ..search.crops import default_crop_folder

            crop_folder = crop_folder or default_crop_folder(samples._root_dataset)
            summary = _gemini(samples, todo, writer, crop_folder, api_key, run_key, on_progress, gemini_kwargs)
        persons = indexed_persons(samples, persons_field)  # with what was just written
    notify(on_progress, 0.9, "merging per " + group_by)
    merged = _write_merged(samples, path, persons, group_by, accessory_min_views)
    results = {"persons": len(keyframes), **{k: summary[k] for k in ("todo", "attributed", "failed")}, **merged}
    if provider == "zero-shot" or not todo:  # Gemini's calls already recorded the run (tokens, retries)
        from ..attributes.store import save_run

        save_run(samples, run_key, {"provider": provider, "group_by": group_by, "persons_field": persons_field,
                                    "min_confidence": float(min_confidence),
                                    "reliability": summary.get("reliability"),
                                    "accessory_min_views": int(accessory_min_views)}, results)
    notify(on_progress, 1.0, "done")
    return {**results, "provider": provider, "group_by": group_by, "run_key": run_key,
            "reliability": summary.get("reliability")}
