"""Operators over ``core.training``: fine-tune the matcher, and evaluate + calibrate matchers side by side."""

from __future__ import annotations

import fiftyone.operators.types as types

from ..core import contract, defaults
from .base import Param, PersonFinderOperator, progress_reporter


_METRIC_COLUMNS = ("rank1", "rank5", "rank10", "mAP", "mINP", "threshold", "precision", "recall", "target_precision",
                   "target_reached")


#: TrainConfig fields the form sets; the rest of TrainConfig keeps its defaults.
_CONFIG_PARAMS = ("base_model", "mode", "loss", "epochs", "batch_size", "learning_rate", "patience", "seed")


class FinetuneMatcher(PersonFinderOperator):
    """Fine-tune SigLIP on the dataset's ``train`` people (descriptions + merged attributes)."""

    name, label = "finetune_matcher", "fine-tune matcher"
    description = "Fine-tune SigLIP on the train split's descriptions; resumable; recorded as a run"
    params = (
        Param("output_dir", required=True, label="Output folder",
              description="Where the fine-tuned model, its checkpoints and model card go (re-run to resume)"),
        Param("base_model", default=defaults.MATCHER_MODEL, required=True, label="Base model",
              description="Hugging Face id or folder of a SigLIP / SigLIP 2 (or CLIP with the InfoNCE loss)"),
        Param("mode", "enum", default=defaults.TRAIN_MODE, choices=defaults.TRAIN_MODES, label="Fine-tuning",
              description="lora trains small adapters (less memory, good for small data)"),
        Param("loss", "enum", default=defaults.TRAIN_LOSS, choices=defaults.TRAIN_LOSSES, label="Loss"),
        Param("epochs", "int", default=defaults.TRAIN_EPOCHS, min=1, label="Epochs"),
        Param("batch_size", "int", default=defaults.TRAIN_BATCH_SIZE, min=1, label="Batch size"),
        Param("learning_rate", "float", label="Learning rate",
              description=f"default {defaults.TRAIN_LEARNING_RATE} (full), {defaults.TRAIN_LORA_LEARNING_RATE} (lora)"),
        Param("val_fraction", "float", default=defaults.TRAIN_VAL_FRACTION, min=0.0, max=0.9,
              label="Validation fraction (of identities)"),
        Param("patience", "int", default=defaults.TRAIN_PATIENCE, min=1, label="Early-stopping patience (epochs)"),
        Param("seed", "int", default=defaults.TRAIN_SEED, label="Seed"),
        Param("run_key", label="Run key", description=f"Empty: {contract.TRAIN_RUN_KEY}, or the next free "
                                                       f"{contract.TRAIN_RUN_KEY}_N when another model holds it"),
    )

    def run(self, ctx, output_dir, **params):
        from ..core.training import TrainConfig
        from ..core.training.finetune import finetune

        config = TrainConfig(**{name: params.pop(name) for name in _CONFIG_PARAMS})
        result = finetune(ctx.target_view(), output_dir, config, on_progress=progress_reporter(ctx), **params)
        return {"model_dir": result.model_dir, "run_key": result.run_key, "best_epoch": result.best_epoch,
                "epochs_run": len(result.history), "stopped_early": result.stopped_early,
                "best_val_mAP": result.best_metrics.get("val_mAP")}


class EvaluateMatchers(PersonFinderOperator):
    """Rank-1/5/10, mAP, mINP and a calibrated threshold for matchers, side by side (query/gallery)."""

    name, label = "evaluate_matchers", "evaluate and calibrate matchers"
    description = ("Text-to-person Rank-k / mAP / mINP on query vs gallery, zero-shot vs fine-tuned, "
                   "with a threshold calibrated to a target precision")
    params = (
        Param("zero_shot", default=defaults.MATCHER_MODEL, label="Zero-shot model",
              description="Hub id or folder; leave empty to skip"),
        Param("finetuned", label="Fine-tuned model folder", description="e.g. the output folder of 'fine-tune matcher'"),
        Param("target_precision", "float", default=defaults.CALIBRATION_TARGET_PRECISION, min=0.01, max=1.0,
              label="Calibration target precision"),
        Param("run_key", default=contract.EVAL_RUN_KEY, label="Run key"),
    )

    def run(self, ctx, zero_shot, finetuned, **params):
        from ..core.training.evaluation import evaluate_matchers, load_pr_curves

        models = {name: model for name, model in (("zero-shot", zero_shot), ("fine-tuned", finetuned)) if model}
        rows = evaluate_matchers(ctx.target_view(), models or None, on_progress=progress_reporter(ctx), **params)
        curves = load_pr_curves(ctx.dataset, params["run_key"])
        return {"rows": [{k: v for k, v in r.items() if k in ("model",) + _METRIC_COLUMNS} for r in rows],
                "plot": _bar_chart(rows),
                "pr_curve": [dict(type="scatter", mode="lines", name=name, x=c["recall"], y=c["precision"])
                             for name, c in curves.items() if c]}

    def resolve_output(self, ctx):
        outputs = types.Object()
        table = types.TableView()
        for key in ("model",) + _METRIC_COLUMNS:
            table.add_column(key, label=key)
        outputs.list("rows", types.Object(), label="Text-to-person retrieval (query vs gallery)", view=table)
        outputs.plot("plot", label="Zero-shot vs fine-tuned")
        outputs.plot("pr_curve", label="Precision (y) against recall (x) of (query, gallery) pairs")
        return types.Property(outputs)


def _bar_chart(rows):
    """Plotly data: one bar group per metric, one series per model."""
    metrics = ["rank1", "rank5", "rank10", "mAP", "mINP"]
    return [dict(type="bar", name=r["model"], x=metrics, y=[r.get(m) for m in metrics]) for r in rows]
