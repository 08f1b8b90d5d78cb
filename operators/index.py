"""Operator: build a text-searchable similarity index with the matcher."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..core import contract, defaults
from . import common


class BuildTextIndex(foo.Operator):
    """Embed images (or the patches of a detections field) with the matcher and index them."""

    @property
    def config(self):
        return common.long_running_config(
            "build_text_index", "build text index",
            "Index images or person patches with SigLIP so they can be searched by text",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        inputs.str("brain_key", default=contract.PERSON_INDEX_KEY, required=True, label="Index name (brain key)")
        inputs.str("matcher", default=defaults.MATCHER_MODEL, required=True, label="Matcher",
                   description="Hugging Face id or local folder of a SigLIP / SigLIP 2 / CLIP model")
        fields = ctx.dataset.get_field_schema(embedded_doc_type=None).keys() if ctx.dataset else []
        detection_fields = [f for f in fields if _is_detections(ctx.dataset, f)]
        choices = types.Dropdown()
        for name in detection_fields:
            choices.add_choice(name, label=name)
        inputs.enum("patches_field", choices.values(), default=None, view=choices, label="Patches field",
                    description="Index the boxes of this Detections field instead of whole images")
        inputs.int("batch_size", default=defaults.MATCHER_BATCH_SIZE, min=1, label="Batch size")
        common.add_backend_choice(inputs)
        common.add_execution_mode(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Build text index"))

    def resolve_delegation(self, ctx):
        return common.resolve_delegation(ctx)

    def execute(self, ctx):
        from ..core.search.index import build_text_index

        p = ctx.params
        results = build_text_index(
            ctx.target_view(), brain_key=p.get("brain_key", contract.PERSON_INDEX_KEY),
            matcher=p.get("matcher", defaults.MATCHER_MODEL), patches_field=p.get("patches_field"),
            batch_size=p.get("batch_size", defaults.MATCHER_BATCH_SIZE), backend=p.get("backend"),
            on_progress=common.progress_reporter(ctx),
        )
        return {"brain_key": results.key, "indexed": int(results.index_size)}


def _is_detections(dataset, field):
    import fiftyone.core.labels as fol

    try:
        return dataset.get_field(field).document_type is fol.Detections
    except AttributeError:
        return False
