"""Offline attributes from the image-text matcher: one prompt per attribute value.

For each attribute, the crop is compared with one text prompt per allowed
value ("a person wearing a red top", ...); the softmax over the matcher's
scaled cosines gives the value and its confidence. Values below
``min_confidence`` become "unknown". Same schema, fields, chunked writes and
run record as the Gemini provider; no key needed.

A softmax is confident whether or not the matcher can see the attribute: a
small model may name the top's colour right 8 times in 10 and the trousers'
colour barely above chance, with the same 0.8. :func:`attribute_reliability`
measures, on images with known attributes, how far each attribute's
predictions agree with the truth beyond chance (Cohen's kappa, 0 = chance,
1 = always right); ``evaluate_matchers`` stores it with a fine-tuned matcher
and every later zero-shot run multiplies each confidence by it, so what the
matcher cannot see ends ``unknown`` (neutral in search) instead of a
confident guess.

Example::

    from person_finder.core.attributes.zero_shot import zero_shot_attributes
    zero_shot_attributes(dataset, matcher="google/siglip-base-patch16-224")
    dataset.first().attributes.confidence.gender
"""

from __future__ import annotations

import dataclasses

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


@dataclasses.dataclass
class Prompted:
    """Every attribute value's prompt embedded once per run, with the matcher's logit scale and reliability."""

    prompts: dict  # {field: {value: prompt}}
    texts: np.ndarray  # one row per prompt, in the order of ``prompts``
    scale: float
    reliability: dict  # {field: weight in [0, 1]} measured for this matcher; {} when never measured


def _predict(image_embeddings, prompted, min_confidence):
    """Per image: (values, confidence) from softmax over each field's prompts, times the field's reliability."""
    from .merge import template_description

    cos = image_embeddings @ prompted.texts.T
    out, start = [], 0
    spans = {}
    for field, by_value in prompted.prompts.items():
        spans[field] = (start, start + len(by_value), list(by_value))
        start += len(by_value)
    for row in cos:
        values, confidence = {}, {}
        for field, (a, b, names) in spans.items():
            logits = prompted.scale * row[a:b]
            probs = np.exp(logits - logits.max())
            probs /= probs.sum()
            k = int(probs.argmax())
            weight = float(probs[k]) * prompted.reliability.get(field, 1.0)
            value = names[k] if weight >= min_confidence else UNKNOWN
            values[field] = [value] if field in LIST_FIELDS and value != UNKNOWN else (
                [] if field in LIST_FIELDS else value)
            confidence[field] = weight
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
    return _predict(np.asarray(image_embeddings, dtype=np.float32), prompted or prompt_embeddings(model, schema),
                    float(min_confidence))


def prompt_embeddings(model, schema, calibrated=True):
    """:class:`Prompted` for every attribute value of ``schema``; embed once per run.

    ``calibrated``: use the reliability stored with the matcher (see
    :func:`stored_reliability`); False: every attribute weighs 1.

    Example::

        prompted = prompt_embeddings(matcher, PersonAttributes)
        prompted.reliability.get("lower_colors")   # e.g. 0.15 for a matcher that barely sees trousers
    """
    prompts = attribute_prompts(schema)
    texts = model.embed_texts([p for by_value in prompts.values() for p in by_value.values()])
    reliability = stored_reliability(getattr(model, "name_or_path", None)) if calibrated else {}
    return Prompted(prompts, texts, float(model.logit_scale_and_bias()[0]), reliability)


def stored_reliability(name_or_path):
    """``{attribute: reliability}`` stored with a matcher folder by ``evaluate_matchers``, or {} (never measured).

    Example::

        stored_reliability("runs/people")   # {'upper_colors': 0.67, 'lower_colors': 0.15, 'hat': 0.0, ...}
    """
    from ..models.matcher import matcher_info

    if not name_or_path:
        return {}
    return dict((matcher_info(name_or_path).get(contract.ATTRIBUTE_RELIABILITY_KEY) or {}).get("attributes") or {})


def _first_value(value):
    """A label's value as one string: a list's first known entry, "unknown" when nothing is known."""
    if isinstance(value, (list, tuple)):
        value = next((v for v in value if v not in (None, "", UNKNOWN)), UNKNOWN)
    return value if value not in (None, "") else UNKNOWN


def attribute_reliability(model, image_embeddings, labels, schema=None,
                          min_labelled=defaults.ZERO_SHOT_RELIABILITY_MIN_LABELLED):
    """``{attribute: reliability in [0, 1]}`` of ``model``'s zero-shot attributes against known ones.

    ``labels`` are attribute records (dicts or stored documents, e.g.
    ``merged_attributes``) of the images behind ``image_embeddings``.
    Reliability is Cohen's kappa of the predicted value against the known
    one over the images where the attribute is known, floored at 0 (no
    better than chance). Attributes known on fewer than ``min_labelled``
    images, or with only one value among them, are left out (not measured).

    Example::

        reliability = attribute_reliability(matcher, matcher.embed_images(crops), [spec_answer(s) for s in specs])
        reliability["upper_colors"]   # e.g. 0.67
    """
    from sklearn.metrics import cohen_kappa_score

    from .schema import PersonAttributes

    schema = schema or PersonAttributes
    prompted = prompt_embeddings(model, schema, calibrated=False)
    predicted = _predict(np.asarray(image_embeddings, dtype=np.float32), prompted, 0.0)
    labels = [label.to_dict() if hasattr(label, "to_dict") else (label or {}) for label in labels]
    out = {}
    for field in prompted.prompts:
        pairs = [(_first_value(label.get(field)), _first_value(values[field]))
                 for label, (values, _) in zip(labels, predicted)]
        pairs = [(want, got) for want, got in pairs if want != UNKNOWN]
        if len(pairs) < int(min_labelled) or len({want for want, _ in pairs}) < 2:
            continue
        wanted, got = zip(*pairs)
        out[field] = round(max(0.0, float(cohen_kappa_score(wanted, got))), 4)
    return out


def zero_shot_attributes(samples, matcher=defaults.MATCHER_MODEL, include_sensitive=False, overwrite=False,
                         min_confidence=defaults.ZERO_SHOT_MIN_CONFIDENCE, batch_size=defaults.MATCHER_BATCH_SIZE,
                         field=contract.ATTRIBUTES_FIELD, error_field=contract.ATTRIBUTES_ERROR_FIELD,
                         run_key=contract.ATTRIBUTES_RUN_KEY, device=None, dry_run=False, calibrated=True,
                         on_progress=None):
    """Write zero-shot attributes (with confidences) for samples that lack them; returns a summary.

    ``matcher`` is a Hugging Face id / folder or a loaded ``ImageTextMatcher``;
    ``calibrated``: weigh each attribute by the reliability stored with it
    (:func:`stored_reliability`).

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
    prompted = prompt_embeddings(model, schema, calibrated)
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
                                "min_confidence": float(min_confidence),
                                "reliability": prompted.reliability or None}, results)
    return {**results, "run_key": run_key}
