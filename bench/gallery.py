"""Large galleries: text-query top-100 latency, recall@100, build time and disk, sklearn vs LanceDB.

Synthetic person embeddings of the matcher's size (768, SigLIP-B/16):
identities (8 views each) grouped under 512 coarse "appearance" prototypes,
so the space has the cluster structure of real crop embeddings; a text
query is a prototype plus a fixed modality offset plus noise. Exact search
(numpy, raw cosine) is the reference for recall.

At every size both engines are driven with the calls FiftyOne brain's
backends make (sklearn: ``NearestNeighbors`` on the normalised vectors;
LanceDB: ``table.search(q).metric("cosine").limit(k)`` on the brain's table
layout, with the approximate index :func:`core.search.backends.finalize_index`
adds to large tables). At 10k both also run end to end through a FiftyOne
dataset and ``sort_by_similarity``. A text query's cost = text-tower
forward (a SigLIP-B/16-sized text model, random weights, 64 tokens) +
search; the < 100 ms target is checked on the search (the part that grows
with the gallery), the text forward is reported beside it.

    .venv/bin/python bench/gallery.py                      # 10k, 100k, 1M (about 8 minutes)
    .venv/bin/python bench/gallery.py --sizes 10000 100000 # quicker
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

DIM = 768
K = 100
VIEWS_PER_IDENTITY = 8
PROTOTYPES = 512
CHUNK = 100_000


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_gallery(n, seed=0):
    """``n`` unit vectors: prototype + identity offset + view noise (float32, generated in chunks)."""
    rng = np.random.default_rng(seed)
    prototypes = _unit(rng.standard_normal((PROTOTYPES, DIM), dtype=np.float32))
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        ids = (start + np.arange(m)) // VIEWS_PER_IDENTITY
        id_rng = np.random.default_rng(ids[0] + seed * 7919)
        n_ids = ids[-1] - ids[0] + 1
        identity = 0.8 * prototypes[id_rng.integers(0, PROTOTYPES, n_ids)] + \
            0.6 * _unit(id_rng.standard_normal((n_ids, DIM), dtype=np.float32))
        views = identity[ids - ids[0]] + 0.35 * _unit(rng.standard_normal((m, DIM), dtype=np.float32))
        out[start:start + m] = _unit(views)
    return out, prototypes


def make_queries(prototypes, count, seed=1):
    rng = np.random.default_rng(seed)
    offset = _unit(rng.standard_normal((1, DIM), dtype=np.float32))  # the image-text modality gap
    picks = prototypes[rng.integers(0, PROTOTYPES, count)]
    return _unit(picks + 0.8 * offset + 0.5 * _unit(rng.standard_normal((count, DIM), dtype=np.float32)))


def exact_topk(gallery, queries, k=K):
    scores = np.concatenate([gallery[s:s + CHUNK] @ queries.T for s in range(0, len(gallery), CHUNK)])
    top = np.argpartition(-scores, k, axis=0)[:k].T
    return [set(row) for row in top]


def recall(found, truth):
    return float(np.mean([len(set(f) & t) / K for f, t in zip(found, truth)]))


def _latency_ms(fn, queries):
    fn(queries[0])  # warm-up (caches, lazy loads)
    times = []
    out = []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times)), float(np.percentile(times, 95)), out


def _du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def bench_sklearn(gallery, queries, truth):
    from sklearn.neighbors import NearestNeighbors

    t = time.perf_counter()
    neighbors = NearestNeighbors(metric="euclidean").fit(gallery)  # the brain's cosine: euclidean on unit vectors
    build = time.perf_counter() - t
    median, p95, found = _latency_ms(lambda q: neighbors.kneighbors(q[None], n_neighbors=K, return_distance=False)[0],
                                     queries)
    return {"build_s": build, "disk_mb": gallery.nbytes / 2**20, "query_ms": median, "query_p95_ms": p95,
            "recall": recall(found, truth), "note": "vectors stored in MongoDB with the run; RAM = disk"}


def bench_lancedb(gallery, queries, truth, folder):
    import lancedb
    import pyarrow as pa

    from person_finder.core.search import backends


    from person_finder.core import defaults
    db = lancedb.connect(folder)
    ids = [f"{i:024x}" for i in range(len(gallery))]

    def batches():
        for s in range(0, len(gallery), CHUNK):
            vec = pa.FixedSizeListArray.from_arrays(pa.array(gallery[s:s + CHUNK].reshape(-1)), DIM)
            yield pa.RecordBatch.from_arrays([pa.array(ids[s:s + CHUNK]), pa.array(ids[s:s + CHUNK]), vec],
                                             names=["id", "sample_id", "vector"])

    schema = pa.schema([("id", pa.string()), ("sample_id", pa.string()), ("vector", pa.list_(pa.float32(), DIM))])
    t = time.perf_counter()
    table = db.create_table("gallery", pa.RecordBatchReader.from_batches(schema, batches()), mode="overwrite")
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    approximate = len(gallery) >= defaults.LANCEDB_ANN_MIN_ROWS
    if approximate:
        backends.create_lancedb_ann_index(table, len(gallery))
    index_s = time.perf_counter() - t
    median, p95, found = _latency_ms(
        lambda q: table.search(q).metric("cosine").limit(K).select(["id"]).to_arrow()["id"].to_pylist(), queries)
    return {"build_s": write_s + index_s, "write_s": write_s, "index_s": index_s, "disk_mb": _du(folder) / 2**20,
            "query_ms": median, "query_p95_ms": p95, "recall": recall([[int(i, 16) for i in f] for f in found], truth),
            "index": "IVF_HNSW_SQ" if approximate else "none (exact scan)"}


def bench_fiftyone(gallery, queries, truth, folder):
    """End to end at small scale: a dataset, compute_similarity with each backend, sort_by_similarity."""
    from person_finder.testing.mongo import start_private_mongod

    start_private_mongod(os.path.join(folder, "db"))
    os.environ["FIFTYONE_BRAIN_SIMILARITY_LANCEDB_URI"] = os.path.join(folder, "lancedb")
    import fiftyone as fo
    import fiftyone.brain as fob

    dataset = fo.Dataset()
    dataset.add_samples([fo.Sample(filepath=f"/gallery/{i}.jpg") for i in range(len(gallery))], progress=False)
    order = {sid: i for i, sid in enumerate(dataset.values("id"))}
    out = {}
    for backend in ("sklearn", "lancedb"):
        t = time.perf_counter()
        fob.compute_similarity(dataset, embeddings=gallery, brain_key=backend, backend=backend, progress=False)
        build = time.perf_counter() - t
        median, p95, found = _latency_ms(
            lambda q, b=backend: dataset.sort_by_similarity(q, k=K, brain_key=b).values("id"), queries)
        out[backend] = {"build_s": build, "query_ms": median, "query_p95_ms": p95,
                        "recall": recall([[order[i] for i in f] for f in found], truth)}
    dataset.delete()
    return out


def text_tower_ms(runs=10):
    """Latency of one text query through a SigLIP-B/16-sized text tower (random weights, 64 tokens)."""
    import torch
    from transformers import SiglipTextConfig, SiglipTextModel

    model = SiglipTextModel(SiglipTextConfig()).eval()
    tokens = torch.randint(0, 1000, (1, 64))
    with torch.inference_mode():
        model(input_ids=tokens)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            model(input_ids=tokens)
            times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--sklearn-max", type=int, default=1_000_000, help="largest size sklearn is run at")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(os.cpu_count())
    folder = tempfile.mkdtemp(prefix="bench-gallery-")
    details = {"dim": DIM, "k": K, "queries": args.queries, "text_tower_ms": text_tower_ms()}
    print(f"text tower (SigLIP-B/16 size, 64 tokens): {details['text_tower_ms']:.1f} ms per query")
    try:
        for n in args.sizes:
            gallery, prototypes = make_gallery(n)
            queries = make_queries(prototypes, args.queries)
            truth = exact_topk(gallery, queries)
            row = {"lancedb": bench_lancedb(gallery, queries, truth, os.path.join(folder, f"lance-{n}"))}
            if n <= args.sklearn_max:
                row["sklearn"] = bench_sklearn(gallery, queries, truth)
            if n == min(args.sizes):
                row["fiftyone"] = bench_fiftyone(gallery, queries, truth, folder)
            details[str(n)] = row
            print(n, {k: {m: round(v, 3) if isinstance(v, float) else v for m, v in r.items()}
                      for k, r in row.items() if k != "fiftyone"}, row.get("fiftyone", ""))
            shutil.rmtree(os.path.join(folder, f"lance-{n}"), ignore_errors=True)
            del gallery
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return report(details, args.sizes)


def report(details, sizes):
    text = details["text_tower_ms"]
    figures = [_report.figure("text tower forward, SigLIP-B/16 size (ms)", round(text, 1), "ms")]
    for n in sizes:
        row = details[str(n)]
        for engine in ("sklearn", "lancedb"):
            if engine not in row:
                continue
            r = row[engine]
            label = f"{engine} {n:,}"
            figures += [
                _report.figure(f"{label}: text query top-100 search (median)", round(r["query_ms"], 2), "ms",
                               ("<", 100) if n == max(sizes) else None, note="query embedding given"),
                _report.figure(f"{label}: same, p95", round(r["query_p95_ms"], 2), "ms"),
                _report.figure(f"{label}: text query incl. text tower (median)", round(text + r["query_ms"], 1),
                               "ms", note="one SigLIP-B text forward + search"),
                _report.figure(f"{label}: recall@100 vs exact", round(r["recall"], 4), "",
                               (">=", 0.95) if n == max(sizes) else None),
                _report.figure(f"{label}: build time", round(r["build_s"], 1), "s"),
                _report.figure(f"{label}: disk size", round(r["disk_mb"], 1), "MB"),
            ]
        for engine, r in row.get("fiftyone", {}).items():
            figures.append(_report.figure(f"FiftyOne sort_by_similarity {engine} {n:,} (median)",
                                          round(r["query_ms"], 1), "ms", note=f"recall {r['recall']:.3f}"))
    return _report.write("gallery", figures, details)


if __name__ == "__main__":
    main()
