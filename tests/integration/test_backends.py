"""One conformance suite, every vector backend the README names that runs here, each against a real engine
started on 127.0.0.1 (Milvus Lite's server, PostgreSQL + pgvector) or embedded (LanceDB), sklearn in MongoDB.

Qdrant is not here: no Qdrant server build can be had from the package registries (README: untested).
An engine that cannot start fails its tests; nothing is skipped.
"""

import os
import subprocess
import sys
import time

import pytest

import fiftyone.operators as foo

from person_finder.core import contract
from person_finder.core.search import backends, index_persons, rank_persons, store
from person_finder.testing import synthetic
from person_finder.testing.engines import ENGINES, start_engine
from person_finder.testing.workers import start_worker, stop_worker, wait_for_states

QUERY = "red top and blue trousers"


@pytest.fixture(scope="module", params=ENGINES)
def backend(request, tmp_path_factory):
    """A started engine, configured for this process and the ones it starts; the config restored afterwards."""
    import fiftyone.brain as fb

    name = request.param
    location = start_engine(name, str(tmp_path_factory.mktemp(f"engine-{name}")))
    if location is None:
        yield name
        return
    var = backends.location_env_var(name)
    saved_env, saved_cfg = os.environ.get(var), dict(fb.brain_config.similarity_backends.get(name, {}))
    backends.configure_backend(name, location)
    yield name
    fb.brain_config.similarity_backends[name] = saved_cfg
    if saved_env is None:
        os.environ.pop(var, None)
    else:
        os.environ[var] = saved_env


def _scenes(dataset, folder, count, seed=0):
    specs = synthetic.random_specs(6, seed=seed)
    layout = [[specs[(i + j) % len(specs)] for j in range(2)] for i in range(count)]
    dataset.add_samples([s.to_sample() for s in synthetic.write_scenes(folder, layout, width=320, height=200,
                                                                        seed=seed)])
    dataset.persistent = True


def _index_ids(dataset):
    results = backends.load_index(dataset, contract.PERSON_INDEX_KEY, fresh=True)
    return sorted(backends.index_label_ids(results))


def _agrees(dataset, persons_path="persons"):
    _, _, on_dataset = store.dataset_vectors(dataset)
    assert _index_ids(dataset) == sorted(on_dataset)
    assert len(on_dataset) == dataset.count(persons_path + ".detections.embedding")


def test_index_incrementally_query_here_elsewhere_and_from_a_worker_delete_and_find_duplicates(backend, dataset, tiny_siglip,
                                                                                 test_root, run_python):
    _scenes(dataset, os.path.join(test_root, "backends", dataset.name), count=6)
    first = index_persons(dataset.limit(3), matcher=tiny_siglip, detections_field="ground_truth", backend=backend)
    assert first["indexed"] == 6
    second = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", backend=backend)
    assert second["processed"] == 3 and second["indexed"] == 12  # added, not rebuilt
    assert dataset.get_brain_info(contract.PERSON_INDEX_KEY).config.method == backend
    _agrees(dataset)

    top = rank_persons(dataset, QUERY, k=5)  # the backend's candidates, then exact scores
    exact = rank_persons(dataset, QUERY, k=None)[:5]  # every vector from the dataset
    assert [r["label_id"] for r in top] == [r["label_id"] for r in exact]
    there = run_python(f"""
import fiftyone as fo
from person_finder.core.search import rank_persons
print(",".join(r["label_id"] for r in rank_persons(fo.load_dataset({dataset.name!r}), {QUERY!r}, k=5)))
""").strip().splitlines()[-1]
    assert there.split(",") == [r["label_id"] for r in top]

    _scenes(dataset, os.path.join(test_root, "backends-more", dataset.name), count=2, seed=2)
    worker = start_worker(os.path.join(test_root, f"worker-{backend}.log"))  # a delegated worker adds the rest
    try:
        queued = foo.execute_operator(contract.PLUGIN_NAME + "/index_persons", ctx=dict(
            view=dataset.view(), request_delegation=True, params=dict(
                matcher=str(tiny_siglip), detections_field="ground_truth", backend=backend, delegate=True)))
        wait_for_states([queued.result["id"]], timeout=240)
    finally:
        stop_worker(worker)
    assert len(_index_ids(dataset)) == 16
    assert rank_persons(dataset, QUERY, k=16)[-1]["label_id"] == rank_persons(dataset, QUERY, k=None)[15]["label_id"]

    gone = dataset.first()
    dataset.delete_samples(gone)
    assert gone.id not in {r["sample_id"] for r in rank_persons(dataset, QUERY, k=12)}
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", backend=backend)  # repairs
    assert len(_index_ids(dataset)) == 14
    _agrees(dataset)

    copy = dataset.last().copy()  # the same image again: its persons' embeddings are duplicates
    dataset.add_sample(copy)
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", backend=backend)
    dups = backends.find_duplicates(backends.load_index(dataset, contract.PERSON_INDEX_KEY), thresh=1e-4)
    copied = set(dataset.select(copy.id).values("persons.detections.id", unwind=True))
    assert copied & (set(dups.duplicate_ids) | set(dups.neighbors_map))


def test_a_worker_killed_mid_add_then_rerun(backend, dataset, tiny_siglip, test_root):
    _scenes(dataset, os.path.join(test_root, "backends-kill", dataset.name), count=8, seed=1)
    code = f"""
import fiftyone as fo
from person_finder.core.search import index_persons
print(index_persons(fo.load_dataset({dataset.name!r}), matcher={str(tiny_siglip)!r}, detections_field="ground_truth",
                    detector_batch_size=2, backend={backend!r}))
"""
    worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300

    def embedded():
        dataset.reload()
        return dataset.count("persons.detections.embedding") if dataset.has_field("persons") else 0
    while embedded() < 2:  # the first batch has landed: kill it while it works on the next ones
        assert worker.poll() is None, worker.communicate()[1][-3000:]
        assert time.time() < deadline
        time.sleep(0.01)
    worker.kill()
    worker.wait(timeout=30)
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", detector_batch_size=2,
                  backend=backend)
    assert dataset.count("persons.detections") == dataset.count("ground_truth.detections") == 16
    _agrees(dataset)
    rows = rank_persons(dataset, QUERY, k=None)
    assert len(rows) == 16 and len({r["label_id"] for r in rows}) == 16
