"""Work around a FiftyOne 1.22 bug that resets the App when a panel selects labels under a Python session.

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

Example::

    fill_label_type()   # before ctx.ops.set_selected_labels(...)
"""

from __future__ import annotations

import sys

#: The server modules whose event streams (SSE, polling) reach Python session clients.
_STREAMS = ("fiftyone.server.events.listener", "fiftyone.server.events.polling")
_LABEL_KEYS = {"label_id", "field", "sample_id", "type"}
_DEFAULT_TYPE = "default"


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
