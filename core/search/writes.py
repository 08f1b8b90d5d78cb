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


def declare_embeddings(dataset, persons_field):
    """Declare ``embedding`` (a vector) and ``embedding_id`` on the person detections, once."""
    import fiftyone.core.fields as fof

    video = dataset.media_type == "video"
    has, add = (dataset.has_frame_field, dataset.add_frame_field) if video else \
        (dataset.has_sample_field, dataset.add_sample_field)
    if not has(persons_field):
        import fiftyone.core.labels as fol

        add(persons_field, fof.EmbeddedDocumentField, embedded_doc_type=fol.Detections)
    for attr, ftype in ((contract.EMBEDDING_ATTR, fof.VectorField), (contract.EMBEDDING_ID_ATTR, fof.StringField)):
        if not has(f"{persons_field}.detections.{attr}"):
            add(f"{persons_field}.detections.{attr}", ftype)


def embedded_detection(box, width, height, confidence, vector, **attributes):
    """A person detection carrying its own crop embedding (``embedding_id`` = its own id)."""
    det = person_detection(box, width, height, confidence, **attributes)
    det[contract.EMBEDDING_ATTR] = vector
    det[contract.EMBEDDING_ID_ATTR] = det.id
    return det


def write_video_persons(dataset, sample_id, tracks, persons_field):
    """Replace one video's ``frames.persons`` with the tracks; returns its ``(vectors, frame ids, label ids)``.

    Each embedding is stored once, on the detection whose crop it was cut
    from (``tracks.keyframes``); every detection names it in
    ``embedding_id``. Bulk writes only (no Sample / Frame documents are
    loaded): old persons are cleared, then the frames with people are
    written ``VIDEO_FRAMES_PER_WRITE`` at a time.
    """
    import fiftyone.core.labels as fol
    from bson import ObjectId

    width, height = tracks.frame_size
    video = dataset.select(sample_id)
    declare_embeddings(dataset, persons_field)
    video.clear_frame_field(persons_field)
    key_ids = {row: str(ObjectId()) for row in tracks.keyframes}

    def detection(number, track_id, box, conf, row):
        attributes = {contract.EMBEDDING_ID_ATTR: key_ids[row]}
        if tracks.keyframes[row] == number:  # the detection this embedding's crop was cut from
            attributes.update(id=key_ids[row], **{contract.EMBEDDING_ATTR: tracks.embeddings[row]})
        return person_detection(box, width, height, conf, index=track_id, **attributes)

    numbers = sorted(tracks.frames)
    for start in range(0, len(numbers), defaults.VIDEO_FRAMES_PER_WRITE):
        persons = {n: fol.Detections(detections=[detection(n, *person) for person in tracks.frames[n]])
                   for n in numbers[start:start + defaults.VIDEO_FRAMES_PER_WRITE]}
        dataset.set_values("frames." + persons_field, {sample_id: persons}, key_field="id", validate=False)
    numbers, frame_ids = video.values(["frames.frame_number", "frames.id"])
    frame_of = dict(zip(numbers[0], frame_ids[0]))
    rows = sorted(key_ids)
    return tracks.embeddings[rows], [frame_of[tracks.keyframes[r]] for r in rows], [key_ids[r] for r in rows]


def write_person_scores(dataset, persons_field, video, owner_ids, label_ids, values):
    """Set attributes of many person labels in one write pass: one update per sample (images) or frame (videos).

    ``values`` maps an attribute to one value per label (a None list is skipped).

    Example::

        write_person_scores(dataset, "persons", False, sample_ids, label_ids, {"similarity": [0.3, 0.1]})
    """
    from bson import ObjectId
    from pymongo import UpdateOne

    values = {attr: column for attr, column in values.items() if column is not None}
    by_owner = {}
    for j, (owner, label_id) in enumerate(zip(owner_ids, label_ids)):
        by_owner.setdefault(owner, []).append((label_id, j))
    coll = dataset._frame_collection if video else dataset._sample_collection
    ops = []
    for owner, labels in by_owner.items():
        update, filters = {}, []
        for n, (label_id, j) in enumerate(labels):
            filters.append({f"l{n}._id": ObjectId(label_id)})
            for attr, column in values.items():
                update[f"{persons_field}.detections.$[l{n}].{attr}"] = column[j]
        ops.append(UpdateOne({"_id": ObjectId(owner)}, {"$set": update}, array_filters=filters))
        if len(ops) >= defaults.SCORE_WRITES_PER_BATCH:
            coll.bulk_write(ops, ordered=False)
            ops = []
    if ops:
        coll.bulk_write(ops, ordered=False)
