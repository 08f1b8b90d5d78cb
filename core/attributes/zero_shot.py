"""Offline attributes from the image-text matcher: one prompt per attribute value.

For each attribute, the crop is compared with one text prompt per allowed
value ("a person wearing a red top", ...); the softmax over the matcher's
scaled cosines gives the value and its confidence. Values below
``min_confidence`` become "unknown". Same schema, fields, chunked writes and
run record as the Gemini provider; no key needed.

Example::

    from person_finder.core.attributes.zero_shot import zero_shot_attributes
    zero_shot_attributes(dataset, matcher="google/siglip-base-patch16-224")
    dataset.first().attributes.confidence.gender
"""

from __future__ import annotations

import numpy as np

from .. import contract, defaults
from ..progress import notify
from .schema import BAG_COLOR_FIELDS, LIST_FIELDS, TEXT_FIELDS, UNKNOWN, allowed_values, attribute_schema
from .store import ChunkWriter, check_attributes_field, pending, save_run, to_document

#: Prompt template per attribute; ``{v}`` is the value (after VALUE_WORDS).
TEMPLATES = {
    "gender": "a photo of a {v}", "age_group": "a photo of {v}", "hair_length": "a photo of a person with {v}",
    "upper_type": "a person wearing {v}", "sleeve_length": "a person wearing a {v} top",
    "upper_colors": "a person wearing a {v} top", "lower_type": "a person wearing {v}",
    "lower_length": "a person wearing {v}", "lower_colors": "a person wearing {v} trousers",
    "shoes": "a person wearing {v}", "shoe_color": "a person wearing {v} shoes",
    "hat": "a person {v} a hat", "glasses": "a person {v}", "backpack": "a person {v} a backpack",
    "backpack_color": "a person carrying a {v} backpack", "handbag": "a person {v} a handbag",
    "handbag_color": "a person carrying a {v} handbag", "shoulder_bag": "a person {v} a shoulder bag",
    "shoulder_bag_color": "a person carrying a {v} shoulder bag", "posture": "a person {v}",
    "action": "a person {v}", "ethnicity": "a photo of a {v} person",
}
#: Words for values that do not read well in their template.
VALUE_WORDS = {
    "gender": {"male": "man", "female": "woman"},
    "age_group": {"child": "a child", "teenager": "a teenager", "adult": "an adult", "senior": "an elderly person"},
    "hair_length": {"short": "short hair", "long": "long hair", "bald": "a bald head"},
    "upper_type": {"t-shirt": "a t-shirt", "shirt": "a shirt", "sweater": "a sweater", "jacket": "a jacket",
                   "coat": "a coat", "dress": "a dress", "vest": "a vest"},
    "sleeve_length": {"long": "long-sleeved", "short": "short-sleeved"},
    "lower_type": {"skirt": "a skirt", "dress": "a dress"},
    "lower_length": {"long": "long trousers", "short": "shorts"},
    "shoes": {"formal": "formal shoes"},
    "hat": {"yes": "wearing", "no": "without"},
    "glasses": {"no": "without glasses", "glasses": "wearing glasses", "sunglasses": "wearing sunglasses"},
    "posture": {"lying": "lying down"},
    "action": {"standing still": "standing still", "carrying something": "carrying something"},
    **{bag: {"yes": "carrying", "no": "without"} for bag in BAG_COLOR_FIELDS},
}
SKIPPED = ("other",)


def attribute_prompts(schema):
    """``{field: {value: prompt}}`` for every categorical attribute of ``schema``."""
    prompts = {}
    for field in schema.model_fields:
        if field in TEXT_FIELDS or field == "other_accessories":
            continue
        words = VALUE_WORDS.get(field, {})
        prompts[field] = {v: TEMPLATES[field].format(v=words.get(v, v))
                          for v in allowed_values(schema, field) if v not in (UNKNOWN,) + SKIPPED}
    return prompts


def _predict(image_embeddings, text_embeddings, prompts, scale, min_confidence):
    """Per image: (values, confidence) from softmax over each field's prompts."""
    from .merge import template_description

    cos = image_embeddings @ text_embeddings.T
    out, start = [], 0
    spans = {}
    for field, by_value in prompts.items():
        spans[field] = (start, start + len(by_value), list(by_value))
        start += len(by_value)
    for row in cos:
        values, confidence = {}, {}
        for field, (a, b, names) in spans.items():
            logits = scale * row[a:b]
            probs = np.exp(logits - logits.max())
            probs /= probs.sum()
            k = int(probs.argmax())
            value = names[k] if probs[k] >= min_confidence else UNKNOWN
            values[field] = [value] if field in LIST_FIELDS and value != UNKNOWN else (
                [] if field in LIST_FIELDS else value)
            confidence[field] = float(probs[k])
        for bag, color in BAG_COLOR_FIELDS.items():
            if values[bag] != "yes":
                values[color], confidence[color] = UNKNOWN, 0.0
        values["other_accessories"] = []
        values["description"] = template_description(values)
        out.append((values, confidence))
    return out


