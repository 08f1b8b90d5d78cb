"""People, not frames: the incremental person index, measured in one run (ratios, one machine, one load).

1. index vectors / person-frames on a synthetic walking video (``--frames``, ground-truth boxes, tiny matcher);
2. adding that video's vectors (``store.add_vectors``; as many 768-d synthetic vectors as its distinct embeddings,
   the tiny matcher's are 64-d) to a LanceDB index already holding ``--gallery`` synthetic 768-d vectors vs adding
   them to an empty one (median of ``ADD_REPEATS`` interleaved adds each, under fresh label ids);
3. LanceDB top-25 candidate query (what ``rank_persons`` asks the backend) on that gallery: median latency and the
   querying process's extra peak memory (RSS high-water mark);
4. two worker processes indexing two shards of images at once vs the same shards one after the other
   (tiny matcher, real MongoDB), and embeddings lost;
5. ``search_persons`` score write-back (one bulk pass) in seconds per 100k person-frames.

    .venv/bin/python bench/people_index.py                         # --gallery 1000000 needs ~3 GB of disk
    .venv/bin/python bench/people_index.py --gallery 200000 --frames 600
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _report  # noqa: E402
from search import environment  # noqa: E402

DIM = 768
ADD_REPEATS = 7


def video_dataset(root, frames, people, matcher):
    import fiftyone as fo

    from person_finder.core.search import index_persons
    from person_finder.testing import synthetic

    truth = synthetic.write_video(os.path.join(root, "walk.mp4"), synthetic.random_specs(people, seed=1),
                                  num_frames=frames, width=640, height=360, seed=1)
    dataset = fo.Dataset("bench-people-video")
    sample = fo.Sample(filepath=truth.filepath)
    for number in range(1, frames + 1):
        sample.frames[number]["ground_truth"] = fo.Detections(detections=[
            fo.Detection(label="person", bounding_box=track[number]) for track in truth.tracks.values()
            if number in track])
    dataset.add_sample(sample)
    dataset.compute_metadata()
    start = time.perf_counter()
    summary = index_persons(dataset, matcher=matcher, detections_field="ground_truth")
    return dataset, summary, time.perf_counter() - start


def add_seconds(dataset, keys, vectors, owners, repeats=ADD_REPEATS):
    """Median seconds of adding ``vectors`` (fresh label ids) to each index of ``keys``, the adds interleaved.

    One add takes ~35 ms, so a single timing is noise; interleaving the
    indexes gives each the same share of whatever else the machine is doing.
    """
    from bson import ObjectId

    from person_finder.core.search import store

    timings = {key: [] for key in keys}
    for _ in range(repeats):
        for key in keys:
            label_ids = [str(ObjectId()) for _ in owners]
            start = time.perf_counter()
            store.add_vectors(dataset, key, vectors, owners, label_ids)
            timings[key].append(time.perf_counter() - start)
    return [float(np.median(timings[key])) for key in keys]


def store_key(empty=False):
    return "bench_lancedb_empty" if empty else "bench_lancedb"


def lancedb_index(dataset, matcher, gallery, key, batch=100_000):
    """A LanceDB person index ``key`` on ``dataset`` filled with ``gallery`` synthetic unit vectors (ids unused by labels)."""
    from bson import ObjectId

    from person_finder.core.search import backends, store

    results = store.open_index(dataset, key, matcher, backend="lancedb")
    rng = np.random.default_rng(0)
    for start in range(0, gallery, batch):
        n = min(batch, gallery - start)
        vectors = rng.standard_normal((n, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [str(ObjectId()) for _ in range(n)]
        backends.update_index(results, vectors, ids, ids)
    backends.finalize_index(results)
    return results


def query_figures(dataset, queries=50):
    """Median top-25 candidate latency and extra peak RSS of a fresh process querying the LanceDB index."""
    code = f"""
