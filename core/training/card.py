"""What a fine-tuned matcher's folder says about itself: ``person_finder.json`` and the model card ``README.md``.

``person_finder.json`` (:data:`core.contract.MATCHER_INFO_FILE`) holds the
base model's hub id, the training settings and history, where the data came
from, and, once ``evaluate_matchers`` ran, the test metrics, the
calibrated threshold (search's default, see
:func:`core.models.matcher.matcher_threshold`) and how reliable its
zero-shot attributes are (:data:`core.contract.ATTRIBUTE_RELIABILITY_KEY`,
read by every zero-shot run). The card is rendered from it each time it
changes, so the two never disagree.

Example::

    from person_finder.core.training.card import record_evaluation
    record_evaluation("runs/people", row, dataset_name="market1501")   # after evaluate_matchers
"""

from __future__ import annotations

import json
import os
import re

from .. import contract


def base_model_id(base_model):
    """The hub id behind ``base_model``: itself for a hub id, a fine-tuned folder's own base, a hub cache path's
    repo; None for any other local folder.

    Example::

        base_model_id("google/siglip-base-patch16-224")   # 'google/siglip-base-patch16-224'
        base_model_id("runs/people")                       # the id that runs/people was fine-tuned from
    """
    from ..models.matcher import matcher_info

    base_model = str(base_model)
    if not os.path.isdir(base_model):
        return base_model
    inherited = matcher_info(base_model).get("base_model")
    if inherited:
        return inherited
    cached = re.search(r"models--([^/]+)--([^/]+)", os.path.abspath(base_model))
    return f"{cached.group(1)}/{cached.group(2)}" if cached else None


def _write_info(folder, info):
    path = os.path.join(folder, contract.MATCHER_INFO_FILE)
    with open(path + ".partial", "w") as f:
        json.dump(info, f, indent=2, default=str)
    os.replace(path + ".partial", path)
    render_model_card(folder)


def write_training_info(folder, config, result, data=None):
    """Record a finished fine-tuning in ``folder`` (info file and card); ``data`` says where the data came from.

    Example::

        write_training_info("runs/people", config, result, data={"dataset": "market1501"})
    """
    import dataclasses

    from ..models.matcher import matcher_info

    info = matcher_info(folder)
    if info.get("history") != result.history:  # new weights: an earlier evaluation no longer describes them
        info.pop("evaluation", None)
        info.pop("calibration", None)
        info.pop(contract.ATTRIBUTE_RELIABILITY_KEY, None)
    info.update(base_model=base_model_id(config.base_model), base_model_path=str(config.base_model),
                training=dataclasses.asdict(config), history=result.history, best_epoch=result.best_epoch,
                stopped_early=result.stopped_early, data=data or {})
    _write_info(folder, info)


def record_evaluation(folder, row, dataset_name=None):
    """Store an ``evaluate_matchers`` row (test metrics, calibrated threshold) with the matcher in ``folder``.

    Example::

        record_evaluation("runs/people", rows[1], dataset_name="market1501")
        matcher_threshold("runs/people") == rows[1]["threshold"]
    """
    from ..models.matcher import matcher_info

    info = matcher_info(folder)
    keys = ("threshold", "threshold_probability", "target_precision", "target_reached", "calibrated_on",
            "precision", "recall")
    info["calibration"] = {k: row.get(k) for k in keys}
    info["evaluation"] = {"dataset": dataset_name, **{k: v for k, v in row.items() if k not in keys + ("path",)}}
    _write_info(folder, info)


def record_attribute_reliability(folder, reliability, measured_on):
    """Store per-attribute zero-shot reliability (:func:`core.attributes.zero_shot.attribute_reliability`).

    Example::

        record_attribute_reliability("runs/people", {"upper_colors": 0.67, "hat": 0.0}, "312 val images")
    """
    from ..models.matcher import matcher_info

    info = matcher_info(folder)
    info[contract.ATTRIBUTE_RELIABILITY_KEY] = {"attributes": dict(reliability), "measured_on": str(measured_on)}
    _write_info(folder, info)


