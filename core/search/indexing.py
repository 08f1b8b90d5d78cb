"""Find, track and embed the people of images and videos; store their embeddings in the person index.

:func:`index_persons` finds the people (YOLO, or an existing detections
field), tracks them in videos, embeds each image crop / each track (once per
refresh) with the matcher, writes ``persons`` / ``frames.persons`` with each
distinct embedding on the detection it was cut from, and adds those vectors
to a brain similarity index over the patches (frames through a
``to_frames`` view) after each finished video or image batch
(:mod:`core.search.store`). Re-runs only process what is missing.

Example::

    from person_finder.core.search import index_persons
    index_persons(dataset, matcher="google/siglip-base-patch16-224", detector="yolo26n.pt")
"""

from __future__ import annotations

import functools

import numpy as np

from .. import contract, defaults
from ..progress import notify
from . import store
from .gallery import shared_matcher
from .validation import check_detections_field, detections_path
from .writes import declare_embeddings, embedded_detection, write_sample_values, write_video_persons


def index_persons(samples, matcher=defaults.MATCHER_MODEL, detector=defaults.DETECTOR_MODEL,
                  detections_field=None, persons_field=contract.PERSONS_FIELD, brain_key=contract.PERSON_INDEX_KEY,
                  confidence=defaults.DETECTOR_CONFIDENCE, detect_every=defaults.VIDEO_DETECT_EVERY,
                  refresh_frames=defaults.TRACK_REFRESH_FRAMES, refresh_iou=defaults.TRACK_REFRESH_IOU,
                  tracker=defaults.TRACKER, batch_size=defaults.MATCHER_BATCH_SIZE,
                  detector_batch_size=defaults.DETECTOR_BATCH_SIZE, overwrite=False, backend=None,
                  device=None, runtime=defaults.INFERENCE_RUNTIME, on_progress=None):
    """Detect (or read), track and embed the people of images or videos; index their embeddings.

    ``runtime="onnx"`` runs the detector and the matcher's image tower on ONNX
    Runtime (exported once and cached, see :mod:`core.models.onnx`); ``backend``
    picks the vector store of the index (see :mod:`core.search.backends`).

    ``detector`` is an Ultralytics weights name / file or a loaded
    :class:`core.models.detector.PersonDetector`. ``detections_field`` names an existing Detections field (``frames.`` is
    implied for videos) to use instead of the detector; its labels are
    copied, never modified. Each finished video or batch of images has its
    persons (with their embeddings) written, then its vectors added to
    ``brain_key``: one vector per distinct crop embedding (a track's
    refreshes; every person in images), keyed by the detection it was cut
    from. Several processes may index disjoint views into one key at once.
    Samples already processed are skipped unless ``overwrite``, which redoes
    detection and replaces their persons; a run first repairs the index
    from the embeddings on the dataset, so a killed run is resumed redoing at
    most the video or batch in flight. ``overwrite`` on the whole dataset
    with another matcher than the index's re-indexes everything with it (a
    fine-tuned model); on part of it that is refused. Unreadable media are
    recorded in ``person_search_error``.

    Returns a summary dict (samples, processed, persons, tracks,
    encoder_crops, encoder_calls = the encoder's forward passes, errors, brain_key).

    Example::

        index_persons(dataset, detections_field="ground_truth", brain_key="people")
    """
    from ..models.detector import load_detector
    from ..models.onnx import query_encoder, validate_runtime, with_runtime
    from .tracking import TRACKERS

    validate_runtime(runtime)
    if samples.media_type not in ("image", "video"):
        raise ValueError(f"person search works on image or video datasets, not {samples.media_type!r}")
    if detections_field:
        if detections_field.startswith("frames."):
            detections_field = detections_field[len("frames."):]
        check_detections_field(samples, detections_path(samples, detections_field))
        if detections_field == persons_field:
            raise ValueError(f"detections_field and persons_field are both {persons_field!r}; the persons "
                             f"field is rewritten by each run, so read your boxes from another field")
    if tracker not in TRACKERS:
        raise ValueError(f"tracker must be one of {list(TRACKERS)}, got {tracker!r}")
    for name, value in (("detect_every", detect_every), ("refresh_frames", refresh_frames),
                        ("batch_size", batch_size), ("detector_batch_size", detector_batch_size)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not 0.0 <= float(refresh_iou) <= 1.0:
        raise ValueError(f"refresh_iou must be in [0, 1], got {refresh_iou}")
    if not 0.0 <= float(confidence) <= 1.0:
        raise ValueError(f"confidence must be in [0, 1], got {confidence}")

    match = with_runtime(shared_matcher(matcher, device=device, batch_size=batch_size), runtime)
    if hasattr(detector, "detect"):  # an already loaded PersonDetector (or anything with its .detect)
        find = lambda: detector  # noqa: E731
    else:  # loaded on first use: a re-run that only re-embeds stored boxes needs no detector
        find = functools.lru_cache(maxsize=1)(
            lambda: with_runtime(load_detector(detector, confidence=confidence, device=device), runtime))
    dataset = samples._root_dataset
    store.check_person_index(dataset, brain_key, persons_field)
    declare_embeddings(dataset, persons_field)
    if overwrite and store.built_with(dataset, brain_key) not in (None, str(matcher)):
        if len(samples) != len(dataset):
            raise ValueError(f"person index {brain_key!r} was built with {store.built_with(dataset, brain_key)!r}: "
                             f"to switch to {str(matcher)!r}, re-index the whole dataset with overwrite=True")
        store.switch_matcher(dataset, brain_key, persons_field)  # every person is embedded again below
    store.open_index(dataset, brain_key, matcher, persons_field, backend)
    store.sync_index(dataset, brain_key, persons_field)
    add = functools.partial(store.add_vectors, dataset, brain_key)
    if samples.media_type == "video":
        summary = _index_videos(samples, match, find, detections_field, persons_field, overwrite, detect_every,
                                refresh_frames, refresh_iou, tracker, detector_batch_size, add, on_progress)
    else:
        summary = _index_images(samples, match, find, detections_field, persons_field, overwrite,
                                detector_batch_size, add, on_progress)
    if summary["persons"]:
        notify(on_progress, 0.98, "preparing the query encoder")
        query_encoder(match)  # on CPU: the text tower's export, cached, so the first query is fast too
    notify(on_progress, 1.0, "done")
    summary["brain_key"] = brain_key
    summary["indexed"] = store.open_index(dataset, brain_key, matcher, persons_field, backend).total_index_size
    if not summary["persons"]:
        summary["message"] = (f"no person found in the {summary['samples']} samples"
                              + (f" ({summary['errors']} unreadable)" if summary["errors"] else ""))
    return summary


def _boxes_from_detections(detections, width, height):
    """FiftyOne relative boxes as ``(n, 5)`` pixel ``[x1, y1, x2, y2, conf]``."""
    rows = []
    for det in (detections.detections if detections is not None else []):
        x, y, w, h = det.bounding_box
        conf = det.confidence if det.confidence is not None else 1.0
        rows.append([x * width, y * height, (x + w) * width, (y + h) * height, conf])
    return np.asarray(rows, dtype=np.float32).reshape(-1, 5)


def _given_boxes(detections, width, height):
    """Boxes of a user's detections field as :func:`_boxes_from_detections`, minus NaN / infinite ones; and their count."""
    from .tracking import finite_boxes

    return finite_boxes(_boxes_from_detections(detections, width, height))


def _index_images(samples, match, find, detections_field, persons_field, overwrite, batch_size, add, on_progress):
    import fiftyone.core.labels as fol

    from ..models.images import read_rgb_array
    from .tracking import clip_box, skipped_boxes_note

    fields = ["id", "filepath", persons_field] + ([detections_field] if detections_field else [])
    fields = [f for f in fields if f == "id" or f == "filepath" or samples.has_field(f)]
    values = dict(zip(fields, samples.values(fields)))
    ids, paths = values["id"], values["filepath"]
    old = values.get(persons_field, [None] * len(ids))
    given = values.get(detections_field, [None] * len(ids)) if detections_field else None
    errors = {}
    summary = dict(samples=len(ids), processed=0, persons=0, tracks=0, encoder_crops=0, encoder_calls=0,
                   errors=0)
    for start in range(0, len(ids), batch_size):
        todo, replaced = [], []
        for i in range(start, min(start + batch_size, len(ids))):
            kept = old[i].detections if old[i] is not None else None
            if kept is not None and not overwrite and all(d[contract.EMBEDDING_ATTR] is not None for d in kept):
                summary["persons"] += len(kept)
                continue
            if overwrite:  # redo detection, also where the last run found nobody
                replaced += [d.id for d in kept or []]
                kept = None
            try:
                image = read_rgb_array(paths[i])
            except Exception as e:  # noqa: BLE001 - recorded per sample, the run goes on
                errors[ids[i]] = f"cannot read image: {type(e).__name__}: {e}"
                continue
            todo.append((i, image, kept))
        to_detect = [(i, image) for i, image, kept in todo if kept is None and given is None]
        found = dict(zip([i for i, _ in to_detect], find().detect([im for _, im in to_detect]) if to_detect else []))
        crops, owners, boxes_of = [], [], {}
        for i, image, kept in todo:
            height, width = image.shape[:2]
            skipped = 0
            if kept is not None:  # written without embeddings (an older version): re-embed, do not re-detect
                boxes = _boxes_from_detections(fol.Detections(detections=kept), width, height)
            elif given is not None:
                boxes, skipped = _given_boxes(given[i], width, height)
            else:
                boxes = found[i]
            boxes_of[i] = []
            for j, row in enumerate(boxes):
                box = clip_box(row[:4], width, height)
                if box is None:
                    continue  # zero-area or out-of-frame box
                x1, y1, x2, y2 = box
                crops.append(image[y1:y2, x1:x2])
                owners.append(ids[i])
                boxes_of[i].append((box, width, height, row[4], kept[j] if kept is not None else None))
            errors[ids[i]] = skipped_boxes_note(skipped, detections_field)
        vectors = match.embed_images(crops) if crops else np.zeros((0, match.embedding_dim), np.float32)
        rows = iter(vectors)
        persons_out, label_ids = {}, []
        for i, image, kept in todo:
            dets = [_with_embedding(previous, next(rows)) if previous is not None
                    else embedded_detection(box, width, height, conf, next(rows))
                    for box, width, height, conf, previous in boxes_of[i]]
            persons_out[ids[i]] = fol.Detections(detections=dets)
            label_ids += [d.id for d in dets]
        summary["encoder_crops"] += len(crops)
        summary["encoder_calls"] += -(-len(crops) // match.batch_size)
        summary["persons"] += len(crops)
        summary["processed"] += len(todo)
        write_sample_values(samples, {persons_field: persons_out})  # persons and their vectors: the truth
        add(vectors, owners, label_ids, remove=replaced)  # then the index
        notify(on_progress, 0.95 * min(start + batch_size, len(ids)) / max(len(ids), 1), "detecting and embedding")
    write_sample_values(samples, {contract.PERSON_ERROR_FIELD: errors})
    summary["errors"] = sum(1 for e in errors.values() if e)
    return summary


def _with_embedding(detection, vector):
    detection[contract.EMBEDDING_ATTR] = vector
    detection[contract.EMBEDDING_ID_ATTR] = detection.id
    return detection


def save_video_tracks(dataset, sample_id, tracks, persons_field, add):
    """Write one video's tracks (persons with their embeddings), add its vectors, mark it processed; its track count.

    ``add`` is :func:`core.search.store.add_vectors` bound to the dataset and
    brain key. The video's old persons are replaced (and removed from the
    index); ``person_tracks`` is set last, so a video without it is redone.

    Example::

        save_video_tracks(dataset, sample_id, tracks, "persons", functools.partial(store.add_vectors, dataset, key))
    """
    replaced = dataset.select(sample_id).values(f"frames.{persons_field}.detections.id", unwind=True)
    add(*write_video_persons(dataset, sample_id, tracks, persons_field), remove=replaced)
    track_count = len(tracks.track_frames())
    write_sample_values(dataset, {contract.PERSON_TRACKS_FIELD: {sample_id: track_count}})  # marks it processed
    return track_count


def _index_videos(samples, match, find, detections_field, persons_field, overwrite, detect_every,
                  refresh_frames, refresh_iou, tracker, batch_size, add, on_progress):
    from .tracking import skipped_boxes_note, track_video

    dataset = samples._root_dataset
    fields = ["id", "filepath", "metadata.total_frame_count"]
    indexed = samples.has_field(contract.PERSON_TRACKS_FIELD) and not overwrite
    rows = samples.values(fields + ([contract.PERSON_TRACKS_FIELD, f"frames.{persons_field}.detections.id"]
                                       if indexed else []))
    ids, paths, lengths = rows[:3]
    done_tracks = rows[3] if indexed else [None] * len(ids)
    errors = {}
    summary = dict(samples=len(ids), processed=0, persons=0, tracks=0, encoder_crops=0, encoder_calls=0,
                   errors=0)
    for i, (sid, path) in enumerate(zip(ids, paths)):
        if done_tracks[i] is not None:  # set only once the video's vectors were added
            summary["tracks"] += done_tracks[i]
            summary["persons"] += sum(len(dets or []) for dets in rows[4][i])
            continue
        if detections_field:
            numbers, labels = dataset.select(sid).values(["frames.frame_number", "frames." + detections_field])
            given = dict(zip(numbers[0], labels[0]))
            skipped = [0]

            def detect(numbers, frames, given=given, skipped=skipped):
                out = [_given_boxes(given.get(n), f.shape[1], f.shape[0]) for n, f in zip(numbers, frames)]
                skipped[0] += sum(n for _, n in out)
                return [boxes for boxes, _ in out]
        else:
            skipped = [0]

            def detect(numbers, frames):
                return find().detect(frames, batch_size=batch_size, bgr=True)

        def on_frames(count, i=i, total=lengths[i]):
            within = min(count / total, 1.0) if total else 0.5
            notify(on_progress, 0.95 * (i + within) / len(ids), f"video {i + 1}/{len(ids)}: frame {count}")

        try:
            tracks = track_video(path, detect, match.embed_images, detect_every=detect_every,
                                 refresh_frames=refresh_frames, refresh_iou=refresh_iou, tracker=tracker,
                                 detect_batch_size=batch_size, embed_batch_size=match.batch_size,
                                 keep_all=bool(detections_field),
                                 on_frames=on_frames)
        except IOError as e:
            errors[sid] = f"cannot read video: {e}"
            continue
        track_count = save_video_tracks(dataset, sid, tracks, persons_field, add)
        errors[sid] = skipped_boxes_note(skipped[0], detections_field)
        if lengths[i] and tracks.num_frames < lengths[i]:  # the decoder stopped early: a truncated or damaged file
            errors[sid] = f"cannot read video: decoded {tracks.num_frames} of its {lengths[i]} frames (truncated?)"
        summary["processed"] += 1
        summary["tracks"] += track_count
        summary["persons"] += sum(len(p) for p in tracks.frames.values())
        summary["encoder_crops"] += tracks.encoder_crops
        summary["encoder_calls"] += tracks.encoder_calls
    write_sample_values(samples, {contract.PERSON_ERROR_FIELD: errors})
    summary["errors"] = sum(1 for e in errors.values() if e)
    return summary
