"""Text queries against the person index: rank people, or write the scores back to the dataset.

:func:`search_persons` embeds only the text, scores every indexed person,
writes ``similarity`` (and SigLIP ``probability``) on each person, marks
matches with the label ``match``, writes ``person_similarity`` and, for
videos, ``person_matches`` (one span per matching track), and returns the
samples sorted by best match. :func:`rank_persons` returns the same ranking
as JSON-able rows without writing anything.

Example::

    from person_finder.core.search import rank_persons, search_persons
    view = search_persons(dataset, "a woman in a white t-shirt with a brown shoulder bag", threshold=0.5,
                          threshold_type="probability")
    rows = rank_persons(dataset, "red top and blue trousers", k=10)
"""

from __future__ import annotations

import numpy as np

from .. import contract, defaults
from ..progress import notify
from .gallery import candidate_gallery, checked_index, load_gallery
from .results import record_search
from .validation import check_query, check_threshold
from .writes import write_person_scores, write_sample_values


def _prepare_query(samples, query, brain_key, k, threshold, threshold_type, candidates=False):
    """Check a query's arguments (before anything is written); returns the gallery and the cosine cut.

    With ``candidates`` and a top-``k`` query on a vector backend other than
    sklearn, the gallery holds only the backend's nearest candidates.
    """
    if isinstance(query, str) or not hasattr(query, "__len__"):  # else an embedding: query by example
        check_query(query)
    check_threshold(threshold, threshold_type)
    if k is not None and int(k) < 1:
        raise ValueError(f"k must be >= 1 or None, got {k}")
    method = checked_index(samples, brain_key).get_brain_info(brain_key).config.method
    if candidates and k is not None and method != "sklearn":
        gallery = candidate_gallery(samples, brain_key, query, k)
    else:  # sklearn keeps its vectors in this process anyway: the whole gallery, cached per index version
        gallery = load_gallery(samples, brain_key)
    return gallery, _threshold_cosine(gallery, threshold, threshold_type)


def _default_threshold(gallery, threshold, threshold_type):
    """``threshold``, or (None) the one calibrated for the index's matcher (else the core default)."""
    from ..models.matcher import matcher_threshold

    return matcher_threshold(gallery.matcher.name_or_path, threshold_type) if threshold is None else threshold


def _threshold_cosine(gallery, threshold, threshold_type):
    """The threshold as a cosine (probabilities go through SigLIP's calibration)."""
    if threshold is None or threshold_type == "cosine":
        return threshold
    return gallery.matcher.cosine_for_probability(threshold)


def _fused(dataset, gallery, people, constraints, weight, hard):
    """``people`` as :class:`~.fusion.FusedPerson`, best first: by fused score with constraints, else by similarity."""
    from .fusion import FusedPerson, attribute_docs, fuse

    if not constraints:
        return [FusedPerson(p, None, None, []) for p in sorted(people, key=lambda p: -p.score)]
    label_of = lambda person: gallery.label_ids[person.best]  # noqa: E731 - a track's labels share its consensus
    docs = attribute_docs(dataset, gallery.patches_field, gallery.video, [label_of(p) for p in people])
    return fuse(people, label_of, docs, constraints, weight, hard)