def _fmt(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _table(rows):
    if not rows:
        return "(none yet)"
    keys = list(rows[0])
    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)] +
                     ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows])


def render_model_card(folder):
    """(Re)write ``folder/README.md`` from its ``person_finder.json``: base model, data, metrics, threshold, use.

    Example::

        render_model_card("runs/people"); open("runs/people/README.md").read()
    """
    from ..models.matcher import matcher_info

    info = matcher_info(folder)
    config = info.get("training") or {}
    base = info.get("base_model")
    data = info.get("data") or {}
    evaluation, calibration = info.get("evaluation"), info.get("calibration")
    provenance = "\n".join(f"- {k.replace('_', ' ')}: {v}" for k, v in data.items()) or "- not recorded"
    if evaluation:
        metrics = _table([{k: v for k, v in evaluation.items() if k != "dataset"}])
        test = f"On the query / gallery splits of dataset `{evaluation.get('dataset')}`:\n\n{metrics}"
    else:
        test = "Not evaluated yet: run `evaluate_matchers` (it stores the test metrics and threshold here)."
    if calibration:
        reached = "reached" if calibration.get("target_reached") else "NOT reached (the most precise cut is given)"
        threshold = (f"Cosine threshold **{_fmt(calibration.get('threshold'))}** (SigLIP probability "
                     f"{_fmt(calibration.get('threshold_probability'))}), calibrated on {calibration.get('calibrated_on')} "
                     f"for precision {calibration.get('target_precision')}: target {reached}; on the test pairs "
                     f"precision {_fmt(calibration.get('precision'))}, recall {_fmt(calibration.get('recall'))}. "
                     "Search uses it as its default threshold.")
    else:
        threshold = "No calibrated threshold yet (search falls back to its core default)."
    measured = info.get(contract.ATTRIBUTE_RELIABILITY_KEY)
    if measured:
        attributes = ", ".join(f"{k} {v:.2f}" for k, v in sorted(measured["attributes"].items(), key=lambda kv: -kv[1]))
        reliability = (f"Measured on {measured['measured_on']} (Cohen's kappa against known attributes, 0 = chance): "
                       f"{attributes or 'no attribute known often enough'}. Zero-shot attribute runs weigh each "
                       "confidence by it, so attributes near 0 end `unknown`.")
    else:
        reliability = "Not measured yet: `evaluate_matchers` measures it on images with merged attributes."
    text = f"""---
library_name: transformers
{f"base_model: {base}" + chr(10) if base else ""}tags: [person-search, text-to-image-retrieval, siglip, person-finder]
---

# Person Finder matcher

Fine-tuned from `{base or "a local checkpoint"}` by Person Finder (`core.training`) for text-based person
search: a text such as "a woman in a white t-shirt with a brown shoulder bag" against whole-body
person crops. Load it with `load_matcher(<this folder>)`; `{contract.MATCHER_INFO_FILE}` holds this card's data.

## Training

- mode: {config.get("mode")}, loss: {config.get("loss")} (same-person pairs are positives), epochs: {config.get("epochs")},
  batch size: {config.get("batch_size")}, learning rate: {config.get("learning_rate")}, seed: {config.get("seed")}
- best epoch (by validation mAP): {info.get("best_epoch")}; stopped early: {info.get("stopped_early")}

## Data

{provenance}

## Test metrics

{test}

## Threshold

{threshold}

## Zero-shot attribute reliability

{reliability}

## Metrics per epoch

{_table(info.get("history") or [])}

## Intended use

Ranking person crops (from a detector or a re-identification dataset) by how well they match a
clothing / appearance description, for search and curation with a human reviewing the results.

## Out of scope

Identifying people by name, inferring sensitive traits (ethnicity, health, religion), surveillance
decisions without human review, and any use on data collected without a legal basis. Scores are
similarities, not proof of identity; calibrate thresholds on your own held-out data.
"""
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(text)
