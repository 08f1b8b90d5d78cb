"""Brain similarity indexes that answer text queries with the matcher.

Example::

    from person_finder.core.search import index
    index.build_text_index(dataset, brain_key="crops_index",
                           matcher="google/siglip-base-patch16-224")
    view = dataset.sort_by_similarity("a man with a red backpack", k=10, brain_key="crops_index")
"""

from __future__ import annotations

from . import backends
from .. import contract, defaults
from ..models import zoo
from ..progress import fiftyone_progress


def matcher_model_kwargs(matcher):
    """How a brain index records the matcher, so any process can re-create it."""
    return {"name_or_path": str(matcher)}


def build_text_index(samples, brain_key, matcher=defaults.MATCHER_MODEL, patches_field=None, embeddings=None,
                     backend=None, batch_size=defaults.MATCHER_BATCH_SIZE, on_progress=None, **backend_kwargs):
    """Build (or rebuild) a brain similarity index that answers text prompts.

    ``embeddings`` (an array, a field name, or None to compute them with the
    matcher) are stored in the index; the index remembers the matcher by zoo
    name so text queries work in new processes and in the App.
    """
    import fiftyone.brain as fob

    backend_kwargs = {**backend_kwargs, **backends.similarity_kwargs(backend)}
    zoo.register_model_source()
    dataset = samples._root_dataset
    if brain_key in dataset.list_brain_runs():
        dataset.delete_brain_run(brain_key)
    results = fob.compute_similarity(
        samples, patches_field=patches_field, embeddings=embeddings, brain_key=brain_key,
        model=contract.MATCHER_ZOO_MODEL, model_kwargs=matcher_model_kwargs(matcher),
        batch_size=batch_size, progress=fiftyone_progress(on_progress, "embedding"), **backend_kwargs,
    )
    return backends.finalize_index(results)
