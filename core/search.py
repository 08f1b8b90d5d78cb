"""Text-to-person search on images and videos, with crop embeddings reused across queries.

Two steps:

1. :func:`index_persons` finds the people (YOLO, or an existing detections
   field), tracks them in videos, embeds each image crop / each track (once
   per refresh) with the matcher, writes ``persons`` / ``frames.persons`` and
   stores the embeddings in a brain similarity index over those patches
   (frames through a ``to_frames`` view). Re-runs only process what is
   missing.
2. :func:`search_persons` embeds only the text, scores every indexed person,
   writes ``similarity`` (and SigLIP ``probability``) on each person, marks
   matches with the label ``match``, writes ``person_similarity`` and, for
   videos, ``person_matches`` (one span per matching track), and returns the
   samples sorted by best match. :func:`rank_persons` returns the same ranking
   as JSON-able rows without writing anything.

Example::

    from person_finder.core.search import index_persons, search_persons, rank_persons
    index_persons(dataset, matcher="google/siglip-base-patch16-224", detector="yolo26n.pt")
    view = search_persons(dataset, "a woman in a white t-shirt with a brown shoulder bag", threshold=0.5,
                          threshold_type="probability")
    rows = rank_persons(dataset, "red top and blue trousers", k=10)
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time

import numpy as np

from . import defaults
from .progress import notify

logger = logging.getLogger(__name__)

THRESHOLD_TYPES = defaults.THRESHOLD_TYPES
_CACHE = {}  # (dataset name, brain key, run timestamp) -> _Gallery
_MATCHERS = {}  # (name or path, device) -> ImageTextMatcher, shared by indexing and queries in one process
_TEXT_CACHE_SIZE = 64  # recent query embeddings kept per index (threshold / k changes cost no forward pass)


def _load_matcher(name_or_path, device=None, batch_size=defaults.MATCHER_BATCH_SIZE):
    """The matcher, loaded once per process (an index's queries reuse the one that built it)."""
    from .models.matcher import load_matcher

    folder = os.path.join(str(name_or_path), "config.json")
    key = (str(name_or_path), device, os.path.getmtime(folder) if os.path.exists(folder) else None)
    if key not in _MATCHERS:
        _MATCHERS.clear()  # one matcher at a time: they are large
        _MATCHERS[key] = load_matcher(name_or_path, device=device, batch_size=batch_size)
    matcher = _MATCHERS[key]
    matcher.batch_size = int(batch_size)
    return matcher


# --------------------------------------------------------------------------- validation


def _check_detections_field(samples, path):
    """Raise if ``path`` is not a Detections field of ``samples``, naming the ones there are."""
    import fiftyone.core.labels as fol

    field = samples.get_field(path)
    if field is None:
        raise ValueError(f"field {path!r} does not exist on {samples._root_dataset.name!r}; "
                         f"Detections fields there: {detections_fields(samples)}")
    if getattr(field, "document_type", None) is not fol.Detections:
        raise ValueError(f"field {path!r} is not a Detections field; Detections fields: {detections_fields(samples)}")


def detections_fields(samples, exclude=()):
    """Names of the Detections fields (frame fields for videos, without ``frames.``) a search can read.

    Example::

        detections_fields(dataset, exclude=["persons"])   # ['ground_truth']
    """
    import fiftyone.core.labels as fol

    video = samples.media_type == "video"
    schema = (samples.get_frame_field_schema() if video else samples.get_field_schema()) or {}
    return [name for name, f in schema.items()
            if getattr(f, "document_type", None) is fol.Detections and name not in exclude]


def check_threshold(threshold, threshold_type):
    """Validate a match threshold: a cosine in [-1, 1] or a probability in (0, 1)."""
    if threshold_type not in THRESHOLD_TYPES:
        raise ValueError(f"threshold_type must be one of {list(THRESHOLD_TYPES)}, got {threshold_type!r}")
    if threshold is None:
        return
    low, high = (-1.0, 1.0) if threshold_type == "cosine" else (0.0, 1.0)
    if not isinstance(threshold, (int, float)) or not low <= threshold <= high or (
            threshold_type == "probability" and threshold in (0.0, 1.0)):
        interval = "[-1, 1]" if threshold_type == "cosine" else "(0, 1)"
        raise ValueError(f"a {threshold_type} threshold must be in {interval}, got {threshold!r}")


def _check_query(query):
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"the search text must be a non-empty string, got {query!r}")


