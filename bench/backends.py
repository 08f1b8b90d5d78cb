"""Every vector backend side by side on one synthetic person gallery, through FiftyOne brain (one run).

For each backend that runs here (sklearn, LanceDB, Milvus Lite's server,
PostgreSQL + pgvector; Qdrant has no server build in the package
registries) and each gallery size: build time (``compute_similarity`` +
``update_index`` in chunks, as ``index_persons`` adds; LanceDB then gets its
IVF-SQ index), the cost of adding
one video's persons to the full index, text-query top-25 latency (median
and p95) through the brain's nearest-neighbour call that ``rank_persons``
asks for candidates, recall@100 against exact search, and disk size.

The gallery is bench/gallery.py's (768-d, identities under appearance
prototypes, queries = prototype + modality offset + noise). Engines are
started with :mod:`person_finder.testing.engines` on 127.0.0.1.

    .venv/bin/python bench/backends.py                         # 100k (add --sizes 100000 1000000 for 1M)
    .venv/bin/python bench/backends.py --sizes 10000 --queries 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _report  # noqa: E402
import gallery as synthetic_gallery  # noqa: E402

BACKENDS = ("sklearn", "lancedb", "milvus", "pgvector")
TOP_K = 25
RECALL_K = synthetic_gallery.K
ONE_VIDEO = 72  # distinct embeddings of the 1800-frame benchmark video (bench/people_index.py)
ADD_CHUNK = 50_000


def _folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def _ids(start, stop):
    return [f"{i:024x}" for i in range(start, stop)]


def bench_backend(backend, dataset, gallery, queries, truth, folder):
    import fiftyone.brain as fob

    from person_finder.core.search import backends
    from person_finder.testing.engines import start_engine

    location = start_engine(backend, os.path.join(folder, backend))
    if location is not None:
        backends.configure_backend(backend, location)
    n = len(gallery)
    ids = _ids(0, n)
    t = time.perf_counter()
    results = fob.compute_similarity(dataset, patches_field="persons", embeddings=False, brain_key=backend,
                                     metric="cosine", progress=False, **backends.similarity_kwargs(backend))
    for s in range(0, n, ADD_CHUNK):  # as index_persons adds (LanceDB rows appended, the brain's add elsewhere)
        backends.update_index(results, gallery[s:s + ADD_CHUNK], ids[s:s + ADD_CHUNK], ids[s:s + ADD_CHUNK])
    results = backends.finalize_index(dataset.load_brain_results(backend, cache=False))
    build_s = time.perf_counter() - t

    extra = synthetic_gallery.make_gallery(ONE_VIDEO, seed=3)[0]
    extra_ids = _ids(n, n + ONE_VIDEO)
    t = time.perf_counter()
    backends.update_index(results, extra, extra_ids, extra_ids)
    add_s = time.perf_counter() - t
    backends.update_index(results, remove=extra_ids)

    def nearest(q, k):
        _, label_ids, _ = results._kneighbors(query=q, k=k, return_dists=True)
        return [int(i, 16) for i in label_ids]

    nearest(queries[0], TOP_K)
    times = []
    for q in queries:
        start = time.perf_counter()
        nearest(q, TOP_K)
        times.append((time.perf_counter() - start) * 1000)
    found = [nearest(q, RECALL_K) for q in queries]
    disk = gallery.nbytes if backend == "sklearn" else _folder_bytes(os.path.join(folder, backend))
    row = {"build_s": build_s, "add_one_video_s": add_s, "query_ms": float(np.median(times)),
           "query_p95_ms": float(np.percentile(times, 95)), "recall": synthetic_gallery.recall(found, truth),
           "disk_mb": disk / 2**20, "size": results.total_index_size}
    dataset.delete_brain_run(backend)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args(argv)

    from person_finder.testing.mongo import start_private_mongod

    folder = tempfile.mkdtemp(prefix="bench-backends-")
    start_private_mongod(os.path.join(folder, "db"))
    import fiftyone as fo

    details = {"dim": synthetic_gallery.DIM, "top_k": TOP_K, "queries": args.queries}
    try:
        dataset = fo.Dataset()
        dataset.add_sample_field("persons", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
        for n in args.sizes:
            gallery, prototypes = synthetic_gallery.make_gallery(n)
            queries = synthetic_gallery.make_queries(prototypes, args.queries)
            truth = synthetic_gallery.exact_topk(gallery, queries)
            for backend in args.backends:
                row = bench_backend(backend, dataset, gallery, queries, truth, os.path.join(folder, str(n)))
                details.setdefault(str(n), {})[backend] = row
                print(n, backend, {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
            shutil.rmtree(os.path.join(folder, str(n)), ignore_errors=True)
        dataset.delete()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return report(details, args.sizes)


def report(details, sizes):
    figures = []
    for n in sizes:
        for backend, r in details[str(n)].items():
            label = f"{backend} {n:,}"
            figures += [
                _report.figure(f"{label}: build", round(r["build_s"], 1), "s"),
                _report.figure(f"{label}: add one video ({ONE_VIDEO} persons)", round(r["add_one_video_s"], 3), "s"),
                _report.figure(f"{label}: top-{TOP_K} query (median)", round(r["query_ms"], 2), "ms"),
                _report.figure(f"{label}: top-{TOP_K} query (p95)", round(r["query_p95_ms"], 2), "ms"),
                _report.figure(f"{label}: recall@{RECALL_K} vs exact", round(r["recall"], 4), ""),
                _report.figure(f"{label}: disk", round(r["disk_mb"], 1), "MB"),
            ]
    return _report.write("backends", figures, details)


if __name__ == "__main__":
    main()
