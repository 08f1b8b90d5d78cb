"""Identities: linking quality on synthetic camera videos, query by example, and linking at scale (one run).

1. Quality: ``--people`` synthetic people (the test kit's held-out specs) walk through three camera videos
   (each person in two); indexed with the test kit's fine-tuned tiny matcher from their true boxes, linked with
   ``link_identities``; pairwise precision / recall of the identities against the truth, same-frame violations
   (two detections of one identity in one frame), and query by example: the share of tracks whose most
   similar other track (``rank_like``) is the same person.
2. Scale: ``link_tracks`` on 2,500 / 5,000 / 10,000 synthetic 768-d track vectors (5 tracks per person, 50
   videos with overlapping tracks as cannot-links): seconds and peak traced memory, and memory per track.

    .venv/bin/python bench/identities.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _report  # noqa: E402


def _pairwise(identity, truth):
    identity, truth = np.asarray(identity), np.asarray(truth)
    same_pred = identity[:, None] == identity[None, :]
    same_true = truth[:, None] == truth[None, :]
    off = ~np.eye(len(truth), dtype=bool)
    tp = (same_pred & same_true & off).sum()
    return tp / max((same_pred & off).sum(), 1), tp / max((same_true & off).sum(), 1)


def quality(people, folder):
    from person_finder.testing.mongo import start_private_mongod

    start_private_mongod(os.path.join(folder, "db"))
    import fiftyone as fo

    from person_finder.core.identities import link_identities
    from person_finder.core.identities.examples import rank_like
    from person_finder.core.search import index_persons
    from person_finder.testing import people_training, synthetic

    matcher = people_training.finetune_tiny_siglip(os.path.join(folder, "matcher"))
    specs = people_training.held_out_specs()[:people]
    videos = synthetic.write_camera_videos(os.path.join(folder, "cameras"), specs, num_frames=60)
    dataset = fo.Dataset()
    dataset.add_samples([truth.to_sample() for truth, _ in videos.values()])
    dataset.compute_metadata()
    index_persons(dataset, matcher=matcher, detections_field="ground_truth")
    started = time.perf_counter()
    linked = link_identities(dataset)
    link_s = time.perf_counter() - started
    tracks, persons, identities, violations = {}, [], [], 0
    for sample_id, filepath, numbers, boxes, ids, track_ids in zip(*dataset.values(
            ["id", "filepath", "frames.frame_number", "frames.persons.detections.bounding_box",
             "frames.persons.detections.identity", "frames.persons.detections.index"])):
        for number, frame_boxes, frame_ids, frame_tracks in zip(numbers, boxes, ids, track_ids):
            violations += len(frame_ids or []) - len(set(frame_ids or []))
            for box, identity, track in zip(frame_boxes or [], frame_ids or [], frame_tracks or []):
                person = synthetic.true_person(videos, filepath, number, box)
                if (sample_id, track) not in tracks:
                    tracks[(sample_id, track)] = person
                    persons.append(person)
                    identities.append(identity)
    precision, recall = _pairwise(identities, persons)
    hits = 0
    for (sample_id, track), person in tracks.items():
        best = rank_like(dataset, track=(sample_id, track), k=1)[0]
        hits += tracks[(best["sample_id"], best["track_id"])] == person
    dataset.delete()
    return {"people": people, "tracks": len(tracks), "identities": linked["identities"], "precision": precision,
            "recall": recall, "violations": violations, "example_top1": hits / len(tracks), "link_s": link_s}


def scale(sizes, dim=768, tracks_per_person=5, seed=0):
    from person_finder.core.identities.linking import co_visible_pairs, link_tracks

    rng = np.random.default_rng(seed)
    out = {}
    for n in sizes:
        centres = rng.standard_normal((n // tracks_per_person, dim)).astype(np.float32)
        truth = np.repeat(np.arange(n // tracks_per_person), tracks_per_person)
        vectors = centres[truth] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
        videos = [f"v{i % 50}" for i in range(n)]
        frames = [range((i * 7) % 1000, (i * 7) % 1000 + 30) for i in range(n)]
        tracemalloc.start()
        started = time.perf_counter()
        pairs = co_visible_pairs(videos, frames)
        identity, _ = link_tracks(vectors, cannot_link=pairs, threshold=0.6)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        precision, recall = _pairwise(identity, truth) if n <= 10_000 else (None, None)
        out[n] = {"seconds": seconds, "peak_mb": peak / 2**20, "kb_per_track": peak / 1024 / n,
                  "precision": precision, "recall": recall, "cannot_link": len(pairs)}
        print(n, {k: round(v, 4) if isinstance(v, float) else v for k, v in out[n].items()}, flush=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=6)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2500, 5000, 10000])
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="bench-identities-")
    q = quality(args.people, folder)
    print("quality", {k: round(v, 4) if isinstance(v, float) else v for k, v in q.items()}, flush=True)
    s = scale(args.sizes)
    largest = max(args.sizes)
    figures = [
        _report.figure("identity linking pairwise precision (camera videos)", round(q["precision"], 4), "",
                       (">=", 0.9), note=f"{q['tracks']} tracks, {q['people']} people, 3 cameras"),
        _report.figure("identity linking pairwise recall (camera videos)", round(q["recall"], 4), "", (">=", 0.9)),
        _report.figure("same-frame violations", q["violations"], "", ("<=", 0)),
        _report.figure("query by example: same person's other track first", round(q["example_top1"], 4), "",
                       (">=", 0.9)),
        _report.figure(f"link {largest:,} tracks", round(s[largest]["seconds"], 2), "s", ("<", 60)),
        _report.figure(f"link {largest:,} tracks: peak traced memory", round(s[largest]["peak_mb"], 1), "MB"),
    ] + [_report.figure(f"link {n:,} tracks: memory per track", round(r["kb_per_track"], 1), "KB",
                        note="flat = linear growth") for n, r in sorted(s.items())]
    return _report.write("identities", figures, {"quality": q, "scale": {str(k): v for k, v in s.items()}})


if __name__ == "__main__":
    main()
