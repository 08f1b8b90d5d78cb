"""Checks of a search's arguments, run before anything is written.

Example::

    from person_finder.core.search.validation import check_threshold, detections_fields
    check_threshold(0.6, "probability")
    detections_fields(dataset, exclude=["persons"])   # ['ground_truth']
"""

from __future__ import annotations

from .. import defaults

THRESHOLD_TYPES = defaults.THRESHOLD_TYPES


def check_detections_field(samples, path):
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


def check_query(query):
    """Raise unless ``query`` is non-empty text that encodes as UTF-8 (no lone surrogates), as tokenizers need."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"the search text must be a non-empty string, got {query!r}")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"the search text holds {query[e.start:e.end]!r} at position {e.start}, which is not a "
                         "character (a lone UTF-16 surrogate); type the text again or paste it as plain text") from None


def detections_path(samples, field):
    return ("frames." + field) if samples.media_type == "video" else field
