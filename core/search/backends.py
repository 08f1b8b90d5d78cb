"""Vector backends of person indexes: one option, one shared location, duplicate search everywhere.

A person index is a FiftyOne brain similarity index. ``backend`` picks the
engine: ``"sklearn"`` (default; vectors stored in MongoDB with the dataset),
``"lancedb"`` (embedded, on a local or network disk) or a server:
``"qdrant"``, ``"milvus"``, ``"pgvector"``.

The brain reads each backend's location (LanceDB ``uri``, Qdrant ``url``,
Milvus ``uri``, pgvector ``connection_string``) from its config in *every*
process, never from the dataset, so the App, the SDK and each delegated
worker must be given the same one: set
``FIFTYONE_BRAIN_SIMILARITY_LANCEDB_URI`` (etc.) in their environment or in
``~/.fiftyone/brain_config.json``. :func:`configure_backend` sets it for this
process and for every process it starts.

Example::

    from person_finder.core.search import backends, index
    backends.configure_backend("lancedb", "/shared/person-finder/lancedb")
    index.build_text_index(dataset, "person_index", matcher=..., backend="lancedb")
    dups = backends.find_duplicates(dataset.load_brain_results("person_index"), thresh=0.05)
"""

from __future__ import annotations

import importlib.util
import logging
import os

import numpy as np

from .. import defaults

logger = logging.getLogger(__name__)


def resolve_backend(backend=None):
    """The backend name to use (None: the default), or a ValueError naming the allowed ones."""
    backend = backend or defaults.INDEX_BACKEND
    if backend not in defaults.INDEX_BACKENDS:
        raise ValueError(f"vector backend {backend!r} is not supported; use one of {defaults.INDEX_BACKENDS}")
    return backend


def location_env_var(backend):
    """Environment variable holding the backend's location, e.g. FIFTYONE_BRAIN_SIMILARITY_LANCEDB_URI."""
    parameter = defaults.INDEX_BACKEND_LOCATIONS[resolve_backend(backend)]
    if parameter is None:
        return None
    return f"FIFTYONE_BRAIN_SIMILARITY_{backend.upper()}_{parameter.upper()}"


def backend_location(backend):
    """Where this process's brain config says the backend keeps indexes (None for sklearn)."""
    import fiftyone.brain as fb

    parameter = defaults.INDEX_BACKEND_LOCATIONS[resolve_backend(backend)]
    if parameter is None:
        return None
    return fb.brain_config.similarity_backends.get(backend, {}).get(parameter)


def configure_backend(backend, location):
    """Point this process, and the processes it starts (App, workers), at the backend's ``location``.

    Example::

        configure_backend("qdrant", "http://qdrant.internal:6333")
    """
    import fiftyone.brain as fb

    backend = resolve_backend(backend)
    parameter = defaults.INDEX_BACKEND_LOCATIONS[backend]
    if parameter is None:
        raise ValueError("the sklearn backend stores its vectors in MongoDB: point every process at the same "
                         "database with FIFTYONE_DATABASE_URI instead")
    location = str(location)
    if backend == "lancedb" and "://" not in location:
        location = os.path.abspath(location)
    os.environ[location_env_var(backend)] = location
    fb.brain_config.similarity_backends.setdefault(backend, {})[parameter] = location
    return location


def similarity_kwargs(backend=None):
    """``compute_similarity`` keyword arguments for ``backend``, after checking it can be used here.

    Raises a clear error when the backend's client package is missing; warns
    when LanceDB has no configured location (other machines will not find it).
    """
    backend = resolve_backend(backend)
    package = defaults.INDEX_BACKEND_PACKAGES.get(backend)
    module = {"qdrant-client": "qdrant_client", "psycopg2-binary": "psycopg2"}.get(package, package)
    if package and importlib.util.find_spec(module) is None:
        raise ValueError(f"vector backend {backend!r} needs the {package!r} package: pip install {package}")
    if backend == "lancedb" and not os.environ.get(location_env_var(backend)):
        logger.warning("LanceDB index stored at %r: set %s to the same shared path in every process (App, SDK, "
                       "workers) so they all find it", backend_location(backend), location_env_var(backend))
    if backend == "pgvector":  # HNSW returns at most ef_search rows (pgvector's default 40): room for the candidates
        return {"backend": backend, "hnsw_ef_search": defaults.PGVECTOR_HNSW_EF_SEARCH}
    return {"backend": backend}


def finalize_index(results):
    """After a build: give large LanceDB tables an approximate index (small ones stay exact).

    The table is scanned exactly below ``defaults.LANCEDB_ANN_MIN_ROWS``
    vectors; above it an IVF-SQ index (8-bit vectors in partitions of
    ``defaults.LANCEDB_ROWS_PER_PARTITION``; LanceDB probes 20 per query)
    answers top-100 queries in milliseconds at recall@100 >= 0.95
    (bench/gallery.py).
    """
    if results.config.method != "lancedb" or results.table is None:
        return results
    rows = len(results.table)
    if rows >= defaults.LANCEDB_ANN_MIN_ROWS:
        create_lancedb_ann_index(results.table, rows, metric=results.config.metric)
    return results


