"""Similarity fused with attribute constraints: how a query's people are re-ranked by what they wear.

Each scored person (an image detection, a video track) is looked up in its
merged attributes (``merged_attributes`` on its detections, written by
``attribute_indexed_persons``); :func:`fuse` gives it

    fused = (1 - w) x similarity scaled to [0, 1] over the ranked people + w x (attribute match + 1) / 2

where the attribute match is :func:`core.attributes.constraints.attribute_match`
(confidence-weighted, ``unknown`` neutral). People contradicting a hard
constraint (a known, different value) are flagged, and the queries leave them out.

Example::

    from person_finder.core.search.fusion import fuse
    ranked = fuse(people, label_of, docs, {"upper_colors": "red"}, weight=0.5, hard=["upper_colors"])
    [f.person.sample_id for f in ranked if not f.contradicted]
"""

from __future__ import annotations

import dataclasses

from .. import contract, defaults


@dataclasses.dataclass
class FusedPerson:
    """A scored person with its attribute match (in [-1, 1]), fused score (in [0, 1]) and failed hard constraints."""

    person: object  # gallery.ScoredPerson
    attribute_score: float
    fused: float
    contradicted: list  # hard constraints its attributes contradict: excluded from results when not empty


def check_fusion(constraints, attribute_weight, hard):
    """Checked constraints (see :func:`core.attributes.constraints.read_constraints`), weight and hard fields.

    Example::

        check_fusion("upper_colors=red", 0.5, ["upper_colors"])   # ({'upper_colors': 'red'}, 0.5, ['upper_colors'])
    """
    from ..attributes.constraints import read_constraints

    constraints = read_constraints(constraints)
    if not 0.0 <= float(attribute_weight) <= 1.0:
        raise ValueError(f"attribute_weight={attribute_weight!r}; use a number in [0, 1] (0: similarity only)")
    if hard not in (True, False, None):
        hard = [hard] if isinstance(hard, str) else list(hard)
        unknown = [f for f in hard if f not in constraints]
        if unknown:
            raise ValueError(f"hard constraints {unknown} are not among the constraints {list(constraints)}; "
                             "name constrained attributes, or pass hard=True for all of them")
    return constraints, float(attribute_weight), hard or False


def attribute_docs(dataset, patches_field, video, label_ids):
    """``{label id: merged attributes dict}`` of the given person detections (those without: left out).

    Example::

        attribute_docs(dataset, "persons", False, [row["label_id"] for row in rows])
    """
    prefix = ("frames." if video else "") + patches_field
    path = f"{prefix}.detections.{contract.MERGED_ATTRIBUTES_FIELD}"
    if not dataset.has_field(path):
        raise ValueError(f"attribute constraints need attributes on the persons, and {dataset.name!r} has no "
                         f"{path!r}: run attribute_indexed_persons first (or pass no constraints)")
    label_ids = set(label_ids)
    # a few people: only their labels; many: one pass over the field (no query with a huge list of ids)
    view = dataset.select_labels(ids=list(label_ids), fields=prefix) \
        if len(label_ids) <= defaults.ATTRIBUTE_LOOKUP_BY_ID_MAX else dataset
    ids, docs = view.values([f"{prefix}.detections.id", path], unwind=True)
    return {label_id: doc for label_id, doc in zip(ids, docs) if doc is not None and label_id in label_ids}


def fuse(people, label_of, docs, constraints, weight=defaults.ATTRIBUTE_WEIGHT, hard=False):
    """``people`` (scored persons) as :class:`FusedPerson`, best fused score first.

    ``label_of(person)`` names the label whose attributes stand for the
    person (a track's detections all carry the track's consensus); ``docs``
    maps a label id to its merged attributes.

    Example::

        ranked = fuse(people, lambda p: gallery.label_ids[p.best], docs, {"hat": "yes"}, weight=0.5)
    """
    from ..attributes.constraints import attribute_match, contradicted

    if not people:
        return []
    scores = [p.score for p in people]
    low, high = min(scores), max(scores)
    out = []
    for person in people:
        doc = docs.get(label_of(person))
        match = attribute_match(constraints, doc)
        similarity = (person.score - low) / (high - low) if high > low else 1.0
        out.append(FusedPerson(person, round(match, 6), (1 - weight) * similarity + weight * (match + 1) / 2,
                               contradicted(constraints, doc, hard) if hard else []))
    return sorted(out, key=lambda f: -f.fused)
