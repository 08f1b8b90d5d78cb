"""The model card (``README.md``) saved next to a fine-tuned matcher."""

from __future__ import annotations

import os


def write_model_card(folder, config, result, extra=None):
    """Write ``folder/README.md``: base model, data, splits, metrics, intended and out-of-scope use."""
    rows = "\n".join(
        "| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r.values()) + " |"
        for r in result.history
    )
    header = ("| " + " | ".join(result.history[0].keys()) + " |\n|" + "---|" * len(result.history[0])) if result.history else ""
    text = f"""---
library_name: transformers
base_model: {config.base_model}
tags: [person-search, text-to-image-retrieval, siglip, person-finder]
---

# Person Finder matcher

Fine-tuned from `{config.base_model}` by Person Finder (`core.training`) for text-based person
search: a text such as "a woman in a white t-shirt with a brown shoulder bag" against whole-body
person crops. Load it with `load_matcher("{os.path.abspath(folder)}")`.

## Training

- mode: {config.mode}, loss: {config.loss} (same-person pairs are positives), epochs: {config.epochs},
  batch size: {config.batch_size}, learning rate: {config.learning_rate}, seed: {config.seed}
- best epoch (by validation mAP): {result.best_epoch}; stopped early: {result.stopped_early}

{extra or ""}

## Metrics per epoch

{header}
{rows}

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