def rank_persons(samples, query, brain_key=contract.PERSON_INDEX_KEY, k=defaults.TOP_K, threshold=None,
                 threshold_type="cosine", constraints=None, attribute_weight=defaults.ATTRIBUTE_WEIGHT, hard=False):
    """Rank the indexed people of ``samples`` against ``query``; embeds only the text, writes nothing.

    Signature: ``rank_persons(samples, query, brain_key="person_index", k=25,
    threshold=None, threshold_type="cosine", constraints=None,
    attribute_weight=0.5, hard=False) -> list[dict]``. Images give one
    row per person, videos one row per track (its best-scoring frame).
    Rows, best first, at most ``k`` (None = all), only those passing
    ``threshold`` (on the similarity) when one is given::

        {"sample_id": str, "frame_number": int | None, "label_id": str, "track_id": int | None,
         "similarity": float, "probability": float | None, "bounding_box": [x, y, w, h] (relative),
         "filepath": str, "match": bool}

    ``match`` says whether the row passes ``threshold`` (or, when none is
    given, the matcher's calibrated threshold, see :func:`core.models.matcher.matcher_threshold`).

    ``constraints`` (a dict or ``"attr=value, ..."`` text, e.g. from
    :func:`core.attributes.constraints.parse_query`) rank by the fused score
    of :mod:`.fusion` instead (``attribute_weight`` its attribute share) and
    add ``attribute_score`` and ``fused_score`` to the rows; ``hard`` (True,
    or attribute names) leaves out people whose known attributes contradict
    those constraints (``unknown`` never does).

    Example::

        rows = rank_persons(dataset, "red top and blue trousers", k=5, threshold=0.6,
                            threshold_type="probability")
        rows = rank_persons(dataset, "red top and blue trousers", constraints=parse_query("red top and blue trousers"),
                            hard=["upper_colors"])
    """
    from .fusion import check_fusion

    constraints, weight, hard = check_fusion(constraints, attribute_weight, hard)
    gallery, cut = _prepare_query(samples, query, brain_key, k, threshold, threshold_type, candidates=True)
    cosine, _ = gallery.score(query)
    allowed = set(samples.values("id")) if samples is not samples._root_dataset else None
    match_cut = cut if cut is not None else _default_threshold(gallery, None, "cosine")
    people = [p for p in gallery.people(cosine) if (allowed is None or p.sample_id in allowed)
              and (cut is None or p.score >= cut)]
    rows = []
    for fused in _fused(samples._root_dataset, gallery, people, constraints, weight, hard):
        if fused.contradicted:
            continue
        person, j = fused.person, fused.person.best
        probability = gallery.matcher.probability(person.score) if isinstance(query, str) else None
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
        if constraints:
            rows[-1].update(attribute_score=fused.attribute_score, fused_score=round(fused.fused, 6))
        if k is not None and len(rows) >= int(k):
            break
    return rows


def search_persons(samples, query, brain_key=contract.PERSON_INDEX_KEY, threshold=None,
                   threshold_type="cosine", k=None, constraints=None, attribute_weight=defaults.ATTRIBUTE_WEIGHT,
                   hard=False, on_progress=None, query_name=None):
    """Score every indexed person against ``query`` and write the results; returns a sorted view.

    Writes ``similarity`` / ``probability`` on each person, the label
    ``match`` on people passing ``threshold`` (cosine, or SigLIP probability
    with ``threshold_type="probability"``; None: the threshold calibrated for
    the index's matcher by ``evaluate_matchers``, else the core default) and ``person`` on the others,
    ``person_similarity`` per sample (its best person) and, for videos,
    ``person_matches``: one TemporalDetection per matching track (support =
    first..last frame, confidence = the track's score). In videos a track's
    score is the mean similarity over its frames, and a track is matched
    (all its boxes labelled ``match``) or not as a whole. Re-running
    overwrites these fields; the query and threshold behind the labels are
    recorded (:func:`core.search.last_search`), the score fields declared
    (sidebar filters) and matches coloured apart in the dataset's saved
    color scheme. ``query`` may also be an image embedding (query by
    example); ``query_name`` is what the record calls it (default: the text).
    Returns ``samples`` sorted by ``person_similarity`` (best first), limited
    to ``k`` samples if given.

    With ``constraints`` (see :func:`rank_persons`) each person also gets
    ``attribute_score`` and ``fused_score``, samples are sorted by their best
    fused score, and people contradicting a ``hard`` constraint are never
    labelled ``match``.

    Example::

        view = search_persons(dataset, "red top and blue trousers", threshold=0.2)
        view = search_persons(dataset, "red top", constraints={"upper_colors": "red"}, hard=True)
        session.view = view
    """
    from .fusion import check_fusion

    constraints, weight, hard = check_fusion(constraints, attribute_weight, hard)
    gallery, cut = _prepare_query(samples, query, brain_key, k, threshold, threshold_type)
    threshold = _default_threshold(gallery, threshold, threshold_type)
    cut = _threshold_cosine(gallery, threshold, threshold_type)
    notify(on_progress, 0.1, "embedding the query")
    cosine, probability = gallery.score(query)
    dataset = samples._root_dataset
    ids = samples.values("id")
    inside = set(ids)
    people = [p for p in gallery.people(cosine) if p.sample_id in inside]  # nothing outside the view is touched
    fused = _fused(dataset, gallery, people, constraints, weight, hard)
    best, order_by, members, is_match, attribute_of, fused_of = {}, {}, [], {}, {}, {}
    for entry in fused:
        person = entry.person
        members.append(person.members)
        for j in person.members:
            is_match[int(j)] = person.score >= cut and not entry.contradicted
            attribute_of[int(j)], fused_of[int(j)] = entry.attribute_score, entry.fused
        best[person.sample_id] = max(best.get(person.sample_id, -1.0), person.score)
        ranking = entry.fused if constraints else person.score
        order_by[person.sample_id] = max(order_by.get(person.sample_id, -1.0), ranking)
    notify(on_progress, 0.4, "writing scores")
    rows = np.concatenate(members) if members else np.zeros(0, dtype=int)
    write_person_scores(dataset, gallery.patches_field, gallery.video,
                        [gallery.owner_ids[j] for j in rows], [gallery.label_ids[j] for j in rows],
                        {contract.SIMILARITY_ATTR: cosine[rows].tolist(),
                         contract.PROBABILITY_ATTR:  # an example's cosines have none: clear the last text's
                             probability[rows].tolist() if probability is not None else [None] * len(rows),
                         **_fusion_columns(dataset, gallery, rows, constraints, attribute_of, fused_of),
                         "label": [contract.MATCH_LABEL if is_match[int(j)] else contract.PERSON_LABEL for j in rows]})
    write_sample_values(samples, {contract.SAMPLE_SIMILARITY_FIELD: {sid: best.get(sid) for sid in ids}})
    kept = [entry.person for entry in fused if not entry.contradicted]
    if gallery.video:
        write_sample_values(samples, {contract.VIDEO_MATCHES_FIELD: _track_spans(gallery, kept, cut, ids,
                                                                                  calibrated=probability is not None)})
    record_search(dataset, gallery.patches_field, gallery.video, query=query_name or _name(query),
                  brain_key=brain_key, threshold=threshold, threshold_type=threshold_type, cosine_threshold=cut,
                  matches=sum(1 for p in kept if p.score >= cut), people=len(people),
                  by_example=probability is None, constraints=constraints or None,
                  attribute_weight=weight if constraints else None, hard=hard if constraints else None)
    notify(on_progress, 1.0, "done")
    order = sorted(ids, key=lambda sid: -order_by[sid] if sid in order_by else float("inf"))
    view = samples.select(order, ordered=True)  # this query's ranking, whatever another query writes later
    return view.limit(int(k)) if k is not None else view


