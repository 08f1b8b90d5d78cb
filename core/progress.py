"""One progress convention for all of ``core``.

Long functions take ``on_progress``: a callable ``(fraction, label)`` or
None. Operators pass one that feeds ``ctx.set_progress``; the SDK may pass
``print_progress`` or nothing.

Example::

    from person_finder.core.progress import print_progress
    index_persons(dataset, on_progress=print_progress)
"""

from __future__ import annotations


def notify(on_progress, fraction, label=""):
    """Call ``on_progress`` if given, with ``fraction`` clipped to [0, 1]."""
    if on_progress is not None:
        on_progress(min(max(float(fraction), 0.0), 1.0), label)


def print_progress(fraction, label=""):
    """An ``on_progress`` for scripts: prints ``[ 42%] label``."""
    print(f"[{fraction * 100:4.0f}%] {label}", flush=True)


def fiftyone_progress(on_progress, label, start=0.0, end=1.0):
    """Adapt ``on_progress`` to FiftyOne's ``progress=`` argument, mapped into [start, end]."""
    if on_progress is None:
        return None
    import fiftyone.core.utils as fou

    def report(pb):
        notify(on_progress, start + (end - start) * pb.progress, label)

    return fou.report_progress(report, dt=0.5)
