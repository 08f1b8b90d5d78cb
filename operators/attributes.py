"""Operators over ``core.attributes``: generate person attributes, merge them per identity, audit them."""

from __future__ import annotations

import fiftyone.operators.types as types

from ..core import contract, defaults
from .base import Param, PersonFinderOperator, progress_reporter, warn_without_gemini_key

PROVIDERS = ("gemini", "zero-shot")


def _gemini(ctx):
    return ctx.params.get("provider", defaults.ATTRIBUTES_PROVIDER) == "gemini"


def _zero_shot(ctx):
    return not _gemini(ctx)


def _rewriting(ctx):
    return bool(ctx.params.get("rewrite"))


def _sample_fields(ctx):
    return sorted(ctx.dataset.get_field_schema()) if ctx.dataset else [contract.PERSON_ID_FIELD]


def warn_without_key(ctx, inputs):
    """Add a warning to the form when Gemini is chosen for a real run and no key is set."""
    if _gemini(ctx):
        warn_without_gemini_key(ctx, inputs)


class GeneratePersonAttributes(PersonFinderOperator):
    """Per-view attributes and a description, with Gemini or offline with the image-text matcher."""

    name, label = "generate_person_attributes", "generate attributes"
    description = "Clothing, bags, accessories and a description per person crop (Gemini or zero-shot)"
    params = (
        Param("provider", "enum", default=defaults.ATTRIBUTES_PROVIDER, choices=PROVIDERS, view="radio",
              label="Provider",
              description="gemini needs the GEMINI_API_KEY secret; zero-shot runs offline with the matcher"),
        Param("model", default=defaults.GEMINI_MODEL, label="Gemini model", when=_gemini),
        Param("views_per_call", "int", default=defaults.GEMINI_VIEWS_PER_CALL, min=1, label="Views per call",
              description="1 = one call per view; N = up to N views of one person_id per call", when=_gemini),
        Param("concurrency", "int", default=defaults.GEMINI_CONCURRENCY, min=1, label="Concurrent requests",
              when=_gemini),
        Param("requests_per_minute", "int", default=defaults.GEMINI_REQUESTS_PER_MINUTE, min=0,
              label="Requests per minute (0 = no cap)", when=_gemini),
        Param("matcher", default=defaults.MATCHER_MODEL, label="Matcher",
              description="Hugging Face id or folder of a SigLIP / CLIP model", when=_zero_shot),
        Param("min_confidence", "float", default=defaults.ZERO_SHOT_MIN_CONFIDENCE, min=0.0, max=1.0,
              label="Minimum confidence (below: unknown)", when=_zero_shot),
        Param("dry_run", "bool", default=False, label="Dry run",
              description="Only count the samples (and, with Gemini, the calls and estimated tokens)"),
        Param("include_sensitive", "bool", default=defaults.INCLUDE_SENSITIVE_ATTRIBUTES,
              label="Include sensitive attributes (ethnicity)", description="Off by default; opt in knowingly"),
        Param("overwrite", "bool", default=False, label="Overwrite",
              description="Redo samples that already have attributes (otherwise only the missing ones)"),
    )

    def extend_form(self, ctx, inputs):
        warn_without_key(ctx, inputs)

    def run(self, ctx, **params):
        from ..core.attributes import generate_person_attributes

        if params["provider"] == "gemini":
            params["api_key"] = ctx.secrets.get(contract.GEMINI_SECRET)
        return generate_person_attributes(ctx.target_view(), on_progress=progress_reporter(ctx), **params)


