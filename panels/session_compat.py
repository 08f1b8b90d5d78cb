"""Work around two FiftyOne 1.22 App bugs a panel meets when it opens samples.

1. Selected labels reset the App under a Python session (:func:`fill_label_type`).
2. A sample opened by the ``open_sample`` operation lacks the fields added since the page loaded
   (:func:`open_sample`).

Selected labels
---------------
The App's ``set_selected_labels`` operation drops the labels' ``type``, the
server's ``SelectedLabel`` input defaults it to ``None`` and sends
``"type": null`` to every listener. A Python session (``fiftyone app launch``,
``fo.launch_app``) parses that event with dacite against ``LabelData.type: str``
and fails (``dacite.WrongTypeError``); its client reconnects about 10 s later
and pushes its stale state, which closes the sample and resets the view.

:func:`fill_label_type` makes the App server send the session's own default
(``"default"``) instead of ``null``. It wraps the ``dict_factory`` the
server's event streams serialize with, in the App server process only, and
leaves every other value untouched. Remove it once FiftyOne sends a type.
Re-checked on FiftyOne 1.22.1 (2026-12-07), results opened through
:func:`open_sample`: without it, a ``fiftyone app launch`` session logged
"Could not connect session" and closed the opened image 9 s after the click,
the grid back to the whole dataset; with it, the image stayed open 25 s with
the person selected. Still needed.

Example::

    fill_label_type()   # before ctx.ops.set_selected_labels(...)

Opening a sample
----------------
The sample modal has its own copy of the sidebar's field groups and active
fields. The App copies the grid's into it on page load, when the user clicks a
grid sample, and when a session's ``set_sample`` event arrives, but not for the
``open_sample`` operation (``ctx.ops.open_sample``). A field added after the
page loaded (the ``persons`` of a first indexing) is then missing from the
modal: not drawn, not in its sidebar, not selectable. :func:`open_sample`
sends the App server's own ``set_sample`` event instead, as a Python session's
``session.sample_id`` does, so the modal opens with the grid's current fields.

Example::

    open_sample(ctx, sample_id)   # instead of ctx.ops.open_sample(id=sample_id)
"""

from __future__ import annotations

import sys

#: The server modules whose event streams (SSE, polling) reach Python session clients.
_STREAMS = ("fiftyone.server.events.listener", "fiftyone.server.events.polling")
_LABEL_KEYS = {"label_id", "field", "sample_id", "type"}
_DEFAULT_TYPE = "default"
#: The event the App opens a sample on, with the grid's fields (``SetSample.get_event_name()``).
_SET_SAMPLE = "set_sample"


def _with_label_type(dict_factory):
    def factory(data):
        out = dict_factory(data)
        if _LABEL_KEYS <= out.keys() and out["type"] is None:
            out["type"] = _DEFAULT_TYPE
        return out

    factory.fills_label_type = True
    return factory


def fill_label_type():
    """Make this process's App server send selected labels with a ``type`` (see the module docstring).

    Does nothing outside an App server (the modules are not loaded) and
    when already applied. Returns the number of event streams patched now.

    Example::

        fill_label_type()   # 2 the first time in the App server, else 0
    """
    patched = 0
    for name in _STREAMS:
        module = sys.modules.get(name)
        factory = getattr(module, "dict_factory", None)
        if factory is not None and not getattr(factory, "fills_label_type", False):
            module.dict_factory = _with_label_type(factory)
            patched += 1
    return patched


def open_sample(ctx, sample_id):
    """Open ``sample_id`` in the App with the grid's current fields (see the module docstring).

    In the App server (where the App listens for ``set_sample`` events) it
    dispatches that event to the Apps connected to this server; elsewhere (a
    panel driven from Python) it falls back to ``ctx.ops.open_sample``.
    Returns whether the event was sent.

    Example::

        open_sample(ctx, row["sample_id"])
    """
    state = sys.modules.get("fiftyone.server.events.state")
    if state is None or not state.get_listeners().get(_SET_SAMPLE):
        ctx.ops.open_sample(id=sample_id)
        return False
    import asyncio

    from fiftyone.core.session.events import SetSample
    from fiftyone.server.events.dispatch import dispatch_event

    # dispatch_event only queues the event for each listener (they poll their queues), so a loop of our own does
    asyncio.run(dispatch_event(None, SetSample(sample_id=sample_id)))
    return True
