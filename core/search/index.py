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
from .store import is_person_index, matcher_model_kwargs


def build_text_index(samples, brain_key=contract.TEXT_INDEX_KEY, matcher=defaults.MATCHER_MODEL, patches_field=None,
                     embeddings=None, backend=None, batch_size=defaults.MATCHER_BATCH_SIZE, replace=False,
                     on_progress=None, **backend_kwargs):
    """Build (or rebuild) a brain similarity index that answers text prompts.

    ``embeddings`` (an array, a field name, or None to compute them with the
    matcher) are stored in the index; the index remembers the matcher by zoo
    name so text queries work in new processes and in the App. An existing
    text index of this kind under ``brain_key`` is rebuilt; any other brain
    run there (a person index, a dedupe or visualization run) is only
    replaced with ``replace=True``.
    """
    import fiftyone.brain as fob

    backend_kwargs = {**backend_kwargs, **backends.similarity_kwargs(backend)}
    zoo.register_model_source()
    dataset = samples._root_dataset
    if brain_key in dataset.list_brain_runs():
        config = dataset.get_brain_info(brain_key).config
        ours = getattr(config, "model", None) == contract.MATCHER_ZOO_MODEL and not is_person_index(dataset, brain_key)
        if not ours and not replace:
            kind = "a person index" if is_person_index(dataset, brain_key) else f"a {type(config).__name__} run"
            raise ValueError(f"brain key {brain_key!r} on {dataset.name!r} holds {kind}, not a text index: pick "
                             "another brain_key, or pass replace=True to delete it and build a text index there")
        dataset.delete_brain_run(brain_key)
    results = fob.compute_similarity(
        samples, patches_field=patches_field, embeddings=embeddings, brain_key=brain_key,
        model=contract.MATCHER_ZOO_MODEL, model_kwargs=matcher_model_kwargs(matcher),
        batch_size=batch_size, progress=fiftyone_progress(on_progress, "embedding"), **backend_kwargs,
    )
    return backends.finalize_index(results)
