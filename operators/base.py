"""The shape every Person Finder operator shares, declared once.

An operator lists its parameters as :class:`Param` declarations; the base
class builds the form from them (defaults, bounds, choices, checks), reads
``ctx.params`` with the same defaults in ``execute`` (so the App,
``foo.execute_operator`` and a form left untouched agree), offers the
execution mode, and reports progress. A subclass only says what it calls.

Example::

    class Hello(PersonFinderOperator):
        name, label = "hello", "say hello"
        description = "Greets the samples"
        params = (Param("greeting", default="hi", label="Greeting"),)

        def run(self, ctx, greeting):
            return {"said": greeting, "samples": len(ctx.target_view())}
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..core import defaults

#: How an operator may run: "delegate" (both; the App form defaults to delegated where the App can schedule),
#: "choose" (both, immediate by default), "immediate" (immediate only: quick operators). From the SDK every
#: operator runs immediately unless ``delegate=True`` or ``request_delegation=True`` is passed.
EXECUTION_MODES = ("delegate", "choose", "immediate")


def _value(spec, params):
    """A declaration's value: the constant itself, or ``spec(params)`` when it depends on other params."""
    return spec(params) if callable(spec) else spec


@dataclasses.dataclass(frozen=True)
class Param:
    """One form field and the operator parameter it sets.

    ``default``, ``min`` and ``max`` may be callables of the current params
    (a threshold whose range depends on its type); ``choices`` may be a
    callable of the context (the Detections fields of the dataset); ``when``
    (a callable of the context) shows and reads the field only where it
    applies; ``check`` returns an error message for a bad value (or None),
    shown in the form once the field has a value.

    Example::

        Param("threshold", "float", default=0.1, min=-1.0, max=1.0, label="Match threshold")
    """

    name: str
    type: str = "str"  # "str" | "int" | "float" | "bool" | "enum"
    default: Any = None
    label: str | None = None
    description: str | None = None
    required: bool = False
    min: Any = None
    max: Any = None
    choices: Any = ()
    view: str | None = None  # enums: "radio" or "dropdown" (default)
    when: Callable | None = None
    check: Callable | None = None

    def applies(self, ctx):
        return self.when is None or bool(self.when(ctx))

    def add_to(self, inputs, ctx):
        """Add this field to the form ``inputs``."""
        params = ctx.params
        common = dict(default=_value(self.default, params), required=self.required,
                      label=self.label or self.name.replace("_", " ").capitalize(), description=self.description)
        if self.type == "enum":
            values = self.choices(ctx) if callable(self.choices) else self.choices
            choice_view = types.RadioGroup() if self.view == "radio" else types.Dropdown()
            for value in values:
                choice_view.add_choice(value, label=str(value))
            prop = inputs.enum(self.name, choice_view.values(), view=choice_view, **common)
        elif self.type == "bool":
            prop = inputs.bool(self.name, view=types.CheckboxView(), **common)
        elif self.type in ("int", "float"):
            bounds = {k: _value(v, params) for k, v in (("min", self.min), ("max", self.max)) if v is not None}
            prop = getattr(inputs, self.type)(self.name, **bounds, **common)
        else:
            prop = inputs.str(self.name, **common)
        error = self.check(params.get(self.name)) if self.check and self.name in params else None
        if error:
            prop.invalid = True
            prop.error_message = error
        return prop

    def read(self, params):
        """This parameter's value in ``params``, or its declared default."""
        value = params.get(self.name)
        return _value(self.default, params) if value is None else value


