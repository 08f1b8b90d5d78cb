"""Identities on a dataset: the indexed tracks of every video (and persons of images) linked into people.

Reads what ``index_persons`` wrote (each track's distinct crop embeddings on
its detections), links the tracks (:mod:`.linking`), and writes on every
person detection its ``identity`` (an int, the same for one person across
videos and cameras) and ``identity_confidence``; the identity summary
(where and when each one appears) is the run ``person_identities``.

Example::

    from person_finder.core.identities import link_identities, identity_summary
    link_identities(dataset)                      # after index_persons
    identity_summary(dataset)[0]["appearances"]   # [{"filepath", "track_id", "first_frame", "last_frame"}, ...]
    dataset.filter_labels("frames.persons", F("identity") == 3)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .. import contract, defaults
from ..progress import notify


@dataclass
class Tracks:
    """The persons of ``samples`` grouped by track: one row per (sample, track id), or per image person."""

    keys: list = field(default_factory=list)          # (sample_id, track id or label id)
    filepaths: list = field(default_factory=list)
    frames: list = field(default_factory=list)        # frame numbers seen ([1] for images)
    label_ids: list = field(default_factory=list)     # every detection of the track
    vectors: list = field(default_factory=list)       # distinct embeddings of the track
    video: bool = False

    def add(self, key, filepath, frame, label_id, vector, rows):
        row = rows.get(key)
        if row is None:
            row = rows[key] = len(self.keys)
            self.keys.append(key)
            self.filepaths.append(filepath)
            self.frames.append([])
            self.label_ids.append([])
            self.vectors.append([])
        self.frames[row].append(frame)
        self.label_ids[row].append(label_id)
        if vector is not None:
            self.vectors[row].append(np.asarray(vector, dtype=np.float32))


def person_tracks(samples, persons_field=contract.PERSONS_FIELD):
    """Every indexed track of ``samples`` (videos) or person (images), with its embeddings.

    Example::

        tracks = person_tracks(dataset)
        len(tracks.keys), tracks.frames[0][:3]
    """
    video = samples.media_type == "video"
    prefix = f"frames.{persons_field}" if video else persons_field
    if not (samples.has_frame_field(persons_field) if video else samples.has_sample_field(persons_field)):
        raise ValueError(f"{samples._root_dataset.name!r} has no {prefix!r} field: run index_persons first")
    paths = ["id", "filepath", f"{prefix}.detections.id", f"{prefix}.detections.{contract.EMBEDDING_ATTR}"]
    if video:
        paths += ["frames.frame_number", f"{prefix}.detections.index"]
    values = samples.values(paths)
    tracks, rows = Tracks(video=video), {}
    for s, (sample_id, filepath) in enumerate(zip(values[0], values[1])):
        if video:
            for number, ids, vectors, indexes in zip(values[4][s], values[2][s] or [], values[3][s] or [],
                                                     values[5][s] or []):
                for label_id, vector, track in zip(ids or [], vectors or [], indexes or []):
                    tracks.add((sample_id, track if track is not None else label_id), filepath, number, label_id,
                               vector, rows)
        else:
            for label_id, vector in zip(values[2][s] or [], values[3][s] or []):
                tracks.add((sample_id, label_id), filepath, 1, label_id, vector, rows)
    return tracks


def _track_vector(vectors):
    mean = np.mean([v / np.linalg.norm(v) for v in vectors], axis=0)
    return mean / np.linalg.norm(mean)


def link_identities(samples, persons_field=contract.PERSONS_FIELD, threshold=defaults.IDENTITY_LINK_THRESHOLD,
                    neighbors=defaults.IDENTITY_LINK_NEIGHBORS, on_progress=None):
    """Link the tracks of ``samples`` into identities and write them on every person detection.

    Two tracks seen in one frame of one video (two persons of one image) are
    never one identity. Tracks without an embedding (the index run did not
    reach them) are left without identity and counted. Re-running replaces
    the identities of ``samples``' persons and the summary; nothing else is
    touched. Returns ``{"tracks", "identities", "linked_tracks",
    "unembedded_tracks", "cannot_link_pairs"}``.

    Example::

        link_identities(dataset, threshold=0.7)
        dataset.count_values("frames.persons.detections.identity")
    """
    from .linking import co_visible_pairs, link_tracks

    notify(on_progress, 0.05, "reading tracks")
    tracks = person_tracks(samples, persons_field)
    embedded = [i for i, vectors in enumerate(tracks.vectors) if vectors]
    if not embedded:
        raise ValueError(f"no embedded persons in {samples._root_dataset.name!r}'s {persons_field!r}: "
                         f"run index_persons first")
    notify(on_progress, 0.3, f"linking {len(embedded)} tracks")
    pairs = co_visible_pairs([tracks.keys[i][0] for i in embedded], [tracks.frames[i] for i in embedded])
    identity, confidence = link_tracks(np.stack([_track_vector(tracks.vectors[i]) for i in embedded]),
                                       cannot_link=pairs, threshold=threshold, neighbors=neighbors)
    notify(on_progress, 0.7, "writing identities")
    by_label, conf_by_label = {}, {}
    for row, ident, conf in zip(embedded, identity, confidence):
        for label_id in tracks.label_ids[row]:
            by_label[label_id], conf_by_label[label_id] = int(ident), float(conf)
    for row in set(range(len(tracks.keys))) - set(embedded):
        for label_id in tracks.label_ids[row]:
            by_label[label_id] = conf_by_label[label_id] = None
    prefix = f"frames.{persons_field}" if tracks.video else persons_field
    _declare(samples._root_dataset, prefix)
    samples.set_label_values(f"{prefix}.detections.{contract.IDENTITY_ATTR}", by_label)
    samples.set_label_values(f"{prefix}.detections.{contract.IDENTITY_CONFIDENCE_ATTR}", conf_by_label)
    summary = _summary(tracks, embedded, identity, confidence)
    _record(samples, persons_field, threshold, neighbors, summary)
    notify(on_progress, 1.0, "done")
    return {"tracks": len(tracks.keys), "identities": len(summary), "linked_tracks": len(embedded),
            "unembedded_tracks": len(tracks.keys) - len(embedded), "cannot_link_pairs": len(pairs)}


def _declare(dataset, prefix):
    import fiftyone.core.fields as fof

    video = prefix.startswith("frames.")
    has, add = (dataset.has_frame_field, dataset.add_frame_field) if video else \
        (dataset.has_sample_field, dataset.add_sample_field)
    base = prefix[len("frames."):] if video else prefix
    for attr, ftype in ((contract.IDENTITY_ATTR, fof.IntField), (contract.IDENTITY_CONFIDENCE_ATTR, fof.FloatField)):
        if not has(f"{base}.detections.{attr}"):
            add(f"{base}.detections.{attr}", ftype)


def _summary(tracks, embedded, identity, confidence):
    people = defaultdict(list)
    for row, ident, conf in zip(embedded, identity, confidence):
        sample_id, track = tracks.keys[row]
        people[int(ident)].append({
            "sample_id": sample_id, "filepath": tracks.filepaths[row],
            "track_id": int(track) if tracks.video and not isinstance(track, str) else None,
            "label_id": tracks.label_ids[row][0], "first_frame": int(min(tracks.frames[row])),
            "last_frame": int(max(tracks.frames[row])), "confidence": round(float(conf), 4)})
    return [{"identity": ident, "tracks": len(seen), "samples": len({a["sample_id"] for a in seen}),
             "appearances": sorted(seen, key=lambda a: (a["filepath"], a["first_frame"]))}
            for ident, seen in sorted(people.items())]


def _record(samples, persons_field, threshold, neighbors, summary):
    dataset = samples._root_dataset
    config = dataset.init_run(persons_field=persons_field, threshold=float(threshold), neighbors=int(neighbors))
    dataset.register_run(contract.IDENTITY_RUN_KEY, config, overwrite=True)
    dataset.save_run_results(contract.IDENTITY_RUN_KEY,
                             dataset.init_run_results(contract.IDENTITY_RUN_KEY, identities=summary),
                             overwrite=True)


def identity_summary(samples):
    """Where and when each identity appears (from the last :func:`link_identities`), by identity number.

    Example::

        for person in identity_summary(dataset):
            print(person["identity"], [(a["filepath"], a["first_frame"], a["last_frame"])
                                       for a in person["appearances"]])
    """
    dataset = samples._root_dataset
    if contract.IDENTITY_RUN_KEY not in dataset.list_runs():
        raise ValueError(f"{dataset.name!r} has no identities yet: run link_identities first")
    return dataset.load_run_results(contract.IDENTITY_RUN_KEY).identities
