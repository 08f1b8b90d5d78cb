"""Audit generated attributes against Market-1501 ground truth.

Market-1501's attribute annotations (stored by the importer in
``market_attributes`` as the original codes: 1 = no, 2 = yes; age 1-4;
``clothes`` 1 dress / 2 pants; ``up`` / ``down`` 1 long / 2 short; ``hair``
1 short / 2 long; ``gender`` 1 male / 2 female) are compared, attribute by
attribute, with what our schema's values map to. A generated "unknown" is
counted as not covered, not as wrong.

Example::

    from person_finder.core.attributes.audit import audit_attributes, format_table
    report = audit_attributes(dataset, field="merged_attributes")
    print(format_table(report))
"""

from __future__ import annotations

import collections

from .. import contract
from .schema import UNKNOWN

_AGE = {"child": 1, "teenager": 2, "adult": 3, "senior": 4}
_YES_NO = {"yes": 2, "no": 1}


def _colors(values, field, color):
    colors = [c for c in values.get(field) or [] if c != UNKNOWN]
    return None if not colors else (2 if color in colors else 1)


def _lower_clothes(values):
    kind = values.get("lower_type")
    return {"skirt": 1, "dress": 1, "trousers": 2, "jeans": 2, "shorts": 2}.get(kind)


#: Market-1501 attribute -> function of our values returning the Market code, or None if unknown.
MARKET_MAP = {
    "age": lambda v: _AGE.get(v.get("age_group")),
    "backpack": lambda v: _YES_NO.get(v.get("backpack")),
    "bag": lambda v: _YES_NO.get(v.get("shoulder_bag")),
    "handbag": lambda v: _YES_NO.get(v.get("handbag")),
    "clothes": _lower_clothes,
    "down": lambda v: {"long": 1, "short": 2}.get(v.get("lower_length")),
    "up": lambda v: {"long": 1, "short": 2, "sleeveless": 2}.get(v.get("sleeve_length")),
    "hair": lambda v: {"short": 1, "bald": 1, "long": 2}.get(v.get("hair_length")),
    "hat": lambda v: _YES_NO.get(v.get("hat")),
    "gender": lambda v: {"male": 1, "female": 2}.get(v.get("gender")),
}
for _c in ("black", "white", "red", "purple", "yellow", "gray", "blue", "green", "pink", "brown"):
    MARKET_MAP["up" + _c] = lambda v, c=_c: _colors(v, "upper_colors", c)
    MARKET_MAP["down" + _c] = lambda v, c=_c: _colors(v, "lower_colors", c)


def to_market_codes(values):
    """Our attribute values as Market-1501 codes (None where we said "unknown")."""
    return {name: fn(values) for name, fn in MARKET_MAP.items()}


def reference_codes(truth):
    """Market-1501 codes of a reference record: Market's own codes, a record of our schema, or a prototype dict.

    Example::

        reference_codes({"upred": 2})                                   # {'upred': 2}
        reference_codes({"clothing": {"upper_body": "Red t-shirt"}})["upred"]   # 2
    """
    if truth is None:
        return {}
    if hasattr(truth, "to_dict"):
        truth = truth.to_dict()
    if all(isinstance(v, (int, float)) or v is None for k, v in truth.items() if k in MARKET_MAP):
        if any(k in MARKET_MAP for k in truth):
            return truth
    if "upper_colors" in truth:
        return to_market_codes(truth)
    from .prototype import from_prototype

    return to_market_codes(from_prototype(truth))


def audit_attributes(samples, field=contract.ATTRIBUTES_FIELD, gt_field=contract.MARKET_ATTRIBUTES_FIELD,
                     run_key=contract.AUDIT_RUN_KEY):
    """Per-attribute agreement of ``field`` with Market-1501 ground truth in ``gt_field``.

    ``gt_field`` may also hold records of our schema or the prototype's
    attribute dicts (``prototype_attributes`` after
    ``convert_prototype_dataset``): they are compared as Market codes.

    Returns ``{"samples": n, "mean_accuracy": x, "rows": [{attribute, compared,
    correct, unknown, accuracy}, ...]}``; accuracy is over the samples where
    both sides have a value. Only attributes present in the ground truth are
    listed. The report is recorded as run ``run_key`` (the dataset card
    says "audited" only when it exists).

    Example::

        audit_attributes(dataset.match_tags("query"), field="attributes")["rows"][0]
    """
    for name in (field, gt_field):
        if not samples.has_field(name):
            raise ValueError(f"field {name!r} not found; audit needs generated attributes and Market-1501 "
                             f"ground truth ({contract.MARKET_ATTRIBUTES_FIELD!r}, written by the Market importer; or "
                             "'prototype_attributes' on a converted prototype dataset)")
    both = samples.exists(field).exists(gt_field)
    counts = collections.defaultdict(lambda: collections.Counter())
    for doc, truth in zip(*both.values([field, gt_field])):
        codes = to_market_codes({k: doc.get_field(k) for k in doc.field_names if doc.has_field(k)})
        for name, true_code in reference_codes(truth).items():
            if name not in MARKET_MAP or true_code is None:
                continue
            ours = codes[name]
            counts[name]["total"] += 1
            if ours is None:
                counts[name]["unknown"] += 1
            else:
                counts[name]["compared"] += 1
                counts[name]["correct"] += int(ours == int(true_code))
    rows = [{"attribute": name, "compared": c["compared"], "correct": c["correct"], "unknown": c["unknown"],
             "accuracy": round(c["correct"] / c["compared"], 4) if c["compared"] else None}
            for name, c in ((n, counts[n]) for n in MARKET_MAP if n in counts)]
    scored = [r["accuracy"] for r in rows if r["accuracy"] is not None]
    report = {"samples": len(both), "field": field, "gt_field": gt_field,
              "mean_accuracy": round(sum(scored) / len(scored), 4) if scored else None, "rows": rows}
    from .store import save_run

    record = {("num_samples" if k == "samples" else k): v for k, v in report.items()}  # "samples" is reserved
    save_run(samples, run_key, {"field": field, "gt_field": gt_field}, record)
    return report


def format_table(report):
    """The audit as a fixed-width text table."""
    lines = [f"{'attribute':<12} {'accuracy':>8} {'compared':>8} {'unknown':>8}"]
    for r in report["rows"]:
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
        lines.append(f"{r['attribute']:<12} {acc:>8} {r['compared']:>8} {r['unknown']:>8}")
    lines.append(f"mean accuracy {report['mean_accuracy']} over {report['samples']} samples ({report['field']})")
    return "\n".join(lines)