def _detections_path(samples, field):
    return ("frames." + field) if samples.media_type == "video" else field


# --------------------------------------------------------------------------- indexing


def index_persons(samples, matcher=defaults.MATCHER_MODEL, detector=defaults.DETECTOR_MODEL,
                  detections_field=None, persons_field=defaults.PERSONS_FIELD, brain_key=defaults.PERSON_INDEX_KEY,
                  confidence=defaults.DETECTOR_CONFIDENCE, detect_every=defaults.VIDEO_DETECT_EVERY,
                  refresh_frames=defaults.TRACK_REFRESH_FRAMES, refresh_iou=defaults.TRACK_REFRESH_IOU,
                  tracker=defaults.TRACKER, batch_size=defaults.MATCHER_BATCH_SIZE,
                  detector_batch_size=defaults.DETECTOR_BATCH_SIZE, overwrite=False, backend=None,
                  device=None, runtime=defaults.INFERENCE_RUNTIME, on_progress=None):
    """Detect (or read), track and embed the people of images or videos; index their embeddings.

    ``runtime="onnx"`` runs the detector and the matcher's image tower on ONNX
    Runtime (exported once and cached, see :mod:`core.onnx`); ``backend``
    picks the vector store of the index (see :mod:`core.backends`).

    ``detector`` is an Ultralytics weights name / file or a loaded
    :class:`core.models.detector.PersonDetector`. ``detections_field`` names an existing Detections field (``frames.`` is
    implied for videos) to use instead of the detector; its labels are
    copied, never modified. Samples already processed with their
    embeddings in ``brain_key`` are skipped unless ``overwrite``; images whose
    persons were written but not indexed are re-embedded without
    re-detection. The index is saved every ``INDEX_CHECKPOINT_SECONDS`` while
    it runs, so an interrupted run resumes where it stopped. Unreadable
    media are recorded in ``person_search_error``.

    Returns a summary dict (samples, processed, persons, tracks,
    encoder_crops, encoder_calls = the encoder's forward passes, errors, brain_key).

    Example::

        index_persons(dataset, detections_field="ground_truth", brain_key="people")
    """
    from .models.detector import load_detector
    from .onnx import query_encoder, validate_runtime, with_runtime
    from .video import TRACKERS

    validate_runtime(runtime)
    if samples.media_type not in ("image", "video"):
        raise ValueError(f"person search works on image or video datasets, not {samples.media_type!r}")
    if detections_field:
        if detections_field.startswith("frames."):
            detections_field = detections_field[len("frames."):]
        _check_detections_field(samples, _detections_path(samples, detections_field))
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

    match = with_runtime(_load_matcher(matcher, device=device, batch_size=batch_size), runtime)
    if hasattr(detector, "detect"):  # an already loaded PersonDetector (or anything with its .detect)
        find = lambda: detector  # noqa: E731
    else:  # loaded on first use: a re-run that only re-embeds stored boxes needs no detector
        find = functools.lru_cache(maxsize=1)(
            lambda: with_runtime(load_detector(detector, confidence=confidence, device=device), runtime))
    previous = _existing_gallery(samples, brain_key, matcher, overwrite)
    checkpoint = _Checkpoint(samples._root_dataset, brain_key, matcher, persons_field, previous, backend)
    if samples.media_type == "video":
        summary, embeddings = _index_videos(samples, match, find, detections_field, persons_field, previous,
                                            detect_every, refresh_frames, refresh_iou, tracker,
                                            detector_batch_size, checkpoint, on_progress)
    else:
        summary, embeddings = _index_images(samples, match, find, detections_field, persons_field, previous,
                                            detector_batch_size, checkpoint, on_progress)
    notify(on_progress, 0.96, "indexing embeddings")
    embeddings = checkpoint.save(embeddings)
    if embeddings:
        notify(on_progress, 0.98, "preparing the query encoder")
        query_encoder(match)  # on CPU: the text tower's export, cached, so the first query is fast too
    notify(on_progress, 1.0, "done")
    summary["brain_key"] = brain_key if embeddings else None
    return summary


