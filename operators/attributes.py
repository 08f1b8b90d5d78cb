"""Operators: generate person attributes, merge them per identity, audit them against Market-1501."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..core import contract, defaults
from . import common

PROVIDERS = ("gemini", "zero-shot")


class GeneratePersonAttributes(foo.Operator):
    """Per-view attributes and a description, with Gemini or offline with the image-text matcher."""

    @property
    def config(self):
        return common.long_running_config(
            "generate_person_attributes", "generate attributes",
            "Clothing, bags, accessories and a description per person crop (Gemini or zero-shot)",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        provider = ctx.params.get("provider", defaults.ATTRIBUTES_PROVIDER)
        radio = types.RadioGroup()
        for name in PROVIDERS:
            radio.add_choice(name, label=name)
        inputs.enum("provider", radio.values(), default=defaults.ATTRIBUTES_PROVIDER, view=radio, label="Provider",
                    description="gemini needs the GEMINI_API_KEY secret; zero-shot runs offline with the matcher")
        if provider == "gemini":
            inputs.str("model", default=defaults.GEMINI_MODEL, label="Gemini model")
            inputs.int("views_per_call", default=defaults.GEMINI_VIEWS_PER_CALL, min=1, label="Views per call",
                       description="1 = one call per view; N = up to N views of one person_id per call")
            inputs.int("concurrency", default=defaults.GEMINI_CONCURRENCY, min=1, label="Concurrent requests")
            inputs.int("requests_per_minute", default=defaults.GEMINI_REQUESTS_PER_MINUTE, min=0,
                       label="Requests per minute (0 = no cap)")
            inputs.bool("dry_run", default=False, label="Dry run",
                        description="Only count the calls and estimate the tokens")
            if not ctx.params.get("dry_run") and not ctx.secrets.get(contract.GEMINI_SECRET):
                inputs.view("no_key", types.Warning(
                    label=f"The {contract.GEMINI_SECRET} secret is not set",
                    description="Set it for this plugin (or the environment), choose zero-shot, or do a dry run"))
        else:
            inputs.str("matcher", default=defaults.MATCHER_MODEL, label="Matcher",
                       description="Hugging Face id or folder of a SigLIP / CLIP model")
            inputs.float("min_confidence", default=defaults.ZERO_SHOT_MIN_CONFIDENCE, min=0.0, max=1.0,
                         label="Minimum confidence (below: unknown)")
        inputs.bool("include_sensitive", default=defaults.INCLUDE_SENSITIVE_ATTRIBUTES,
                    label="Include sensitive attributes (ethnicity)", description="Off by default; opt in knowingly")
        inputs.bool("overwrite", default=False, label="Overwrite",
                    description="Redo samples that already have attributes (otherwise only the missing ones)")
        common.add_execution_mode(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Generate person attributes"))

    def resolve_delegation(self, ctx):
        return common.resolve_delegation(ctx)

    def execute(self, ctx):
        from ..core.attributes import generate_person_attributes

        p = ctx.params
        provider = p.get("provider", defaults.ATTRIBUTES_PROVIDER)
        kwargs = dict(include_sensitive=bool(p.get("include_sensitive", defaults.INCLUDE_SENSITIVE_ATTRIBUTES)),
                      overwrite=bool(p.get("overwrite", False)), dry_run=bool(p.get("dry_run", False)),
                      on_progress=common.progress_reporter(ctx))
        if provider == "gemini":
            kwargs.update(api_key=ctx.secrets.get(contract.GEMINI_SECRET), model=p.get("model", defaults.GEMINI_MODEL),
                          views_per_call=int(p.get("views_per_call", defaults.GEMINI_VIEWS_PER_CALL)),
                          concurrency=int(p.get("concurrency", defaults.GEMINI_CONCURRENCY)),
                          requests_per_minute=int(p.get("requests_per_minute", defaults.GEMINI_REQUESTS_PER_MINUTE)))
        else:
            kwargs.update(matcher=p.get("matcher", defaults.MATCHER_MODEL),
                          min_confidence=float(p.get("min_confidence", defaults.ZERO_SHOT_MIN_CONFIDENCE)))
        return generate_person_attributes(ctx.target_view(), provider=provider, **kwargs)


class MergePersonAttributes(foo.Operator):
    """Consensus attributes, agreement and a description per identity, written to every view."""

    @property
    def config(self):
        return common.long_running_config(
            "merge_person_attributes", "merge attributes per identity",
            "Vote per attribute across the views of each person_id (or track id)",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        fields = sorted(ctx.dataset.get_field_schema()) if ctx.dataset else [contract.PERSON_ID_FIELD]
        choices = types.Dropdown()
        for name in fields:
            choices.add_choice(name, label=name)
        default_group = contract.PERSON_ID_FIELD if contract.PERSON_ID_FIELD in fields else None
        inputs.enum("group_field", choices.values(), default=default_group, view=choices,
                    label="Identity field", description="person_id, or the track id of crops cut from videos")
        inputs.int("accessory_min_views", default=defaults.ACCESSORY_MIN_VIEWS, min=1,
                   label="Views needed for an accessory",
                   description="A bag or hat counts when this many views see it (or all views, if fewer)")
        inputs.bool("rewrite", default=False, label="Rewrite descriptions with Gemini",
                    description="Otherwise a deterministic template of the merged attributes")
        if ctx.params.get("rewrite"):
            inputs.str("model", default=defaults.GEMINI_MODEL, label="Gemini model")
        common.add_execution_mode(ctx, inputs, delegate_by_default=False)
        return types.Property(inputs, view=types.View(label="Merge attributes per identity"))

    def resolve_delegation(self, ctx):
        return common.resolve_delegation(ctx, delegate_by_default=False)

    def execute(self, ctx):
        from ..core.attributes.merge import merge_attributes

        p = ctx.params
        extra = {}
        if p.get("rewrite"):
            extra = dict(api_key=ctx.secrets.get(contract.GEMINI_SECRET), model=p.get("model", defaults.GEMINI_MODEL))
        return merge_attributes(ctx.target_view(), group_field=p.get("group_field") or contract.PERSON_ID_FIELD,
                                accessory_min_views=int(p.get("accessory_min_views", defaults.ACCESSORY_MIN_VIEWS)),
                                rewrite=bool(p.get("rewrite", False)), on_progress=common.progress_reporter(ctx),
                                **extra)


class AuditPersonAttributes(foo.Operator):
    """Per-attribute agreement of generated attributes with Market-1501 ground truth."""

    @property
    def config(self):
        return foo.OperatorConfig(
            name="audit_person_attributes",
            label="Person Finder: audit attributes against Market-1501",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        choices = types.RadioGroup()
        for name in (contract.ATTRIBUTES_FIELD, contract.MERGED_ATTRIBUTES_FIELD):
            choices.add_choice(name, label=name)
        inputs.enum("field", choices.values(), default=contract.ATTRIBUTES_FIELD, view=choices,
                    label="Attributes to audit")
        inputs.str("gt_field", default=contract.MARKET_ATTRIBUTES_FIELD, label="Ground-truth field")
        return types.Property(inputs, view=types.View(label="Audit attributes"))

    def execute(self, ctx):
        from ..core.attributes.audit import audit_attributes

        p = ctx.params
        return audit_attributes(ctx.target_view(), field=p.get("field", contract.ATTRIBUTES_FIELD),
                                gt_field=p.get("gt_field", contract.MARKET_ATTRIBUTES_FIELD))

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.float("mean_accuracy", label="Mean accuracy")
        table = types.TableView()
        for column in ("attribute", "accuracy", "compared", "unknown"):
            table.add_column(column, label=column)
        outputs.list("rows", types.Object(), view=table, label="Per attribute")
        return types.Property(outputs)


OPERATORS = [GeneratePersonAttributes, MergePersonAttributes, AuditPersonAttributes]