import resource, time, numpy as np, fiftyone as fo
from person_finder.core.search.backends import load_index
ds = fo.load_dataset({dataset.name!r})
results = load_index(ds, {store_key()!r}, fresh=True)
rng = np.random.default_rng(1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range({queries}):
    q = rng.standard_normal({DIM}).astype(np.float32); q /= np.linalg.norm(q)
    t = time.perf_counter(); results._kneighbors(query=q, k=100); times.append(time.perf_counter() - t)
print("RESULT", np.median(times[5:]) * 1000, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    median_ms, extra_mb = map(float, next(l for l in out.splitlines() if l.startswith("RESULT")).split()[1:])
    return median_ms, extra_mb


def image_shards(root, count, matcher):
    import fiftyone as fo

    from person_finder.testing import synthetic

    specs = synthetic.random_specs(6, seed=2)
    scenes = synthetic.write_scenes(os.path.join(root, "scenes"), [[specs[i % 6], specs[(i + 1) % 6]]
                                                                   for i in range(count)], width=320, height=200)
    dataset = fo.Dataset("bench-people-images")
    dataset.add_samples([s.to_sample() for s in scenes])
    dataset.persistent = True
    return dataset


def run_workers(dataset, matcher, shards, at_once):
    code = """
import sys, fiftyone as fo
from person_finder.core.search import index_persons
ds = fo.load_dataset(sys.argv[1])
index_persons(ds.select(sys.argv[3].split(",")), matcher=sys.argv[2], detections_field="ground_truth",
              detector_batch_size=4)
"""
    start = time.perf_counter()
    procs = []
    for shard in shards:
        proc = subprocess.Popen([sys.executable, "-c", code, dataset.name, str(matcher), ",".join(shard)])
        if not at_once:
            proc.wait()
        procs.append(proc)
    assert all(p.wait() == 0 for p in procs)
    return time.perf_counter() - start


def write_back(dataset, query="red top and blue trousers"):
    from person_finder.core.search import search_persons

    search_persons(dataset, query)  # the gallery loaded and the text embedded once
    start = time.perf_counter()
    search_persons(dataset, query + " and a bag")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1800)
    parser.add_argument("--people", type=int, default=6)
    parser.add_argument("--gallery", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=32, help="images in the two shards of figure 4")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="bench-people-")
    environment(root)
    os.environ["FIFTYONE_BRAIN_SIMILARITY_LANCEDB_URI"] = os.path.join(root, "lancedb")
    from person_finder.core.search import store
    from person_finder.testing.tiny_models import make_tiny_siglip

    matcher = make_tiny_siglip(os.path.join(root, "tiny-siglip"))
    video, summary, index_s = video_dataset(root, args.frames, args.people, matcher)
    person_frames = video.count("frames.persons.detections")
    _, owners, label_ids = store.dataset_vectors(video)
    vectors = np.random.default_rng(2).standard_normal((len(label_ids), DIM)).astype(np.float32)  # matcher-sized
    print(f"video: {person_frames} person-frames, {summary['indexed']} vectors, indexed in {index_s:.1f} s")

    lancedb_index(video, matcher, 0, store_key(empty=True))
    start = time.perf_counter()
    lancedb_index(video, matcher, args.gallery, store_key())
    fill_s = time.perf_counter() - start
    empty_s, full_s = add_seconds(video, [store_key(empty=True), store_key()], vectors, owners)
    print(f"gallery of {args.gallery} filled in {fill_s:.0f} s")
    median_ms, extra_mb = query_figures(video)

    images = image_shards(root, args.images, matcher)
    ids = images.values("id")
    shards = [ids[: len(ids) // 2], ids[len(ids) // 2:]]
    sequential_s = run_workers(images, matcher, shards, at_once=False)
    images.reload()  # the workers made the index
    images.delete_brain_run("person_index")
    images.delete_sample_field("persons")
    parallel_s = run_workers(images, matcher, shards, at_once=True)
    images.reload()
    _, _, on_dataset = store.dataset_vectors(images)
    indexed = images.load_brain_results("person_index", cache=False).total_index_size
    lost = 2 * args.images - indexed
    write_s = write_back(video)

    figures = [
        _report.figure("index vectors / person-frames (video)", round(summary["indexed"] / person_frames, 4), "",
                       ("<=", 0.04), f"{summary['indexed']} / {person_frames}, {args.frames} frames"),
        _report.figure(f"add one video to a {args.gallery:,}-vector LanceDB index / to an empty one",
                       round(full_s / empty_s, 2), "x", ("<=", 1.2), f"median of {ADD_REPEATS}: {full_s:.3f} s vs {empty_s:.3f} s"),
        _report.figure(f"LanceDB top-25 candidates (k=100), {args.gallery:,} vectors: median", round(median_ms, 1),
                       "ms", ("<", 100)),
        _report.figure("  extra peak memory of the querying process", round(extra_mb, 1), "MB", ("<", 500)),
        _report.figure("two workers on two shards at once / one after the other", round(parallel_s / sequential_s, 2),
                       "x", ("<=", 0.7), f"{parallel_s:.1f} s vs {sequential_s:.1f} s on {os.cpu_count()} cores"),
        _report.figure("  embeddings lost", lost, "", ("<=", 0), f"{indexed} indexed, {len(on_dataset)} on dataset"),
        _report.figure("search_persons write-back per 100k person-frames", round(write_s * 1e5 / person_frames, 2),
                       "s", ("<=", 5), f"{write_s:.2f} s for {person_frames}"),
    ]
    _report.write("people_index", figures, {"args": vars(args), "gallery_fill_s": fill_s})


if __name__ == "__main__":
    main()