def _reusable(dataset, persons_field, previous, held=()):
    """``{owner id: vectors}`` of every frame (videos) or image whose persons all have a vector in ``previous``.

    Owners already in ``held`` (this run's embeddings) are skipped, so their vectors are not stacked twice.
    """
    video = dataset.media_type == "video"
    if not previous.vectors or not (dataset.has_frame_field if video else dataset.has_sample_field)(persons_field):
        return {}
    if video:
        frame_ids, label_ids = dataset.values(["frames.id", f"frames.{persons_field}.detections.id"])
        pairs = [(f, lids) for fids, lists in zip(frame_ids, label_ids) for f, lids in zip(fids, lists)]
    else:
        pairs = list(zip(*dataset.values(["id", f"{persons_field}.detections.id"])))
    kept = {owner: previous.get(lids) for owner, lids in pairs if lids and owner not in held}
    return {owner: vectors for owner, vectors in kept.items() if vectors is not None}


class _Checkpoint:
    """Saves the index of what is embedded so far, so an interrupted run loses none of it.

    The index holds this run's embeddings plus every earlier one whose
    persons are still on the dataset (samples not reached yet, samples
    outside the view being indexed). Called after each video or batch of
    images, it saves at most every ``INDEX_CHECKPOINT_SECONDS``.
    """

    def __init__(self, dataset, brain_key, matcher, persons_field, previous, backend):
        self.dataset, self.brain_key, self.matcher = dataset, brain_key, matcher
        self.persons_field, self.previous, self.backend = persons_field, previous, backend
        self.saved_at = time.monotonic()

    def __call__(self, embeddings):
        if time.monotonic() - self.saved_at >= defaults.INDEX_CHECKPOINT_SECONDS:
            self.save(embeddings)

    def save(self, embeddings):
        """Write the index now; returns the embeddings it holds (``{owner id: vectors}``)."""
        everything = {**_reusable(self.dataset, self.persons_field, self.previous, held=embeddings), **embeddings}
        everything = {owner: vectors for owner, vectors in everything.items() if len(vectors)}
        _build_index(self.dataset, self.brain_key, self.matcher, self.persons_field, everything, self.backend)
        self.saved_at = time.monotonic()
        return everything


def _build_index(dataset, brain_key, matcher, persons_field, embeddings, backend):
    """(Re)build the brain index over the person patches that have embeddings (frames for videos)."""
    from fiftyone import ViewField as F

    from .index import build_text_index

    if not embeddings:
        if brain_key in dataset.list_brain_runs():
            dataset.delete_brain_run(brain_key)
        return
    base = dataset.to_frames(sample_frames="dynamic") if dataset.media_type == "video" else dataset
    view = base.match(F(f"{persons_field}.detections").length() > 0)
    if len(view) != len(embeddings):  # some people were never embedded (e.g. outside the view, other matcher)
        view = base.select(list(embeddings))
    build_text_index(view, brain_key, matcher=matcher, patches_field=persons_field, embeddings=embeddings,
                     backend=backend)
    logger.info("indexed %d person embeddings", sum(len(e) for e in embeddings.values()))


class _Previous:
    """Embeddings of an earlier run that can be reused: label id -> vector."""

    def __init__(self, vectors=None):
        self.vectors = vectors or {}

    def get(self, label_ids):
        if not label_ids or not all(lid in self.vectors for lid in label_ids):
            return None
        return np.stack([self.vectors[lid] for lid in label_ids])


def _existing_gallery(samples, brain_key, matcher, overwrite):
    dataset = samples._root_dataset
    if overwrite or brain_key not in dataset.list_brain_runs():
        return _Previous()
    results = dataset.load_brain_results(brain_key)
    if results.config.model_kwargs.get("name_or_path") != str(matcher):
        logger.info("index %r was built with another matcher; re-embedding everything", brain_key)
        return _Previous()
    vectors, _, label_ids = results.get_embeddings()
    return _Previous(dict(zip(label_ids, vectors)))


def _load_image(filepath):
    from PIL import Image

    from .models.matcher import to_rgb_array

    with Image.open(filepath) as image:
        image.load()
        return to_rgb_array(image)


