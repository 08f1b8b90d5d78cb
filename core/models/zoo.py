"""Make the matcher loadable by name through FiftyOne's model zoo.

The plugin's ``zoo/`` folder is a model source (``manifest.json`` +
``__init__.py``). :func:`register_model_source` links it into
``fo.config.model_zoo_dir`` once; from then on every process that shares
that folder (the SDK, the App, delegated workers) can run
``foz.load_zoo_model("person-finder-matcher", name_or_path=...)``, which is
what a brain similarity index does to embed a text query.

Example::

    from person_finder.core.models import zoo
    zoo.register_model_source()
"""

from __future__ import annotations

import os

PLUGIN_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE_DIR = os.path.join(PLUGIN_ROOT, "zoo")
LINK_NAME = "person-finder"


def register_model_source(model_zoo_dir=None):
    """Link the plugin's zoo source into the model zoo folder (idempotent); returns the link path."""
    import fiftyone as fo

    model_zoo_dir = model_zoo_dir or fo.config.model_zoo_dir
    os.makedirs(model_zoo_dir, exist_ok=True)
    link = os.path.join(model_zoo_dir, LINK_NAME)
    if os.path.islink(link) and os.path.realpath(link) == os.path.realpath(SOURCE_DIR):
        return link
    if os.path.islink(link):
        os.unlink(link)  # a stale link from an older checkout of the plugin
    elif os.path.exists(link):
        raise FileExistsError(f"{link} exists and is not Person Finder's zoo link; move it away and retry")
    os.symlink(SOURCE_DIR, link)
    return link