class PersonFinderOperator(foo.Operator):
    """Base of every operator: config, form, execution mode and ``execute`` from declarations.

    Subclasses set ``name``, ``label``, ``description``, ``params`` and
    ``execution`` (one of :data:`EXECUTION_MODES`), implement
    ``run(ctx, **params)`` (one ``core`` call), and may add notices with
    ``extend_form(ctx, inputs)`` and a readable result with ``summarize(ctx, result)``.
    """

    name = label = description = None
    params: tuple = ()
    execution = "delegate"
    targets_view = True
    #: Whether a finished run reloads the App's dataset (it wrote fields or indexes the App shows).
    reloads_dataset = True

    @property
    def config(self):
        return foo.OperatorConfig(name=self.name, label=f"Person Finder: {self.label}",
                                  description=self.description, dynamic=True, allow_immediate_execution=True,
                                  allow_delegated_execution=self.execution != "immediate")

    def resolve_input(self, ctx):
        inputs = types.Object()
        if self.targets_view:
            inputs.view_target(ctx)
        for param in self.params:
            if param.applies(ctx):
                param.add_to(inputs, ctx)
        self.extend_form(ctx, inputs)
        if self.execution != "immediate":
            _add_execution_mode(ctx, inputs, self._delegate_by_default)
        return types.Property(inputs, view=types.View(label=self.label[0].upper() + self.label[1:]))

    def extend_form(self, ctx, inputs):
        """Hook: notices and warnings after the declared fields."""

    @property
    def _delegate_by_default(self):
        """Delegated by default only where scheduling works: heavy operators on an App that can schedule."""
        return self.execution == "delegate" and scheduling_available()

    def resolve_delegation(self, ctx):
        """Delegate when asked (``delegate=True`` or ``request_delegation=True``), else run now.

        FiftyOne's convention: the SDK (``foo.execute_operator``) runs
        immediately unless delegation is requested, and the App form offers the
        choice with its default (see :func:`scheduling_available`).
        """
        if self.execution == "immediate":
            return False
        delegate = ctx.params.get("delegate")
        if delegate is None:
            return bool(ctx.requesting_delegated_execution)
        return bool(delegate)

    def arguments(self, ctx):
        """``{name: value}`` of every declared parameter that applies, defaults filled in."""
        return {p.name: p.read(ctx.params) for p in self.params if p.applies(ctx)}

    def execute(self, ctx):
        result = self.run(ctx, **self.arguments(ctx))
        message = self.summarize(ctx, result) if isinstance(result, dict) else None
        if message:
            result = {**result, "message": message}
        if not ctx.delegated:  # a delegated job has no App to talk to; its result is kept on the job
            if self.reloads_dataset:
                ctx.ops.reload_dataset()
            if message:
                ctx.ops.notify(_plain(message), variant="success")
        return result

    def run(self, ctx, **params):
        raise NotImplementedError

    def summarize(self, ctx, result):
        """Hook: one readable line for the result (shown in the App, kept on delegated jobs), or None."""
        return None

    def resolve_output(self, ctx):
        if type(self).summarize is PersonFinderOperator.summarize:
            return None
        outputs = types.Object()
        outputs.str("message", label="Result", view=types.MarkdownView(read_only=True))
        return types.Property(outputs)


def _plain(markdown):
    """A result line without markdown marks, for the App's toast (which shows them raw)."""
    return markdown.replace("`", "").replace("*", "")


def scheduling_available():
    """Whether this process can schedule delegated operations for ``fiftyone delegated launch`` workers.

    Open-source FiftyOne schedules only with ``FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true``
    in the App server's environment; otherwise the App answers "Background
    compute is not yet configured" and offers no way to run.

    Example::

        scheduling_available()   # False in a stock App
    """
    import fiftyone as fo

    return bool(fo.config.allow_legacy_orchestrators)


#: What the form says when delegation is ticked but this App cannot schedule.
NO_SCHEDULING_WARNING = (
    "This App cannot schedule jobs: start the App server and a `fiftyone delegated launch` worker with "
    "FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true. Untick \"Delegate execution?\" to bring back Execute and run it now.")


def _add_execution_mode(ctx, inputs, delegate_by_default):
    """Offer "run now" vs "delegate" in the form, with the operator's default and what each needs."""
    delegate = ctx.params.get("delegate", delegate_by_default)
    inputs.bool("delegate", default=delegate_by_default, label="Delegate execution?",
                description="Queue the job for a `fiftyone delegated launch` worker instead of running it in the App",
                view=types.CheckboxView())
    if delegate and not scheduling_available():
        inputs.view("no_scheduling", types.Warning(label="Scheduling is not configured",
                                                   description=NO_SCHEDULING_WARNING))
    elif delegate:
        inputs.view("notice", types.Notice(label="Run `fiftyone delegated launch` to start a worker for this job; "
                                                 "the Person search panel shows how it went"))


def progress_reporter(ctx):
    """An ``on_progress`` callable for ``core`` that feeds the App's progress bar."""

    def report(fraction, label=""):
        ctx.set_progress(progress=fraction, label=label)

    return report


def warn_without_gemini_key(ctx, inputs):
    """Add a warning to the form when a real run (not a dry run) would call Gemini and no key is set."""
    from ..core import contract

    if not ctx.params.get("dry_run") and not ctx.secrets.get(contract.GEMINI_SECRET):
        inputs.view("no_key", types.Warning(
            label=f"The {contract.GEMINI_SECRET} secret is not set",
            description="Set it for this plugin (or the environment), choose zero-shot where offered, or do a dry run"))


def backend_param():
    """The vector-backend choice of the operators that build a similarity index."""
    return Param("backend", "enum", default=defaults.INDEX_BACKEND, choices=defaults.INDEX_BACKENDS,
                 label="Vector backend",
                 description="Where the vectors live; LanceDB / servers need their location set for every "
                             "process (see the README's scale section)")
