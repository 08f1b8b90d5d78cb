"""The person index against real processes: kill -9 (also during a save), workers on shards, stale readers, threads,
and brain keys of other kinds from every entry point."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fiftyone as fo

from person_finder.core import contract
from person_finder.core.search import index_persons, rank_persons, search_persons, store
from person_finder.testing import synthetic

QUERY = "red top and blue trousers"


def _scenes(dataset, test_root, count, people=2, seed=0):
    specs = synthetic.random_specs(6, seed=seed)
    folder = os.path.join(test_root, "person-index", dataset.name)
    layout = [[specs[(i + j) % len(specs)] for j in range(people)] for i in range(count)]
    dataset.add_samples([scene.to_sample() for scene in synthetic.write_scenes(folder, layout, width=320, height=200,
                                                                                seed=seed)])
    dataset.persistent = True  # worker processes load it by name


def _videos(dataset, test_root, count, num_frames=20):
    folder = os.path.join(test_root, "person-index-videos", dataset.name)
    for seed in range(count):
        truth = synthetic.write_video(os.path.join(folder, f"walk_{seed}.mp4"), synthetic.random_specs(2, seed=seed),
                                      num_frames=num_frames, width=320, height=192, seed=seed)
        sample = fo.Sample(filepath=truth.filepath)
        for number in range(1, num_frames + 1):
            sample.frames[number]["ground_truth"] = fo.Detections(detections=[
                fo.Detection(label="person", bounding_box=track[number])
                for track in truth.tracks.values() if number in track])
        dataset.add_sample(sample)
    dataset.compute_metadata()
    dataset.persistent = True


def _worker(dataset, matcher, ids=None, **kwargs):
    """A separate Python process running index_persons on ``ids`` (or everything)."""
    code = f"""
import fiftyone as fo
from person_finder.core.search import index_persons
ds = fo.load_dataset({dataset.name!r})
view = ds.select({ids!r}) if {ids!r} is not None else ds
print(index_persons(view, matcher={str(matcher)!r}, detections_field="ground_truth", **{kwargs!r}))
"""
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _lock_held(dataset):
    return store._state().find_one({"_id": store._doc_id(dataset, contract.PERSON_INDEX_KEY, "lock")}) is not None


def _kill_when(worker, condition, timeout=300):
    deadline = time.time() + timeout
    while not condition():
        assert worker.poll() is None, f"the worker ended before the kill:\n{worker.communicate()[1][-3000:]}"
        assert time.time() < deadline, "the kill point was never reached"
        time.sleep(0.005)
    worker.kill()  # SIGKILL
    worker.wait(timeout=30)


def _assert_index_agrees(dataset, persons_path, truth_path):
    """No detection lost or duplicated; the index holds exactly the distinct embeddings on the dataset."""
    dataset.reload()
    assert dataset.count(persons_path + ".detections") == dataset.count(truth_path + ".detections")
    _, _, on_dataset = store.dataset_vectors(dataset)
    results = dataset.load_brain_results(contract.PERSON_INDEX_KEY, cache=False)
    assert sorted(str(x) for x in results.label_ids) == sorted(on_dataset)
    assert len(set(on_dataset)) == len(on_dataset) == dataset.count(persons_path + ".detections.embedding")


def test_kill_9_during_saves_on_images_then_rerun(dataset, tiny_siglip, test_root):
    _scenes(dataset, test_root, count=12)
    for kills in (1, 3):  # killed while holding the index lock (adding / saving), the 1st then the 3rd time
        worker = _worker(dataset, tiny_siglip, detector_batch_size=2)
        seen = []

        def nth_save(kills=kills):
            if _lock_held(dataset) and (not seen or seen[-1] is False):
                seen.append(True)
            elif not _lock_held(dataset) and seen and seen[-1] is True:
                seen.append(False)
            return seen.count(True) >= kills + 1  # the first hold creates the index
        _kill_when(worker, nth_save)
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", detector_batch_size=2)
    assert summary["processed"] < 12  # finished batches were kept
    _assert_index_agrees(dataset, "persons", "ground_truth")
    rows = rank_persons(dataset, QUERY, k=None)
    assert len(rows) == 24 and len({r["label_id"] for r in rows}) == 24


def test_kill_9_during_a_video_save_redoes_only_the_video_in_flight(dataset, tiny_siglip, test_root):
    _videos(dataset, test_root, count=3)
    worker = _worker(dataset, tiny_siglip)

    def done():
        dataset.reload()
        return dataset.count(contract.PERSON_TRACKS_FIELD) if dataset.has_field(contract.PERSON_TRACKS_FIELD) else 0
    _kill_when(worker, lambda: done() >= 1 and _lock_held(dataset))  # during the second video's add
    finished = done()
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    assert summary["processed"] == 3 - finished and finished >= 1
    _assert_index_agrees(dataset, "frames.persons", "frames.ground_truth")
    assert summary["indexed"] < dataset.count("frames.persons.detections") / 3  # people, not frames
    rows = rank_persons(dataset, QUERY, k=None)
    assert len(rows) == sum(dataset.values(contract.PERSON_TRACKS_FIELD)) >= 6


def test_two_workers_on_shards_at_once_lose_nothing(dataset, tiny_siglip, test_root):
    _scenes(dataset, test_root, count=16)
    ids = dataset.values("id")
    workers = [_worker(dataset, tiny_siglip, ids[:8], detector_batch_size=2),
               _worker(dataset, tiny_siglip, ids[8:], detector_batch_size=2)]
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
    _assert_index_agrees(dataset, "persons", "ground_truth")
    assert len(rank_persons(dataset, QUERY, k=None)) == 32


def test_an_open_process_sees_what_a_worker_added(dataset, tiny_siglip, test_root):
    _scenes(dataset, test_root, count=4)
    ids = dataset.values("id")
    index_persons(dataset.select(ids[:2]), matcher=tiny_siglip, detections_field="ground_truth")
    reader = subprocess.Popen([sys.executable, "-u", "-c", f"""
