"""Person Finder: open-set, text-based person search for FiftyOne.

FiftyOne imports this file when it loads the plugin; it only registers the
operators and panels. The library lives in :mod:`core`.
"""


def register(p):
    """Register every operator and panel of the plugin with FiftyOne."""
    from .operators import OPERATORS
    from .panels import PANELS

    for cls in OPERATORS + PANELS:
        p.register(cls)
