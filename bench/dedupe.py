"""Near-duplicate benchmark: DINOv2 embedding throughput and duplicate-search time / peak memory.

- Embedding: the real DINOv2-small architecture (from its config, random
  weights) through ``load_dinov2``, on synthetic 64x128 crops, CPU.
- Search: ``core.curation.dedupe.radius_pairs`` on synthetic unit vectors (384-d,
  like DINOv2-small) at 10k and 50k, whole collection ("global") and per
  identity, plus FiftyOne's own ``SimilarityIndex.find_duplicates`` (sklearn
  backend) at 10k for comparison. Peak memory is tracemalloc's peak of
  Python + numpy allocations during the call.

Prints a table and writes bench/results/dedupe.json. Runs in a few minutes:

    .venv/bin/python bench/dedupe.py [--sizes 10000 50000] [--crops 64]
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _report  # noqa: E402
DIM = 384


def measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak / 2**20


def make_dinov2_small(folder):
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    config = Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4,
                          image_size=518, patch_size=14)
    Dinov2Model(config).save_pretrained(folder)
    BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, do_center_crop=True,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder


def bench_embedding(num_crops):
    import torch

    from person_finder.testing.synthetic import random_specs, render_crop
    from person_finder.core.models.dinov2 import load_dinov2

    with tempfile.TemporaryDirectory() as tmp:
        embedder = load_dinov2(make_dinov2_small(tmp), device="cpu")
    specs = random_specs(16, seed=0)
    crops = [render_crop(specs[i % 16], seed=i) for i in range(num_crops)]
    embedder.embed_images(crops[:4])  # warm-up
    t0 = time.perf_counter()
    vectors = embedder.embed_images(crops)
    seconds = time.perf_counter() - t0
    return {"crops": num_crops, "seconds": round(seconds, 2), "crops_per_s": round(num_crops / seconds, 2),
            "dim": int(vectors.shape[1]), "torch_threads": torch.get_num_threads(), "batch_size": embedder.batch_size}


def synthetic_vectors(n, identities, seed=0):
    """Identity clusters with planted near-copies (1% of rows), unit norm."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, DIM)).astype(np.float32)
    ids = rng.integers(identities, size=n)
    x = centres[ids] + 0.8 * rng.normal(size=(n, DIM)).astype(np.float32)
    planted = rng.choice(n, size=n // 100, replace=False)
    x[planted] = x[(planted + 1) % n] + 0.01 * rng.normal(size=(len(planted), DIM)).astype(np.float32)
    ids[planted] = ids[(planted + 1) % n]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, ids, len(planted)


def bench_search(n, threshold):
    from person_finder.core.curation.dedupe import radius_pairs

    x, ids, planted = synthetic_vectors(n, identities=max(n // 66, 2))
    radius_pairs(x[:10], threshold)  # warm-up: sklearn's import is not part of the search
    rows = {}
    for scope, groups in (("global", None), ("identity", ids)):
        (pairs, _), seconds, peak = measure(lambda: radius_pairs(x, threshold, groups=groups))
        rows[scope] = {"n": n, "seconds": round(seconds, 2), "peak_mb": round(peak, 1), "pairs": int(len(pairs)),
                       "planted": planted, "dense_matrix_mb": round(n * n * 4 / 2**20, 1)}
    return rows


def start_database():
    """A private mongod in a temp folder, started before fiftyone is imported, removed at exit."""
    import atexit
    import shutil

    root = tempfile.mkdtemp(prefix="bench-dedupe-")
    atexit.register(shutil.rmtree, root, True)  # runs after mongod's own atexit stop
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    from person_finder.testing.mongo import start_private_mongod

    start_private_mongod(os.path.join(root, "db"))


def bench_fiftyone_find_duplicates(n, threshold):
    """FiftyOne's sklearn backend on the same vectors."""
    import fiftyone as fo
    import fiftyone.brain as fob

    x, _, planted = synthetic_vectors(n, identities=max(n // 66, 2))
    ds = fo.Dataset()
    ds.add_samples([fo.Sample(filepath=f"/nonexistent/{i}.jpg") for i in range(n)], progress=False)
    index = fob.compute_similarity(ds, embeddings=x, backend="sklearn", metric="cosine", brain_key="b",
                                   progress=False)
    index.find_duplicates(thresh=threshold)  # warm-up on the same index (the dense matrix is rebuilt below)
    index._neighbors_helper = None
    _, seconds, peak = measure(lambda: index.find_duplicates(thresh=threshold))
    found = len(index.duplicate_ids)
    ds.delete()
    return {"n": n, "seconds": round(seconds, 2), "peak_mb": round(peak, 1), "duplicates": found,
            "planted": planted, "note": "centres embeddings; dense N x N distances up to 15,000 vectors"}


def main():
    sys.path.insert(0, os.path.dirname(HERE))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000])
    parser.add_argument("--crops", type=int, default=64)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--skip-fiftyone", action="store_true")
    args = parser.parse_args()
    if not args.skip_fiftyone:
        start_database()
    results = {"load_average_at_start": os.getloadavg()[0], "embedding": bench_embedding(args.crops)}
    e = results["embedding"]
    print(f"DINOv2-small embedding (CPU, {e['torch_threads']} threads): {e['crops_per_s']} crops/s "
          f"({e['crops']} crops in {e['seconds']} s)", flush=True)
    results["search"] = {}
    print(f"{'search':<22}{'n':>8}{'seconds':>9}{'peak MB':>9}{'pairs':>8}{'planted':>8}{'dense NxN MB':>14}")
    for n in args.sizes:
        rows = bench_search(n, args.threshold)
        results["search"][str(n)] = rows
        for scope, r in rows.items():
            print(f"{'radius_pairs ' + scope:<22}{n:>8}{r['seconds']:>9}{r['peak_mb']:>9}{r['pairs']:>8}"
                  f"{r['planted']:>8}{r['dense_matrix_mb']:>14}", flush=True)
    if not args.skip_fiftyone:
        r = bench_fiftyone_find_duplicates(min(args.sizes), args.threshold)
        results["fiftyone_find_duplicates"] = r
        print(f"{'fiftyone find_dups':<22}{r['n']:>8}{r['seconds']:>9}{r['peak_mb']:>9}{r['duplicates']:>8}"
              f"{r['planted']:>8}   ({r['note']})")
    figures = [_report.figure("DINOv2-small embedding throughput", e["crops_per_s"], "crops/s")]
    for n, rows in results["search"].items():
        for scope, r in rows.items():
            figures += [_report.figure(f"duplicate search {scope}, {n} crops", r["seconds"], "s"),
                        _report.figure(f"duplicate search {scope}, {n} crops: peak memory", r["peak_mb"], "MB",
                                       ("<", r["dense_matrix_mb"]), "target: below a dense N x N matrix")]
    _report.write("dedupe", figures, details=results)


if __name__ == "__main__":
    main()
