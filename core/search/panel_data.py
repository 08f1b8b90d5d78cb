"""What the person-search panel shows, computed without the App: indexes, ranked crops, histogram, views.

The panel (``panels/person_search.py``) only reads its widgets and calls
these functions; everything here works from plain Python too.

Example::

    from person_finder.core.search import panel_data
    panel_data.text_indexes(dataset)                    # [{"key": "person_index", ...}]
    result = panel_data.run_query(dataset, "red top and blue trousers", "person_index", k=10, threshold=0.1)
    result["rows"][0]["crop"]                           # "data:image/jpeg;base64,..."
    session.view = panel_data.results_view(dataset, result["rows"])
    panel_data.recent_queries(dataset)                  # ["red top and blue trousers", ...]
"""

from __future__ import annotations

import base64
import io

import numpy as np

from .. import contract, defaults

_RECENT_KEY = "recent_queries"


# --------------------------------------------------------------------------- indexes


def text_indexes(samples):
    """Person indexes of ``samples``' dataset (made by ``index_persons``): the ones the panel can rank people with.

    Returns ``[{"key", "patches_field", "model"}]`` sorted by key.

    Example::

        [i["key"] for i in text_indexes(dataset)]       # ["person_index"]
    """
    from .store import person_index_keys

    dataset = samples._root_dataset
    found = []
    for key in person_index_keys(dataset):
        config = dataset.get_brain_info(key).config
        found.append({"key": key, "patches_field": config.patches_field, "model": config.model_kwargs["name_or_path"]})
    return found


# --------------------------------------------------------------------------- querying


def query_chips(samples, brain_key, query, api_key=None):
    """The query's constraints as the panel's chips ``{attribute: {"value", "on"}}`` ({} without attributes).

    Example::

        query_chips(dataset, "person_index", "red top, no backpack")
        # {"upper_colors": {"value": "red", "on": True}, "backpack": {"value": "no", "on": True}}
    """
    from ..attributes.constraints import parse_query

    dataset = samples._root_dataset
    if brain_key not in dataset.list_brain_runs() or not str(query or "").strip():
        return {}
    field = dataset.get_brain_info(brain_key).config.patches_field
    prefix = "frames." if dataset.media_type == "video" else ""
    if not dataset.has_field(f"{prefix}{field}.detections.{contract.MERGED_ATTRIBUTES_FIELD}"):
        return {}
    return {name: {"value": value, "on": True} for name, value in parse_query(query, api_key=api_key).items()}


def run_query(samples, query, brain_key, k=defaults.TOP_K, threshold=defaults.MATCH_THRESHOLD,
              bins=defaults.PANEL_HISTOGRAM_BINS, crop_height=defaults.PANEL_CROP_HEIGHT, label=False,
              constraints=None):
    """Rank every indexed person of ``samples`` against ``query``; the top ``k`` get crop thumbnails.

    Scores come from :func:`core.search.rank_persons` (one text embedding,
    no crop re-embedded). Returns ``{"rows", "histogram", "above", "total"}``:
    ``rows`` are ``rank_persons`` rows plus ``rank`` (1-based) and ``crop``
    (a JPEG data URL), ``histogram`` is :func:`score_histogram` of all
    scores, ``above`` counts people at or above ``threshold`` (cosine).
    With ``label`` the query's scores and ``match`` labels are also written
    to the dataset (:func:`core.search.search_persons`), as the panel does,
    so the grid shows the same matches as the list. ``constraints`` rank by
    the fused score (:func:`core.search.rank_persons`); each row then also
    carries ``verification``, the cached Gemini verdict of that person for
    this query (None when not verified; nothing is sent).

    Example::

        result = run_query(dataset, "a man with a black backpack", "person_index", k=5, threshold=0.1)
    """
    from .query import rank_persons, search_persons
    from .validation import check_threshold
    from .verify import cached_verdicts

    check_k(k)
    check_threshold(threshold, "cosine")  # NaN and out-of-range values would match no one, silently
    everyone = rank_persons(samples, query, brain_key=brain_key, k=None, constraints=constraints or None)
    if label:
        search_persons(samples, query, brain_key=brain_key, threshold=threshold, constraints=constraints or None)
    result = ranked_result(everyone, k, threshold, bins, crop_height)
    verdicts = cached_verdicts(samples, query, constraints, [row["label_id"] for row in result["rows"]])
    for row in result["rows"]:
        row["verification"] = verdicts.get(row["label_id"])
    return result