def create_lancedb_ann_index(table, rows, metric="cosine"):
    """Build the IVF-SQ index on a LanceDB table's ``vector`` column (used by :func:`finalize_index`)."""
    from lancedb.index import IvfSq

    partitions = max(1, rows // defaults.LANCEDB_ROWS_PER_PARTITION)
    table.create_index("vector", replace=True, config=IvfSq(distance_type={"euclidean": "l2"}.get(metric, metric),
                                                            num_partitions=partitions))


def load_index(samples, brain_key, fresh=False):
    """Load a person index, failing clearly when this process looks for it in the wrong place.

    Example::

        results = load_index(dataset, "person_index")
    """
    results = samples._root_dataset.load_brain_results(brain_key, cache=not fresh)  # fresh: what other writers added
    if results is None:
        raise ValueError(f"no index {brain_key!r} on dataset {samples._root_dataset.name!r}; "
                         f"it has {samples._root_dataset.list_brain_runs()}")
    method = results.config.method
    if method != "sklearn" and results.total_index_size == 0 and not fresh:  # cached before vectors came
        results = samples._root_dataset.load_brain_results(brain_key, cache=False)
    if method != "sklearn" and results.total_index_size == 0:
        raise ValueError(f"index {brain_key!r} ({method}) is empty at {backend_location(method)!r}: set "
                         f"{location_env_var(method)} in this process to the location it was built at")
    return results


def index_label_ids(results):
    """The label ids a patch index holds now, read from the engine (not a cached list).

    sklearn keeps them with its vectors; LanceDB's id column is read alone;
    Milvus is paged through its primary keys; pgvector returns its entries
    through the brain's ``get_embeddings`` (vectors included: O(index)).

    Example::

        held = set(index_label_ids(dataset.load_brain_results("person_index")))
    """
    method = results.config.method
    if method == "sklearn":
        return [str(x) for x in (results.label_ids if results.label_ids is not None else [])]
    if method == "lancedb":
        table = getattr(results, "_table", None)
        if table is None:
            return []
        return [str(x) for x in table.search().select(["id"]).limit(len(table)).to_arrow()["id"].to_pylist()]
    if results.total_index_size == 0:
        if method == "pgvector":  # the brain's count of a table not created yet aborts the transaction
            results._conn.rollback()
        return []
    if method == "milvus":  # no "all vectors" call: page through the primary keys
        iterator = results._collection.query_iterator(batch_size=defaults.MILVUS_ID_PAGE, expr='pk != ""',
                                                      output_fields=["pk"])
        ids = []
        try:
            while page := iterator.next():
                ids += [str(row["pk"]) for row in page]
        finally:
            iterator.close()
        return ids
    return [str(x) for x in results.get_embeddings()[2]]


def update_index(results, vectors=None, sample_ids=(), label_ids=(), remove=()):
    """Remove ``remove`` label ids from a patch index, then add ``vectors``; cost grows with the batch, not the index.

    LanceDB tables are appended to directly (FiftyOne's ``add_to_index``
    rewrites the whole table); other backends go through the brain's
    ``add_to_index`` / ``remove_from_index``; sklearn results are then saved.

    Example::

        update_index(results, vectors, frame_ids, label_ids, remove=old_label_ids)
    """
    remove = [str(x) for x in remove]
    lancedb = results.config.method == "lancedb"
    table = getattr(results, "_table", None) if lancedb else None
    if table is not None:
        import pyarrow as pa

        if remove:  # a delete scans the table: only when labels were replaced (new labels have new ids)
            table.delete("id IN (" + ", ".join(f"'{x}'" for x in remove) + ")")  # ObjectId strings: nothing to escape
        if len(label_ids):
            vectors = np.asarray(vectors, dtype=np.float32)
            flat = pa.array(vectors.reshape(-1), type=pa.float32())
            column = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
            table.add(pa.Table.from_arrays([[str(x) for x in label_ids], [str(x) for x in sample_ids], column],
                                           names=["id", "sample_id", "vector"]))
    else:
        if remove and not lancedb:  # a LanceDB index without a table yet holds nothing to remove
            results.remove_from_index(label_ids=remove, allow_missing=True)
        if len(label_ids):
            results.add_to_index(np.asarray(vectors, dtype=np.float32), [str(x) for x in sample_ids],
                                 label_ids=[str(x) for x in label_ids])
    if results.config.method == "sklearn":
        results.save()


def find_duplicates(results, thresh=None, fraction=None):
    """Duplicate search on any backend; returns a brain index whose ``neighbors_map`` / ``duplicate_ids`` are set.

    Backends without full-index neighbour queries (LanceDB, Qdrant, Milvus,
    pgvector) hand their vectors to an in-memory sklearn index, which runs
    FiftyOne's own ``find_duplicates``.

    Example::

        dups = find_duplicates(dataset.load_brain_results("person_index"), thresh=0.05)
        dataset.select(dups.duplicate_ids)
    """
    import fiftyone.brain as fob

    if not hasattr(results, "find_duplicates"):  # FiftyOne's DuplicatesMixin: sklearn only
        by_id = results.config.method == "milvus" and results.config.patches_field  # Milvus: only by id
        embeddings, sample_ids, label_ids = results.get_embeddings(label_ids=index_label_ids(results)) if by_id \
            else results.get_embeddings()
        in_memory = fob.compute_similarity(results.samples, patches_field=results.config.patches_field,
                                           embeddings=False, backend="sklearn", metric="cosine")
        in_memory.add_to_index(embeddings, sample_ids, label_ids=label_ids)
        results = in_memory
    results.find_duplicates(thresh=thresh, fraction=fraction)
    return results
