"""The user's own footage as a re-identification dataset, shaped like the Market-1501 import.

Every distinct crop the person index embedded (a track's keyframes in
videos, each person of an image) becomes one image sample of a crop
dataset: ``person_id`` = identity + 1 (from :func:`link_identities`),
``camera_id`` = the source's ``camera_id`` field or its place among the
sources, with the source sample, frame, track and label kept. Splits go by
identity, as in Market-1501: identities seen by at least two cameras are
split ``test_fraction`` / rest into test and ``train``; a test identity has
one ``query`` crop, its other crops (other cameras among them) are ``gallery``. The result
is what the curation, attributes, merge, fine-tune and evaluate operators
read. Re-running adds only crops it has not written (keyed by source
label) and sets the same splits again.

Example::

    from person_finder.core.identities import export_reid_dataset, link_identities
    link_identities(videos)
    crops = export_reid_dataset(videos, "my-footage-reid", "/data/my-footage-reid")
    crops.count_sample_tags()   # {"train": ..., "query": ..., "gallery": ...}
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np

from .. import contract, defaults
from ..progress import notify

#: Fields of an exported crop naming where it came from.
SOURCE_FIELDS = ("source_sample_id", "source_label_id", "source_filepath", "frame_number", "track_id")


def _crops(samples, persons_field):
    """(identity, source sample id, filepath, frame number, track, label id, box) of each embedded crop."""
    video = samples.media_type == "video"
    prefix = ("frames." if video else "") + persons_field
    attrs = ["id", "bounding_box", "index", contract.EMBEDDING_ATTR, contract.IDENTITY_ATTR]
    paths = ["id", "filepath"] + (["frames.frame_number"] if video else []) + \
        [f"{prefix}.detections.{a}" for a in attrs]
    if not samples.has_field(f"{prefix}.detections.{contract.IDENTITY_ATTR}"):
        raise ValueError(f"{samples._root_dataset.name!r} has no identities on {prefix!r}: run link_identities "
                         f"first (after index_persons)")
    values = samples.values(paths)
    out = []
    for sample_id, filepath, *rest in zip(*values):
        frames = zip(rest[0], *rest[1:]) if video else [(None, *rest)]
        for number, ids, boxes, tracks, vectors, identities in frames:
            for label_id, box, track, vector, identity in zip(ids or [], boxes or [], tracks or [], vectors or [],
                                                              identities or []):
                if vector is not None and identity is not None:
                    out.append((int(identity), sample_id, filepath, number, track if video else None, label_id, box))
    return out


def _cameras(samples):
    """Camera number of each source sample: its ``camera_id`` field, else 1, 2, ... by file path."""
    ids, paths = samples.values(["id", "filepath"])
    given = samples.values(contract.CAMERA_ID_FIELD) if samples.has_sample_field(contract.CAMERA_ID_FIELD) else \
        [None] * len(ids)
    order = {path: i + 1 for i, path in enumerate(sorted(set(paths)))}
    return {sid: int(cam) if cam is not None else order[path] for sid, path, cam in zip(ids, paths, given)}


def _split(crops, cameras, test_fraction, seed):
    """Tag of each crop index: train for a fraction of identities, query / gallery for the others."""
    by_identity = defaultdict(list)
    for i, crop in enumerate(crops):
        by_identity[crop[0]].append(i)
    multi_camera = sorted(p for p, members in by_identity.items() if len({cameras[crops[i][1]] for i in members}) > 1)
    rng = np.random.default_rng(seed)
    test = set(rng.permutation(multi_camera)[:int(round(len(multi_camera) * test_fraction))].tolist())
    tags = {}
    for identity, members in by_identity.items():
        if identity not in test:
            tags.update({i: "train" for i in members})
            continue
        ordered = sorted(members, key=lambda i: (crops[i][2], crops[i][3] or 0))
        tags.update({i: "gallery" for i in ordered})
        tags[ordered[int(rng.integers(len(ordered)))]] = "query"  # its other cameras are in the gallery
    return tags


def export_reid_dataset(samples, name, folder, persons_field=contract.PERSONS_FIELD,
                        test_fraction=defaults.REID_TEST_FRACTION, seed=defaults.REID_SPLIT_SEED, on_progress=None):
    """Write the embedded crops of ``samples`` as the re-identification dataset ``name`` (images in ``folder``).

    Returns the (persistent) crop dataset. See the module docstring for the
    fields and splits; raises before writing anything when no identities
    were linked.

    Example::

        crops = export_reid_dataset(videos, "my-footage-reid", "/data/my-footage-reid", test_fraction=0.5)
    """
    import fiftyone as fo
    from PIL import Image

    from ..models.images import crop_relative, read_rgb_array
    from ..search.tracking import frames_at

    if not 0.0 <= float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    crops = _crops(samples, persons_field)
    if not crops:
        raise ValueError(f"no embedded person with an identity in {samples._root_dataset.name!r}: run index_persons "
                         f"and link_identities first")
    cameras = _cameras(samples)
    tags = _split(crops, cameras, float(test_fraction), seed)
    dataset = fo.load_dataset(name) if fo.dataset_exists(name) else fo.Dataset(name, persistent=True)
    done = set(dataset.values("source_label_id")) if dataset.has_sample_field("source_label_id") else set()
    os.makedirs(folder, exist_ok=True)
    wanted = defaultdict(list)  # source file -> crop indices still to write
    for i, crop in enumerate(crops):
        if crop[5] not in done:
            wanted[crop[2]].append(i)
    written = 0
    for n, (filepath, members) in enumerate(sorted(wanted.items())):
        notify(on_progress, 0.05 + 0.85 * n / max(len(wanted), 1), f"cropping {os.path.basename(filepath)}")
        if samples.media_type == "video":
            images = frames_at(filepath, {crops[i][3] for i in members})
        else:
            images = {None: read_rgb_array(filepath)}
        batch = []
        for i in members:
            identity, sample_id, _, number, track, label_id, box = crops[i]
            if number not in images:
                continue  # the frame could not be decoded again: left for a re-run
            camera = cameras[sample_id]
            path = os.path.join(folder, f"{identity + 1:04d}_c{camera}_f{number or 0:06d}_{label_id}.jpg")
            Image.fromarray(np.ascontiguousarray(crop_relative(images[number], box))).save(path, quality=95)
            batch.append(fo.Sample(filepath=path, tags=[tags[i]], **{
                contract.PERSON_ID_FIELD: identity + 1, contract.CAMERA_ID_FIELD: camera,
                "source_sample_id": sample_id, "source_label_id": label_id, "source_filepath": filepath,
                "frame_number": number, "track_id": track}))
        dataset.add_samples(batch, progress=False)
        written += len(batch)
    notify(on_progress, 0.95, "setting splits")
    _retag(dataset, {crops[i][5]: tags[i] for i in range(len(crops))})
    dataset.compute_metadata(progress=False)
    notify(on_progress, 1.0, f"{written} crops written")
    return dataset


def _retag(dataset, tag_of_label):
    """Set each crop's split tag (only split tags change; a ``val`` carved out of train by fine-tuning stays)."""
    splits = set(contract.SPLIT_TAGS) | {contract.VAL_TAG}
    ids, labels, tags = dataset.values(["id", "source_label_id", "tags"])
    new = {}
    for sid, label, current in zip(ids, labels, tags):
        want = tag_of_label.get(label)
        if want is None or want in current or (want == "train" and contract.VAL_TAG in current):
            continue
        new[sid] = sorted((set(current) - splits) | {want})
    if new:
        dataset.set_values("tags", new, key_field="id")