def check_k(k):
    """Raise unless ``k`` (results shown) is a whole number from 1 to ``defaults.PANEL_MAX_K``.

    Example::

        check_k(25)                                      # fine; check_k(0) raises ValueError
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= defaults.PANEL_MAX_K:
        raise ValueError(f"k must be a whole number from 1 to {defaults.PANEL_MAX_K}, got {k!r}")


def ranked_result(everyone, k, threshold, bins=defaults.PANEL_HISTOGRAM_BINS, crop_height=defaults.PANEL_CROP_HEIGHT):
    """The panel's result from all ranked rows: the top ``k`` with rank, match and crop; the histogram of all.

    Returns ``{"rows", "histogram", "above", "total"}`` (see :func:`run_query`).

    Example::

        ranked_result(rank_persons(dataset, "red top", k=None), k=10, threshold=0.1)
    """
    histogram = score_histogram([r["similarity"] for r in everyone], threshold, bins)
    rows = [dict(r, rank=i + 1, match=r["similarity"] >= threshold) for i, r in enumerate(everyone[:int(k)])]
    for row, crop in zip(rows, person_crops(rows, crop_height)):
        row["crop"] = crop
    return {"rows": rows, "histogram": histogram, "above": histogram["above"], "total": histogram["total"]}


def score_histogram(scores, threshold, bins=defaults.PANEL_HISTOGRAM_BINS):
    """Histogram of ``scores`` with the count at or above ``threshold``.

    Returns ``{"counts", "edges", "threshold", "above", "total"}`` (JSON-able).

    Example::

        score_histogram([0.1, 0.2, 0.3], threshold=0.15, bins=2)["above"]   # 2
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size:
        low, high = float(min(scores.min(), threshold)), float(max(scores.max(), threshold))
    else:
        low, high = float(threshold) - 0.5, float(threshold) + 0.5
    if high - low < 1e-6:
        low, high = low - 0.05, high + 0.05
    counts, edges = np.histogram(scores, bins=int(bins), range=(low, high))
    return {"counts": counts.tolist(), "edges": edges.tolist(), "threshold": float(threshold),
            "above": int((scores >= threshold).sum()), "total": int(scores.size)}


# --------------------------------------------------------------------------- crops


def person_crops(rows, height=defaults.PANEL_CROP_HEIGHT, quality=defaults.PANEL_CROP_QUALITY):
    """A JPEG data URL of each row's person box (from its image, or its frame of a video); None if unreadable.

    Example::

        person_crops([{"filepath": "a.jpg", "frame_number": None, "bounding_box": [0.1, 0.2, 0.2, 0.5]}])
    """
    from ..models.images import crop_relative

    frames = {}
    crops = []
    for row in rows:
        key = (row["filepath"], row.get("frame_number"))
        if key not in frames:
            frames[key] = _read_frame(*key)
        image, box = frames[key], row.get("bounding_box")
        crops.append(_data_url(crop_relative(image, box), height, quality) if image is not None and box else None)
    return crops


def _read_frame(filepath, frame_number=None):
    """RGB array of an image, or of a video's (1-based) frame; None when it cannot be read."""
    from ..models.images import read_rgb_array

    if frame_number is None:
        try:
            return read_rgb_array(filepath)
        except OSError:
            return None
    import cv2

    capture = cv2.VideoCapture(filepath)
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(frame_number) - 1)
        ok, frame = capture.read()
    finally:
        capture.release()
    return frame[:, :, ::-1] if ok else None


def _data_url(array, height, quality):
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(array))
    scale = height / image.height
    image = image.resize((max(1, round(image.width * scale)), height), Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- recent queries


def _store(samples):
    from fiftyone.operators.store import ExecutionStore

    return ExecutionStore.create(contract.PANEL_STORE, samples._root_dataset._doc.id)


def recent_queries(samples):
    """The dataset's recent panel queries, newest first (kept in FiftyOne's execution store, in MongoDB).

    Example::

        recent_queries(dataset)                          # ["red top and blue trousers"]
    """
    return list(_store(samples).get(_RECENT_KEY) or [])


def remember_query(samples, query, limit=defaults.PANEL_RECENT_QUERIES):
    """Put ``query`` first in the dataset's recent queries (at most ``limit``); returns the new list.

    Example::

        remember_query(dataset, "a man with a black backpack")
    """
    query = query.strip()
    queries = [query] + [q for q in recent_queries(samples) if q != query]
    _store(samples).set(_RECENT_KEY, queries[:int(limit)])
    return queries[:int(limit)]


# --------------------------------------------------------------------------- views


def result_view(samples, row, patches_field):
    """What a clicked result opens: its image, or the clip of its track in a video (only that track's boxes).

    Example::

        session.view = result_view(dataset, rows[0], "persons")
    """
    from fiftyone import ViewField as F

    if row.get("frame_number") is None:
        return samples.select(row["sample_id"])
    clips = _track_clips(samples, [row], patches_field)
    return clips.filter_labels(f"frames.{patches_field}", F("index") == row["track_id"], only_matches=False)


def results_view(samples, rows, patches_field):
    """All ranked results as one view: person patches in rank order (images) or one clip per track (videos).

    Example::

        session.view = results_view(dataset, rows, "persons")
    """
    if not rows:
        raise ValueError("there are no results to show; run a query first")
    if rows[0].get("frame_number") is None:
        label_ids = [r["label_id"] for r in rows]
        patches = samples.select_labels(ids=label_ids, fields=patches_field).to_patches(patches_field)
        return patches.select(label_ids, ordered=True)
    return _track_clips(samples, rows, patches_field)


def _track_clips(samples, rows, patches_field):
    """Clips spanning the first to last frame of each row's track, videos in rank order."""
    wanted = {}
    for row in rows:
        wanted.setdefault(row["sample_id"], set()).add(row["track_id"])
    videos = samples.select(list(wanted), ordered=True)
    ids, numbers, tracks = videos.values(["id", "frames.frame_number", f"frames.{patches_field}.detections.index"])
    spans = []
    for sid, frame_numbers, frame_tracks in zip(ids, numbers, tracks):
        seen = {}
        for number, indexes in zip(frame_numbers, frame_tracks):
            for index in indexes or []:
                if index in wanted[sid]:
                    first, last = seen.get(index, (number, number))
                    seen[index] = (min(first, number), max(last, number))
        spans.append(sorted(seen.values()))
    return videos.to_clips(spans)
