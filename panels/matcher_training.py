"""Panel: the stored matcher evaluation (Rank-1/5/10, mAP, mINP per matcher) and each fine-tuning run's curves.

A thin adapter over :func:`core.training.report.training_report`: it reads
what ``finetune_matcher`` and ``evaluate_matchers`` stored on the dataset
(immediate or delegated), so a job that finished elsewhere shows after
**Refresh**.
"""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..core import defaults

#: The validation metrics drawn beside the training loss (second y axis), when a run has them.
CURVE_METRICS = (("val_mAP", "validation mAP"), ("val_rank1", "validation Rank-1"))


class MatcherTrainingPanel(foo.Panel):
    """The evaluation table and the training curves of the dataset's matchers."""

    @property
    def config(self):
        return foo.PanelConfig(
            name="matcher_training",
            label="Matcher training",
            icon="show_chart",
            help_markdown="The stored evaluation of the matchers (Rank-k, mAP, mINP) and the fine-tuning curves.",
            surfaces="grid",
        )

    def on_load(self, ctx):
        from ..core.training.report import EVALUATION_COLUMNS, training_report

        report = training_report(ctx.dataset)
        ctx.panel.state.set({
            "evaluated": report["evaluated"],
            "runs": [_run_line(run) for run in report["runs"]],
        })
        ctx.panel.data.set({
            "evaluation": [{"model": row["model"], **{key: _cell(row.get(key)) for key, _ in EVALUATION_COLUMNS}}
                           for row in report["evaluation"]],
            **{_curve(i): _curve_traces(run["history"]) for i, run in enumerate(report["runs"])},
        })

    def render(self, ctx):
        from ..core.training.report import EVALUATION_COLUMNS

        panel = types.Object()
        state = ctx.panel.state
        panel.btn("refresh", label="Refresh", icon="refresh", on_click=self.on_load)
        if not state.evaluated and not state.runs:
            panel.md("### No matcher evaluated or fine-tuned yet\nRun **finetune matcher** and **evaluate "
                     "matchers** (immediate or delegated) on a crop dataset; their results show here.",
                     name="nothing")
            return types.Property(panel)
        if state.evaluated:
            panel.md(f"**Evaluation**, text-to-person retrieval by identity: {state.evaluated}.",
                     name="evaluation_title")
            table = types.TableView()
            table.add_column("model", label="matcher")
            for key, label in EVALUATION_COLUMNS:
                table.add_column(key, label=label)
            panel.list("evaluation", types.Object(), view=table)
        for i, line in enumerate(state.runs or []):
            panel.md(line, name=f"run_{i}")
            panel.plot(_curve(i), layout={
                "height": 300, "margin": {"t": 10, "b": 45, "l": 55, "r": 55},
                "xaxis": {"title": {"text": "epoch"}, "dtick": 1}, "yaxis": {"title": {"text": "training loss"}},
                "yaxis2": {"title": {"text": "validation"}, "overlaying": "y", "side": "right", "range": [0, 1]},
                "showlegend": True, "legend": {"orientation": "h", "y": -0.35}}, config={"displayModeBar": False})
        return types.Property(panel)


def _curve(i):
    return f"curve_{i}"


def _cell(value):
    """A table cell: numbers to the panel's decimals, booleans and text as they are, nothing as an empty cell."""
    if isinstance(value, float):
        return f"{value:.{defaults.PANEL_SCORE_DECIMALS}f}"
    return "" if value is None else str(value)


def _run_line(run):
    where = f"model `{run['model_dir']}`" if run["model_dir"] else "training (the epochs finished so far)"
    best = f", best epoch {run['best_epoch']}" if run["best_epoch"] else ""
    return f"**Fine-tuning** `{run['key']}`: {len(run['history'])} epochs, {where}{best}"


def _curve_traces(history):
    """Plotly traces: the loss per epoch (left axis) and the validation metrics (right axis)."""
    epochs = [r["epoch"] for r in history]
    traces = [{"type": "scatter", "mode": "lines+markers", "name": "training loss", "x": epochs,
               "y": [r["loss"] for r in history]}]
    for key, label in CURVE_METRICS:
        if any(key in r for r in history):
            traces.append({"type": "scatter", "mode": "lines+markers", "name": label, "x": epochs,
                           "y": [r.get(key) for r in history], "yaxis": "y2"})
    return traces
