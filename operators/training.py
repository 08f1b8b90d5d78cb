"""Operators: fine-tune the matcher, and evaluate + calibrate matchers side by side."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..core import contract, defaults
from . import common

_METRIC_COLUMNS = ("rank1", "rank5", "rank10", "mAP", "mINP", "threshold", "precision", "recall")


class FinetuneMatcher(foo.Operator):
    """Fine-tune SigLIP on the dataset's ``train`` people (descriptions + merged attributes)."""

    @property
    def config(self):
        return common.long_running_config(
            "finetune_matcher", "fine-tune matcher",
            "Fine-tune SigLIP on the train split's descriptions; resumable; recorded as a run",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        inputs.str("output_dir", required=True, label="Output folder",
                   description="Where the fine-tuned model, its checkpoints and model card go (re-run to resume)")
        inputs.str("base_model", default=defaults.MATCHER_MODEL, required=True, label="Base model",
                   description="Hugging Face id or folder of a SigLIP / SigLIP 2 (or CLIP with the InfoNCE loss)")
        inputs.enum("mode", ["full", "lora"], default=defaults.TRAIN_MODE, label="Fine-tuning",
                    description="lora trains small adapters (less memory, good for small data)")
        inputs.enum("loss", ["sigmoid", "infonce"], default=defaults.TRAIN_LOSS, label="Loss")
        inputs.int("epochs", default=defaults.TRAIN_EPOCHS, min=1, label="Epochs")
        inputs.int("batch_size", default=defaults.TRAIN_BATCH_SIZE, min=1, label="Batch size")
        inputs.float("learning_rate", default=None, label="Learning rate",
                     description=f"default {defaults.TRAIN_LEARNING_RATE} (full), {defaults.TRAIN_LORA_LEARNING_RATE} (lora)")
        inputs.float("val_fraction", default=defaults.TRAIN_VAL_FRACTION, min=0.0, max=0.9,
                     label="Validation fraction (of identities)")
        inputs.int("patience", default=defaults.TRAIN_PATIENCE, min=1, label="Early-stopping patience (epochs)")
        inputs.int("seed", default=defaults.TRAIN_SEED, label="Seed")
        inputs.str("run_key", default=contract.TRAIN_RUN_KEY, label="Run key")
        common.add_execution_mode(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Fine-tune matcher"))

    def resolve_delegation(self, ctx):
        return common.resolve_delegation(ctx)

    def execute(self, ctx):
        from ..core.training import TrainConfig
        from ..core.training.finetune import finetune

        p = ctx.params
        config = TrainConfig(
            base_model=p.get("base_model", defaults.MATCHER_MODEL), mode=p.get("mode", defaults.TRAIN_MODE),
            loss=p.get("loss", defaults.TRAIN_LOSS), epochs=p.get("epochs", defaults.TRAIN_EPOCHS),
            batch_size=p.get("batch_size", defaults.TRAIN_BATCH_SIZE), learning_rate=p.get("learning_rate"),
            patience=p.get("patience", defaults.TRAIN_PATIENCE), seed=p.get("seed", defaults.TRAIN_SEED),
        )
        result = finetune(ctx.target_view(), p["output_dir"], config,
                          val_fraction=p.get("val_fraction", defaults.TRAIN_VAL_FRACTION),
                          run_key=p.get("run_key", contract.TRAIN_RUN_KEY), on_progress=common.progress_reporter(ctx))
        return {"model_dir": result.model_dir, "best_epoch": result.best_epoch,
                "epochs_run": len(result.history), "stopped_early": result.stopped_early,
                "best_val_mAP": result.best_metrics.get("val_mAP")}


class EvaluateMatchers(foo.Operator):
    """Rank-1/5/10, mAP, mINP and a calibrated threshold for matchers, side by side (query/gallery)."""

    @property
    def config(self):
        return common.long_running_config(
            "evaluate_matchers", "evaluate and calibrate matchers",
            "Text-to-person Rank-k / mAP / mINP on query vs gallery, zero-shot vs fine-tuned, "
            "with a threshold calibrated to a target precision",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx)
        inputs.str("zero_shot", default=defaults.MATCHER_MODEL, label="Zero-shot model",
                   description="Hub id or folder; leave empty to skip")
        inputs.str("finetuned", default=None, label="Fine-tuned model folder",
                   description="e.g. the output folder of 'fine-tune matcher'")
        inputs.float("target_precision", default=defaults.CALIBRATION_TARGET_PRECISION, min=0.01, max=1.0,
                     label="Calibration target precision")
        inputs.str("run_key", default=contract.EVAL_RUN_KEY, label="Run key")
        common.add_execution_mode(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Evaluate matchers"))

    def resolve_delegation(self, ctx):
        return common.resolve_delegation(ctx)

    def execute(self, ctx):
        from ..core.training.evaluation import evaluate_matchers

        p = ctx.params
        models = {name: p[key] for name, key in (("zero-shot", "zero_shot"), ("fine-tuned", "finetuned")) if p.get(key)}
        rows = evaluate_matchers(
            ctx.target_view(), models or None,
            target_precision=p.get("target_precision", defaults.CALIBRATION_TARGET_PRECISION),
            run_key=p.get("run_key", contract.EVAL_RUN_KEY), on_progress=common.progress_reporter(ctx),
        )
        return {"rows": [{k: v for k, v in r.items() if k in ("model",) + _METRIC_COLUMNS} for r in rows],
                "plot": _bar_chart(rows)}

    def resolve_output(self, ctx):
        outputs = types.Object()
        table = types.TableView()
        for key in ("model",) + _METRIC_COLUMNS:
            table.add_column(key, label=key)
        outputs.list("rows", types.Object(), label="Text-to-person retrieval (query vs gallery)", view=table)
        outputs.plot("plot", label="Zero-shot vs fine-tuned")
        return types.Property(outputs)


def _bar_chart(rows):
    """Plotly data: one bar group per metric, one series per model."""
    metrics = ["rank1", "rank5", "rank10", "mAP", "mINP"]
    return [dict(type="bar", name=r["model"], x=metrics, y=[r.get(m) for m in metrics]) for r in rows]