class AttributeIndexedPersons(PersonFinderOperator):
    """Attributes for the embedded persons of indexed images / videos, merged per track or identity."""

    name, label = "attribute_indexed_persons", "attributes for indexed persons"
    description = ("Clothing, bags and accessories of every indexed person (Gemini on the crops, or zero-shot from "
                   "the stored embeddings), merged per track or identity onto the person detections")
    params = (
        Param("provider", "enum", default=defaults.ATTRIBUTES_PROVIDER, choices=PROVIDERS, view="radio",
              label="Provider",
              description="gemini needs the GEMINI_API_KEY secret; zero-shot runs offline on the stored embeddings"),
        Param("group_by", "enum", default=defaults.PERSON_ATTRIBUTE_GROUP, choices=defaults.PERSON_ATTRIBUTE_GROUPS,
              view="radio", label="Merge per", description="track: video + track id; identity: after link identities"),
        Param("model", default=defaults.GEMINI_MODEL, label="Gemini model", when=_gemini),
        Param("concurrency", "int", default=defaults.GEMINI_CONCURRENCY, min=1, label="Concurrent requests",
              when=_gemini),
        Param("requests_per_minute", "int", default=defaults.GEMINI_REQUESTS_PER_MINUTE, min=0,
              label="Requests per minute (0 = no cap)", when=_gemini),
        Param("min_confidence", "float", default=defaults.ZERO_SHOT_MIN_CONFIDENCE, min=0.0, max=1.0,
              label="Minimum confidence (below: unknown)", when=_zero_shot),
        Param("accessory_min_views", "int", default=defaults.ACCESSORY_MIN_VIEWS, min=1,
              label="Views needed for an accessory"),
        Param("persons_field", default=contract.PERSONS_FIELD, label="Persons field"),
        Param("brain_key", default=contract.PERSON_INDEX_KEY, label="Index name (brain key)"),
        Param("dry_run", "bool", default=False, label="Dry run",
              description="Only count the persons to do (and, with Gemini, the calls and estimated tokens)"),
        Param("overwrite", "bool", default=False, label="Overwrite",
              description="Redo persons that already have attributes (otherwise only the missing ones)"),
    )

    def extend_form(self, ctx, inputs):
        warn_without_key(ctx, inputs)

    def run(self, ctx, **params):
        from ..core.identities.attributes import attribute_persons

        if params["provider"] == "gemini":
            params["api_key"] = ctx.secrets.get(contract.GEMINI_SECRET)
        return attribute_persons(ctx.target_view(), on_progress=progress_reporter(ctx), **params)

    def summarize(self, ctx, result):
        if result.get("dry_run"):
            return f"{result['todo']} of {result['persons']} embedded persons to do"
        groups = "identities" if result["group_by"] == "identity" else (
            "tracks" if ctx.dataset.media_type == "video" else "persons")
        return (f"{result['attributed']} crops attributed ({result['failed']} failed, see `"
                f"{contract.ATTRIBUTES_ERROR_FIELD}`); merged into {result['groups']} {groups} "
                f"(`{contract.MERGED_ATTRIBUTES_FIELD}` on each person)")


class MergePersonAttributes(PersonFinderOperator):
    """Consensus attributes, agreement and a description per identity, written to every view."""

    name, label = "merge_person_attributes", "merge attributes per identity"
    description = "Vote per attribute across the views of each person_id (or track id)"
    execution = "choose"
    params = (
        Param("group_field", "enum", default=contract.PERSON_ID_FIELD, choices=_sample_fields, label="Identity field",
              description="person_id, or the track id of crops cut from videos"),
        Param("scope_field", "enum", choices=_sample_fields, label="Where an id is valid",
              description="With a track id: the field naming its video (track ids restart in every video)",
              when=lambda ctx: ctx.params.get("group_field", contract.PERSON_ID_FIELD) != contract.PERSON_ID_FIELD),
        Param("overwrite_descriptions", "bool", default=False, label="Replace existing descriptions",
              description="Off: descriptions the merge did not write (yours, the dataset's) are kept"),
        Param("accessory_min_views", "int", default=defaults.ACCESSORY_MIN_VIEWS, min=1,
              label="Views needed for an accessory",
              description="A bag or hat counts when this many views see it (or all views, if fewer)"),
        Param("rewrite", "bool", default=False, label="Rewrite descriptions with Gemini",
              description="Otherwise a deterministic template of the merged attributes"),
        Param("model", default=defaults.GEMINI_MODEL, label="Gemini model", when=_rewriting),
    )

    def run(self, ctx, **params):
        from ..core.attributes.merge import merge_attributes

        if params["rewrite"]:
            params["api_key"] = ctx.secrets.get(contract.GEMINI_SECRET)
        return merge_attributes(ctx.target_view(), on_progress=progress_reporter(ctx), **params)


class AuditPersonAttributes(PersonFinderOperator):
    """Per-attribute agreement of generated attributes with Market-1501 ground truth."""

    name, label = "audit_person_attributes", "audit attributes against Market-1501"
    description = "Accuracy of each generated attribute against Market-1501's identity attributes"
    execution = "immediate"
    params = (
        Param("field", "enum", default=contract.ATTRIBUTES_FIELD, view="radio", label="Attributes to audit",
              choices=(contract.ATTRIBUTES_FIELD, contract.MERGED_ATTRIBUTES_FIELD)),
        Param("gt_field", default=contract.MARKET_ATTRIBUTES_FIELD, label="Ground-truth field"),
    )

    def run(self, ctx, **params):
        from ..core.attributes.audit import audit_attributes

        return audit_attributes(ctx.target_view(), **params)

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.float("mean_accuracy", label="Mean accuracy")
        table = types.TableView()
        for column in ("attribute", "accuracy", "compared", "unknown"):
            table.add_column(column, label=column)
        outputs.list("rows", types.Object(), view=table, label="Per attribute")
        return types.Property(outputs)


OPERATORS = [GeneratePersonAttributes, AttributeIndexedPersons, MergePersonAttributes, AuditPersonAttributes]
