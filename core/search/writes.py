"""Bulk writes of the search's labels and sample fields (no Sample / Frame documents loaded).

Example::

    from person_finder.core.search.writes import write_sample_values
    write_sample_values(view, {"person_similarity": {sample_id: 0.42}})
"""

from __future__ import annotations

from .. import contract, defaults


def person_detection(box, width, height, confidence, **attributes):
    import fiftyone.core.labels as fol

    x1, y1, x2, y2 = box
    return fol.Detection(label=contract.PERSON_LABEL, confidence=float(confidence),
                         bounding_box=[x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height], **attributes)


def _declare(dataset, name):
    """Declare our sample-level fields up front, so all-None values can be written."""
    import fiftyone.core.fields as fof
    import fiftyone.core.labels as fol

    kinds = {
        contract.PERSON_ERROR_FIELD: dict(ftype=fof.StringField),
        contract.SAMPLE_SIMILARITY_FIELD: dict(ftype=fof.FloatField),
        contract.PERSON_TRACKS_FIELD: dict(ftype=fof.IntField),
        contract.VIDEO_MATCHES_FIELD: dict(ftype=fof.EmbeddedDocumentField, embedded_doc_type=fol.TemporalDetections),
    }
    if name in kinds and not dataset.has_sample_field(name):
        dataset.add_sample_field(name, **kinds[name])


def write_sample_values(samples, fields):
    for field, values in fields.items():
        if values:
            _declare(samples._root_dataset, field)
            samples._root_dataset.set_values(field, values, key_field="id")


def write_video_persons(dataset, sample_id, tracks, persons_field):
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
        persons = {n: fol.Detections(detections=[person_detection(box, width, height, conf, index=track_id)
                                                 for track_id, box, conf, _ in tracks.frames[n]])
                   for n in numbers[start:start + defaults.VIDEO_FRAMES_PER_WRITE]}
        dataset.set_values("frames." + persons_field, {sample_id: persons}, key_field="id", validate=False)
    numbers, frame_ids = video.values(["frames.frame_number", "frames.id"])
    rows = {number: [row for *_, row in people] for number, people in tracks.frames.items() if people}
    return {fid: tracks.embeddings[rows[n]] for n, fid in zip(numbers[0], frame_ids[0]) if n in rows}