def _boxes_from_detections(detections, width, height):
    """FiftyOne relative boxes as ``(n, 5)`` pixel ``[x1, y1, x2, y2, conf]``."""
    rows = []
    for det in (detections.detections if detections is not None else []):
        x, y, w, h = det.bounding_box
        conf = det.confidence if det.confidence is not None else 1.0
        rows.append([x * width, y * height, (x + w) * width, (y + h) * height, conf])
    return np.asarray(rows, dtype=np.float32).reshape(-1, 5)


def _person(box, width, height, confidence, **attributes):
    import fiftyone.core.labels as fol

    x1, y1, x2, y2 = box
    return fol.Detection(label=defaults.PERSON_LABEL, confidence=float(confidence),
                         bounding_box=[x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height], **attributes)


def _index_images(samples, match, find, detections_field, persons_field, previous, batch_size, checkpoint,
                  on_progress):
    import fiftyone.core.labels as fol

    from .video import clip_box

    fields = ["id", "filepath", persons_field] + ([detections_field] if detections_field else [])
    fields = [f for f in fields if f == "id" or f == "filepath" or samples.has_field(f)]
    values = dict(zip(fields, samples.values(fields)))
    ids, paths = values["id"], values["filepath"]
    old = values.get(persons_field, [None] * len(ids))
    given = values.get(detections_field, [None] * len(ids)) if detections_field else None
    embeddings, errors = {}, {}
    persons_out = {}
    summary = dict(samples=len(ids), processed=0, persons=0, tracks=0, encoder_crops=0, encoder_calls=0,
                   errors=0)
    for start in range(0, len(ids), batch_size):
        todo = []
        for i in range(start, min(start + batch_size, len(ids))):
            kept = old[i].detections if old[i] is not None else None
            reused = previous.get([d.id for d in kept]) if kept else None
            if kept is not None and (reused is not None or not kept):
                embeddings[ids[i]] = reused if reused is not None else np.zeros((0, 0), np.float32)
                summary["persons"] += len(kept)
                continue
            try:
                image = _load_image(paths[i])
            except Exception as e:  # noqa: BLE001 - recorded per sample, the run goes on
                errors[ids[i]] = f"cannot read image: {type(e).__name__}: {e}"
                continue
            todo.append((i, image, kept))
        to_detect = [(i, image) for i, image, kept in todo if kept is None and given is None]
        found = dict(zip([i for i, _ in to_detect], find().detect([im for _, im in to_detect]) if to_detect else []))
        crops, owners = [], []
        for i, image, kept in todo:
            height, width = image.shape[:2]
            if kept is not None:  # written by an interrupted run: re-embed its persons, do not re-detect
                boxes = _boxes_from_detections(fol.Detections(detections=kept), width, height)
            elif given is not None:
                boxes = _boxes_from_detections(given[i], width, height)
            else:
                boxes = found[i]
            dets = []
            for j, row in enumerate(boxes):
                box = clip_box(row[:4], width, height)
                if box is None:
                    continue  # zero-area or out-of-frame box
                x1, y1, x2, y2 = box
                crops.append(image[y1:y2, x1:x2])
                owners.append(ids[i])
                dets.append(kept[j] if kept is not None else _person(box, width, height, row[4]))
            persons_out[ids[i]] = fol.Detections(detections=dets)
            errors[ids[i]] = None
        vectors = match.embed_images(crops) if crops else np.zeros((0, match.embedding_dim), np.float32)
        for i, image, kept in todo:
            sid = ids[i]
            embeddings[sid] = vectors[[k for k, o in enumerate(owners) if o == sid]]
        summary["encoder_crops"] += len(crops)
        summary["encoder_calls"] += -(-len(crops) // match.batch_size)
        summary["persons"] += len(crops)
        summary["processed"] += len(todo)
        _write(samples, {persons_field: {sid: persons_out.pop(sid) for sid, _ in list(persons_out.items())}})
        checkpoint(embeddings)
        notify(on_progress, 0.95 * min(start + batch_size, len(ids)) / max(len(ids), 1), "detecting and embedding")
    _write(samples, {defaults.PERSON_ERROR_FIELD: errors})
    summary["errors"] = sum(1 for e in errors.values() if e)
    return summary, embeddings


def _declare(dataset, name):
    """Declare our sample-level fields up front, so all-None values can be written."""
    import fiftyone.core.fields as fof
    import fiftyone.core.labels as fol

    kinds = {
        defaults.PERSON_ERROR_FIELD: dict(ftype=fof.StringField),
        defaults.SAMPLE_SIMILARITY_FIELD: dict(ftype=fof.FloatField),
        defaults.PERSON_TRACKS_FIELD: dict(ftype=fof.IntField),
        defaults.VIDEO_MATCHES_FIELD: dict(ftype=fof.EmbeddedDocumentField, embedded_doc_type=fol.TemporalDetections),
    }
    if name in kinds and not dataset.has_sample_field(name):
        dataset.add_sample_field(name, **kinds[name])


def _write(samples, fields):
    for field, values in fields.items():
        if values:
            _declare(samples._root_dataset, field)
            samples._root_dataset.set_values(field, values, key_field="id")


def _index_videos(samples, match, find, detections_field, persons_field, previous, detect_every,
                  refresh_frames, refresh_iou, tracker, batch_size, checkpoint, on_progress):
    from .video import track_video

    dataset = samples._root_dataset
    frame_path = "frames." + persons_field
    fields = ["id", "filepath", "metadata.total_frame_count"]
    indexed = samples.has_field(defaults.PERSON_TRACKS_FIELD)
    if indexed:
        fields += [defaults.PERSON_TRACKS_FIELD, "frames.id", frame_path + ".detections.id"]
    rows = samples.values(fields)
    ids, paths, lengths = rows[:3]
    done_tracks = rows[3] if indexed else [None] * len(ids)
    embeddings, errors = {}, {}
    summary = dict(samples=len(ids), processed=0, persons=0, tracks=0, encoder_crops=0, encoder_calls=0,
                   errors=0)
    for i, (sid, path) in enumerate(zip(ids, paths)):
        if done_tracks[i] is not None:
            frame_ids, label_ids = rows[4][i], rows[5][i]
            reused = {fid: previous.get(lids) for fid, lids in zip(frame_ids, label_ids) if lids}
            if all(v is not None for v in reused.values()):
                embeddings.update(reused)
                summary["tracks"] += done_tracks[i]
                summary["persons"] += sum(len(v) for v in reused.values())
                continue
        if detections_field:
            numbers, labels = dataset.select(sid).values(["frames.frame_number", "frames." + detections_field])
            given = dict(zip(numbers[0], labels[0]))

            def detect(numbers, frames, given=given):
                return [_boxes_from_detections(given.get(n), f.shape[1], f.shape[0]) for n, f in zip(numbers, frames)]
        else:
            def detect(numbers, frames):
                return find().detect(frames, batch_size=batch_size, bgr=True)

        def on_frames(count, i=i, total=lengths[i]):
            within = min(count / total, 1.0) if total else 0.5
            notify(on_progress, 0.95 * (i + within) / len(ids), f"video {i + 1}/{len(ids)}: frame {count}")

        try:
            tracks = track_video(path, detect, match.embed_images, detect_every=detect_every,
                                 refresh_frames=refresh_frames, refresh_iou=refresh_iou, tracker=tracker,
                                 detect_batch_size=batch_size, embed_batch_size=match.batch_size,
                                 on_frames=on_frames)
        except IOError as e:
            errors[sid] = f"cannot read video: {e}"
            continue
        embeddings.update(_write_video(dataset, sid, tracks, persons_field))
        errors[sid] = None
        track_count = len(tracks.track_frames())
        _write(samples, {defaults.PERSON_TRACKS_FIELD: {sid: track_count}})  # marks the video as processed
        checkpoint(embeddings)
        summary["processed"] += 1
        summary["tracks"] += track_count
        summary["persons"] += sum(len(p) for p in tracks.frames.values())
        summary["encoder_crops"] += tracks.encoder_crops
        summary["encoder_calls"] += tracks.encoder_calls
    _write(samples, {defaults.PERSON_ERROR_FIELD: errors})
    summary["errors"] = sum(1 for e in errors.values() if e)
    return summary, embeddings


def _write_video(dataset, sample_id, tracks, persons_field):
    """Replace one video's ``frames.persons`` with the tracks; returns ``{frame id: (n, D) embeddings}``.

    Bulk writes only (no Sample / Frame documents are loaded): old persons
    are cleared, then the frames with people are written
    ``VIDEO_FRAMES_PER_WRITE`` at a time.
    """
    import fiftyone.core.labels as fol

    width, height = tracks.frame_size
    video = dataset.select(sample_id)
    if dataset.has_frame_field(persons_field):
        video.clear_frame_field(persons_field)
    numbers = sorted(tracks.frames)
    for start in range(0, len(numbers), defaults.VIDEO_FRAMES_PER_WRITE):
        persons = {n: fol.Detections(detections=[_person(box, width, height, conf, index=track_id)
                                                 for track_id, box, conf, _ in tracks.frames[n]])
                   for n in numbers[start:start + defaults.VIDEO_FRAMES_PER_WRITE]}
        dataset.set_values("frames." + persons_field, {sample_id: persons}, key_field="id", validate=False)
    numbers, frame_ids = video.values(["frames.frame_number", "frames.id"])
    rows = {number: [row for *_, row in people] for number, people in tracks.frames.items() if people}
    return {fid: tracks.embeddings[rows[n]] for n, fid in zip(numbers[0], frame_ids[0]) if n in rows}


# --------------------------------------------------------------------------- querying


@dataclasses.dataclass
class _Person:
    """A scored person: one image detection, or one video track."""

    score: float
    best: int  # index (in the gallery) of its best-scoring detection
    sample_id: str
    track: int  # track id (videos) or None
    first: int  # first / last frame number (videos) or None
    last: int
    members: np.ndarray  # indices of its detections in the gallery


class _Gallery:
    """Everything a query needs, loaded once per index: embeddings, ids, model, track ids."""

    def __init__(self, dataset, brain_key):
        from . import zoo
        from .onnx import query_encoder

        zoo.register_model_source()  # so the App / sort_by_similarity can re-create the matcher by zoo name
        results = dataset.load_brain_results(brain_key)
        self.results = results
        self.patches_field = results.config.patches_field
        self.vectors, sample_ids, self.label_ids = results.get_embeddings()
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        self.owner_ids = [str(x) for x in sample_ids]  # the sample (images) or frame (videos) of each label
        self.video = dataset.media_type == "video"
        self.matcher = _load_matcher(results.config.model_kwargs.get("name_or_path", defaults.MATCHER_MODEL))
        self.text_encoder = query_encoder(self.matcher)
        self._texts = {}
        if self.video:
            self._video_layout(dataset, sample_ids)
        else:
            self.sample_ids = np.asarray(sample_ids)
            self.frames = np.zeros(len(sample_ids), dtype=int)
            self.tracks = np.full(len(sample_ids), -1)
            by_id = {}
            ids, paths, dets = dataset.values(["id", "filepath", f"{self.patches_field}.detections"])
            for sid, path, ds in zip(ids, paths, dets):
                for d in ds or []:
                    by_id[d.id] = (path, d.bounding_box)
            self.filepaths = [by_id.get(lid, (None, None))[0] for lid in self.label_ids]
            self.boxes = [by_id.get(lid, (None, None))[1] for lid in self.label_ids]

    def _video_layout(self, dataset, frame_ids):
        path = f"frames.{self.patches_field}.detections"
        ids, paths, numbers, label_ids, track_ids, boxes = dataset.values(  # plain values: no Label objects built
            ["id", "filepath", "frames.frame_number", path + ".id", path + ".index", path + ".bounding_box"])
        by_label = {}
        for sid, fp, *per_frame in zip(ids, paths, numbers, label_ids, track_ids, boxes):
            for number, lids, tids, bbs in zip(*per_frame):
                for lid, tid, bb in zip(lids or [], tids or [], bbs or []):
                    by_label[lid] = (sid, fp, number, tid, bb)
        info = [by_label.get(lid, (None, None, 0, -1, None)) for lid in self.label_ids]
        self.sample_ids = np.asarray([x[0] for x in info])
        self.filepaths = [x[1] for x in info]
        self.frames = np.asarray([x[2] for x in info], dtype=int)
        self.tracks = np.asarray([x[3] if x[3] is not None else -1 for x in info])
        self.boxes = [x[4] for x in info]
        self.groups = {}  # (video id, track id) -> indices of its detections
        for j, (sid, track) in enumerate(zip(self.sample_ids, self.tracks)):
            if sid is not None:
                self.groups.setdefault((sid, int(track)), []).append(j)
        self.groups = {key: np.asarray(members) for key, members in self.groups.items()}

    def people(self, cosine):
        """One :class:`_Person` per image detection, or per track in videos (scored by its mean)."""
        if not self.video:
            return [_Person(float(c), j, sid, None, None, None, np.asarray([j]))
                    for j, (sid, c) in enumerate(zip(self.sample_ids, cosine)) if sid is not None]
        out = []
        for (sid, track), members in self.groups.items():
            scores = cosine[members]
            out.append(_Person(float(scores.mean()), int(members[np.argmax(scores)]), sid, track,
                               int(self.frames[members].min()), int(self.frames[members].max()), members))
        return out

    def score(self, query):
        """Cosine (and SigLIP probability or None) of every indexed person to ``query``."""
        if query not in self._texts:
            if len(self._texts) >= _TEXT_CACHE_SIZE:
                self._texts.pop(next(iter(self._texts)))
            self._texts[query] = self.text_encoder.embed_texts([query])[0]
        cosine = self.vectors @ self._texts[query]
        return cosine, self.matcher.probability(cosine)


def _gallery(samples, brain_key):
    dataset = samples._root_dataset
    if brain_key not in dataset.list_brain_runs():
        raise ValueError(f"no person index {brain_key!r} on {dataset.name!r}: run index_persons first "
                         f"(existing brain runs: {dataset.list_brain_runs()})")
    key = (dataset.name, brain_key, str(dataset.get_brain_info(brain_key).timestamp))
    if key not in _CACHE:
        for stale in [c for c in _CACHE if c[:2] == key[:2]]:
            del _CACHE[stale]
        _CACHE[key] = _Gallery(dataset, brain_key)
    return _CACHE[key]


def _prepare_query(samples, query, brain_key, k, threshold, threshold_type):
    """Check a query's arguments (before anything is written); returns the index and the cosine cut."""
    _check_query(query)
    check_threshold(threshold, threshold_type)
    if k is not None and int(k) < 1:
        raise ValueError(f"k must be >= 1 or None, got {k}")
    gallery = _gallery(samples, brain_key)
    return gallery, _threshold_cosine(gallery, threshold, threshold_type)


def _threshold_cosine(gallery, threshold, threshold_type):
    """The threshold as a cosine (probabilities go through SigLIP's calibration)."""
    if threshold is None or threshold_type == "cosine":
        return threshold
    return gallery.matcher.cosine_for_probability(threshold)


def rank_persons(samples, query, brain_key=defaults.PERSON_INDEX_KEY, k=defaults.TOP_K, threshold=None,
                 threshold_type="cosine"):
    """Rank the indexed people of ``samples`` against ``query``; embeds only the text, writes nothing.

    Signature: ``rank_persons(samples, query, brain_key="person_index", k=25,
    threshold=None, threshold_type="cosine") -> list[dict]``. Images give one
    row per person, videos one row per track (its best-scoring frame).
    Rows, best first, at most ``k`` (None = all), only those passing
    ``threshold`` when one is given::

        {"sample_id": str, "frame_number": int | None, "label_id": str, "track_id": int | None,
         "similarity": float, "probability": float | None, "bounding_box": [x, y, w, h] (relative),
         "filepath": str, "match": bool}

    ``match`` says whether the row passes ``threshold`` (or the default
    :data:`core.defaults.MATCH_THRESHOLD` cosine when none is given).

    Example::

        rows = rank_persons(dataset, "red top and blue trousers", k=5, threshold=0.6,
                            threshold_type="probability")
    """
    gallery, cut = _prepare_query(samples, query, brain_key, k, threshold, threshold_type)
    cosine, _ = gallery.score(query)
    allowed = set(samples.values("id")) if samples is not samples._root_dataset else None
    match_cut = cut if cut is not None else defaults.MATCH_THRESHOLD
    rows = []
    for person in sorted(gallery.people(cosine), key=lambda p: -p.score):
        if allowed is not None and person.sample_id not in allowed:
            continue
        if cut is not None and person.score < cut:
            break
        j = person.best
        probability = gallery.matcher.probability(person.score)
        rows.append({
            "sample_id": str(person.sample_id),
            "frame_number": int(gallery.frames[j]) if gallery.video else None,
            "label_id": str(gallery.label_ids[j]),
            "track_id": person.track,
            "similarity": person.score,
            "probability": float(probability) if probability is not None else None,
            "bounding_box": [float(v) for v in gallery.boxes[j]] if gallery.boxes[j] is not None else None,
            "filepath": gallery.filepaths[j],
            "match": bool(person.score >= match_cut),
        })
        if k is not None and len(rows) >= int(k):
            break
    return rows


def search_persons(samples, query, brain_key=defaults.PERSON_INDEX_KEY, threshold=defaults.MATCH_THRESHOLD,
                   threshold_type="cosine", k=None, on_progress=None):
    """Score every indexed person against ``query`` and write the results; returns a sorted view.

    Writes ``similarity`` / ``probability`` on each person, the label
    ``match`` on people passing ``threshold`` (cosine, or SigLIP probability
    with ``threshold_type="probability"``) and ``person`` on the others,
    ``person_similarity`` per sample (its best person) and, for videos,
    ``person_matches``: one TemporalDetection per matching track (support =
    first..last frame, confidence = the track's score). In videos a track's
    score is the mean similarity over its frames, and a track is matched
    (all its boxes labelled ``match``) or not as a whole. Re-running
    overwrites these fields. Returns ``samples`` sorted by
    ``person_similarity`` (best first), limited to ``k`` samples if given.

    Example::

        view = search_persons(dataset, "red top and blue trousers", threshold=0.2)
        session.view = view
    """
    gallery, cut = _prepare_query(samples, query, brain_key, k, threshold, threshold_type)
    notify(on_progress, 0.1, "embedding the query")
    cosine, probability = gallery.score(query)
    people = gallery.people(cosine)
    dataset = samples._root_dataset
    prefix = ("frames." if gallery.video else "") + gallery.patches_field + ".detections."
    label_ids = [str(x) for x in gallery.label_ids]
    is_match = np.zeros(len(label_ids), dtype=bool)
    best = {}
    for person in people:
        is_match[person.members] = person.score >= cut
        best[person.sample_id] = max(best.get(person.sample_id, -1.0), person.score)
    notify(on_progress, 0.4, "writing scores")
    owner = "frame_id" if gallery.video else "sample_id"

    def by_label(values):  # set_label_values' fast form: each label with its sample / frame
        return [{owner: o, "label_id": lid, "value": v} for o, lid, v in zip(gallery.owner_ids, label_ids, values)]

    dataset.set_label_values(prefix + defaults.SIMILARITY_ATTR, by_label(cosine.tolist()))
    if probability is not None:
        dataset.set_label_values(prefix + defaults.PROBABILITY_ATTR, by_label(probability.tolist()))
    dataset.set_label_values(prefix + "label", by_label(
        [defaults.MATCH_LABEL if m else defaults.PERSON_LABEL for m in is_match]))
    ids = samples.values("id")
    _write(samples, {defaults.SAMPLE_SIMILARITY_FIELD: {sid: best.get(sid) for sid in ids}})
    if gallery.video:
        _write(samples, {defaults.VIDEO_MATCHES_FIELD: _track_spans(gallery, people, cut, ids)})
    notify(on_progress, 1.0, "done")
    view = samples.sort_by(defaults.SAMPLE_SIMILARITY_FIELD, reverse=True)
    return view.limit(int(k)) if k is not None else view


def _track_spans(gallery, people, cut, ids):
    """``{video id: TemporalDetections}``, one detection per track scoring at least ``cut``, best first."""
    import fiftyone.core.labels as fol

    out = {sid: [] for sid in ids}
    for person in sorted(people, key=lambda p: -p.score):
        if person.sample_id in out and person.score >= cut:
            probability = gallery.matcher.probability(person.score)
            out[person.sample_id].append(fol.TemporalDetection(
                label=defaults.MATCH_LABEL, support=[person.first, person.last], confidence=person.score,
                index=person.track, **{defaults.SIMILARITY_ATTR: person.score, defaults.PROBABILITY_ATTR:
                                       float(probability) if probability is not None else None}))
    return {sid: fol.TemporalDetections(detections=dets) for sid, dets in out.items()}