def attributes_from_embeddings(model, image_embeddings, schema, min_confidence=defaults.ZERO_SHOT_MIN_CONFIDENCE,
                               prompted=None):
    """``[(values, confidence)]`` for image embeddings already computed by ``model`` (e.g. the person index's).

    Only the prompts go through the text tower (``prompted``: their
    :func:`prompt_embeddings`, computed once per run): a person indexed with
    the matcher gets its attributes without its crop being read or embedded again.

    Example::

        values, confidence = attributes_from_embeddings(matcher, stored_vectors, PersonAttributes)[0]
    """
    prompts, texts, scale = prompted or prompt_embeddings(model, schema)
    return _predict(np.asarray(image_embeddings, dtype=np.float32), texts, prompts, scale, float(min_confidence))


def prompt_embeddings(model, schema):
    """``(prompts, text embeddings, logit scale)`` of every attribute value's prompt; embed once per run."""
    prompts = attribute_prompts(schema)
    texts = model.embed_texts([p for by_value in prompts.values() for p in by_value.values()])
    return prompts, texts, float(model.logit_scale_and_bias()[0])


def zero_shot_attributes(samples, matcher=defaults.MATCHER_MODEL, include_sensitive=False, overwrite=False,
                         min_confidence=defaults.ZERO_SHOT_MIN_CONFIDENCE, batch_size=defaults.MATCHER_BATCH_SIZE,
                         field=contract.ATTRIBUTES_FIELD, error_field=contract.ATTRIBUTES_ERROR_FIELD,
                         run_key=contract.ATTRIBUTES_RUN_KEY, device=None, dry_run=False, on_progress=None):
    """Write zero-shot attributes (with confidences) for samples that lack them; returns a summary.

    ``matcher`` is a Hugging Face id / folder or a loaded ``ImageTextMatcher``.

    Example::

        zero_shot_attributes(dataset, matcher="/models/siglip-finetuned", overwrite=True)
    """
    from ..models.images import open_rgb
    from ..models.matcher import load_matcher

    if not 0.0 <= float(min_confidence) <= 1.0:
        raise ValueError(f"min_confidence={min_confidence!r}; use a number in [0, 1]")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size={batch_size!r}; use an integer >= 1")
    check_attributes_field(samples, field)
    if dry_run:
        return {"dry_run": True, "samples": len(pending(samples, field, overwrite)), "calls": 0}
    if not len(pending(samples, field, overwrite)):  # nothing to do: the last run's record stays the truth
        return {"todo": 0, "attributed": 0, "failed": 0, "run_key": run_key}
    schema = attribute_schema(include_sensitive)
    model = matcher if hasattr(matcher, "embed_images") else load_matcher(matcher, device=device, batch_size=batch_size)
    name = getattr(model, "name_or_path", str(matcher))
    prompted = prompt_embeddings(model, schema)
    todo = pending(samples, field, overwrite)
    ids, paths = todo.values("id"), todo.values("filepath")
    writer = ChunkWriter(samples, field=field, error_field=error_field, chunk_size=batch_size)
    for start in range(0, len(ids), int(batch_size)):
        batch, images = [], []
        for sample_id, path in zip(ids[start:start + batch_size], paths[start:start + batch_size]):
            try:
                images.append(open_rgb(path))
                batch.append(sample_id)
            except OSError as exc:
                writer.add(sample_id, error=f"zero-shot: cannot read image: {exc}")
        if images:
            predicted = attributes_from_embeddings(model, model.embed_images(images), schema, min_confidence,
                                                   prompted)
            for sample_id, (values, conf) in zip(batch, predicted):
                writer.add(sample_id, to_document(values, conf, provider="zero-shot", model=str(name)))
        notify(on_progress, min(start + batch_size, len(ids)) / max(len(ids), 1), "zero-shot attributes")
    writer.close()
    results = {"todo": len(ids), "attributed": writer.written, "failed": writer.failed}
    save_run(samples, run_key, {"provider": "zero-shot", "model": str(name), "field": field,
                                "prompt_version": contract.ATTRIBUTES_PROMPT_VERSION,
                                "include_sensitive": bool(include_sensitive),
                                "min_confidence": float(min_confidence)}, results)
    return {**results, "run_key": run_key}