import sys, fiftyone as fo
from person_finder.core.search import rank_persons
ds = fo.load_dataset({dataset.name!r})
for line in sys.stdin:
    print(len(rank_persons(ds, {QUERY!r}, k=None)), flush=True)
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask():
        reader.stdin.write("query\n"), reader.stdin.flush()
        line = reader.stdout.readline().strip()
        while not line.isdigit():  # FiftyOne's start-up notices
            line = reader.stdout.readline().strip()
        return int(line)

    try:
        assert ask() == 4
        worker = _worker(dataset, tiny_siglip, ids[2:])
        assert worker.wait(timeout=300) == 0
        assert ask() == 8
    finally:
        reader.kill()


def test_searches_in_threads_and_beside_an_index_run(dataset, tiny_siglip, test_root):
    _scenes(dataset, test_root, count=8)
    ids = dataset.values("id")
    index_persons(dataset.select(ids[:4]), matcher=tiny_siglip, detections_field="ground_truth")
    queries = [QUERY, "a man with a black backpack"]
    expected = {}
    for query in queries:
        best = {}
        for row in rank_persons(dataset, query, k=None):
            best.setdefault(row["sample_id"], row["similarity"])
        expected[query] = sorted(best, key=lambda sid: -best[sid])
    errors, got = [], {}

    def search(query):
        try:
            for _ in range(3):
                got[query] = search_persons(dataset.select(ids[:4]), query).values("id")
                assert got[query] == expected[query], query
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def index_more():
        try:
            index_persons(dataset.select(ids[4:]), matcher=tiny_siglip, detections_field="ground_truth",
                          detector_batch_size=1)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=search, args=(q,)) for q in queries] + [threading.Thread(target=index_more)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):  # ranking never fails while the index is being added to
        assert len(rank_persons(dataset, QUERY, k=None)) >= 8
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(rank_persons(dataset, QUERY, k=None)) == 16


def test_brain_keys_of_another_kind_are_refused_by_every_entry_point(dataset, tiny_siglip, test_root):
    import fiftyone.brain as fob
    import fiftyone.operators as foo

    from person_finder.core.search import panel_data
    from person_finder.core.search.index import build_text_index

    _scenes(dataset, test_root, count=2)
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    fob.compute_similarity(dataset, embeddings=np.random.rand(2, 8), brain_key="plain")
    fob.compute_similarity(dataset, embeddings=np.random.rand(2, 8), brain_key=contract.DEDUPE_BRAIN_KEY)
    fob.compute_visualization(dataset, points=np.random.rand(2, 2), method="manual", brain_key="umap")
    build_text_index(dataset, "patches", matcher=tiny_siglip, patches_field="ground_truth")
    before = dataset.values("persons.detections.label")
    uri = contract.PLUGIN_NAME + "/"
    entry_points = [
        lambda key: index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", brain_key=key),
        lambda key: search_persons(dataset, QUERY, brain_key=key),
        lambda key: rank_persons(dataset, QUERY, brain_key=key),
        lambda key: panel_data.run_query(dataset, QUERY, key, k=2),
        lambda key: foo.execute_operator(uri + "index_persons", ctx=dict(view=dataset.view(), params={
            "delegate": False, "matcher": tiny_siglip, "detections_field": "ground_truth", "brain_key": key})
        ).raise_exceptions(),
        lambda key: foo.execute_operator(uri + "search_persons", ctx=dict(view=dataset.view(), params={
            "delegate": False, "query": QUERY, "brain_key": key})).raise_exceptions(),
    ]
    for key in ("plain", contract.DEDUPE_BRAIN_KEY, "umap", "patches"):
        for call in entry_points:
            with pytest.raises(Exception, match=rf"'{key}'.*not a person index.*\['person_index'\]"):
                call(key)
    assert dataset.values("persons.detections.label") == before
    with pytest.raises(ValueError, match="holds a person index"):
        build_text_index(dataset, contract.PERSON_INDEX_KEY, matcher=tiny_siglip)
    assert store.is_person_index(dataset, contract.PERSON_INDEX_KEY)
    build_text_index(dataset, "patches", matcher=tiny_siglip, patches_field="ground_truth")  # same kind: rebuilt
    build_text_index(dataset, contract.PERSON_INDEX_KEY, matcher=tiny_siglip, replace=True)
    assert not store.is_person_index(dataset, contract.PERSON_INDEX_KEY)


def test_overwrite_redoes_detection_where_nobody_was_found_and_says_so(dataset, tiny_siglip, test_root):
    _scenes(dataset, test_root, count=2)
    dataset.clone_sample_field("ground_truth", "later")
    dataset.set_values("ground_truth", [fo.Detections(), fo.Detections()])
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    assert summary["persons"] == 0 and "no person found in the 2 samples" in summary["message"]
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="later")
    assert summary["processed"] == 0  # done, nobody there
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="later", overwrite=True)
    assert summary["processed"] == 2 and summary["persons"] == summary["indexed"] == 4 and "message" not in summary
    _assert_index_agrees(dataset, "persons", "later")
