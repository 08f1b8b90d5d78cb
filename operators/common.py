"""Helpers shared by every operator: execution mode, progress, model fields."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..core import defaults


def long_running_config(name, label, description):
    """The config of an operator that may run now or as a delegated job (the user picks in the form)."""
    return foo.OperatorConfig(name=name, label=f"Person Finder: {label}", description=description, dynamic=True,
                              allow_immediate_execution=True, allow_delegated_execution=True)


def add_execution_mode(ctx, inputs, delegate_by_default=True):
    """Offer "run now" vs "delegate" in the form, with the operator's default."""
    delegate = ctx.params.get("delegate", delegate_by_default)
    inputs.bool(
        "delegate",
        default=delegate_by_default,
        label="Delegate execution?",
        description="Queue the job for a `fiftyone delegated launch` worker instead of running it in the App",
        view=types.CheckboxView(),
    )
    if delegate:
        inputs.view("notice", types.Notice(label="Run `fiftyone delegated launch` to start a worker for this job"))


def resolve_delegation(ctx, delegate_by_default=True):
    """The operator's ``resolve_delegation``: what the form (or SDK params) chose."""
    return bool(ctx.params.get("delegate", delegate_by_default))


def progress_reporter(ctx):
    """An ``on_progress`` callable for ``core`` that feeds the App's progress bar."""

    def report(fraction, label=""):
        ctx.set_progress(progress=fraction, label=label)

    return report


def add_backend_choice(inputs):
    """The vector-backend dropdown of the operators that build a similarity index."""
    inputs.enum("backend", list(defaults.INDEX_BACKENDS), default=defaults.INDEX_BACKEND, label="Vector backend",
                view=types.DropdownView(),
                description="Where the vectors live; LanceDB / servers need their location set for every "
                            "process (see the README's scale section)")
