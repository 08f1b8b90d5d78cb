"""FiftyOne model-zoo source for Person Finder's matcher.

FiftyOne imports this file by path when a similarity index built with
``person-finder-matcher`` needs its model again (text queries, new
processes, the App). ``core.models.zoo.register_model_source()`` links this folder
into ``fo.config.model_zoo_dir``.
"""

import importlib.util
import os
import sys

_PLUGIN_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_PACKAGE = "person_finder"


def _person_finder():
    """The plugin's package, importable as ``person_finder`` wherever this runs."""
    if _PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            _PACKAGE, os.path.join(_PLUGIN_ROOT, "__init__.py"), submodule_search_locations=[_PLUGIN_ROOT]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[_PACKAGE] = module
        spec.loader.exec_module(module)
    return sys.modules[_PACKAGE]


def download_model(model_name, model_path):
    """Weights are fetched by Hugging Face on load; the zoo only needs the folder."""
    os.makedirs(model_path, exist_ok=True)


def load_model(model_name, model_path, name_or_path=None, device=None, batch_size=None, **kwargs):
    """Return the matcher as a FiftyOne model with embeddings and prompts."""
    _person_finder()
    from person_finder.core import defaults
    from person_finder.core.models.fiftyone_model import load_matcher_model

    return load_matcher_model(
        name_or_path or defaults.MATCHER_MODEL,
        device=device,
        batch_size=batch_size or defaults.MATCHER_BATCH_SIZE,
    )