def _name(query):
    """What a search record calls ``query``: the text, or "an example" for an embedding."""
    return query if isinstance(query, str) else "an example"


def _fusion_columns(dataset, gallery, rows, constraints, attribute_of, fused_of):
    """The attribute and fused score of each written person; None (clearing an earlier query's) without constraints."""
    if constraints:
        return {contract.ATTRIBUTE_SCORE_ATTR: [attribute_of[int(j)] for j in rows],
                contract.FUSED_SCORE_ATTR: [fused_of[int(j)] for j in rows]}
    path = ("frames." if gallery.video else "") + f"{gallery.patches_field}.detections.{contract.FUSED_SCORE_ATTR}"
    return {a: [None] * len(rows) for a in (contract.ATTRIBUTE_SCORE_ATTR, contract.FUSED_SCORE_ATTR)} \
        if dataset.has_field(path) else {}


def _track_spans(gallery, people, cut, ids, calibrated=True):
    """``{video id: TemporalDetections}``, one detection per track scoring at least ``cut``, best first.

    ``calibrated``: the scores are text-image cosines, which have a SigLIP probability.
    """
    import fiftyone.core.labels as fol

    out = {sid: [] for sid in ids}
    for person in sorted(people, key=lambda p: -p.score):
        if person.sample_id in out and person.score >= cut:
            probability = gallery.matcher.probability(person.score) if calibrated else None
            out[person.sample_id].append(fol.TemporalDetection(
                label=contract.MATCH_LABEL, support=[person.first, person.last], confidence=person.score,
                index=person.track, **{contract.SIMILARITY_ATTR: person.score, contract.PROBABILITY_ATTR:
                                       float(probability) if probability is not None else None}))
    return {sid: fol.TemporalDetections(detections=dets) for sid, dets in out.items()}
