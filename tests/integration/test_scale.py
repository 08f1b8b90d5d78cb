"""Scale: LanceDB indexes shared by processes and workers, several workers on one queue, an external MongoDB."""

import json
import os
import re
import subprocess
import sys
import time

import fiftyone as fo
import fiftyone.operators as foo
import numpy as np
import pytest

from person_finder.core.search import backends

from person_finder.core import defaults
from person_finder.core.search.index import build_text_index
from person_finder.testing import synthetic
from person_finder.testing.workers import start_worker, stop_worker, wait_for_log, wait_for_states

URI = "@openset-reid/person-finder/build_text_index"
QUERY = "red top and blue trousers"


def _add_crops(dataset, root, n, seed=0):
    samples = []
    for i, spec in enumerate(synthetic.random_specs(n, seed=seed)):
        path = os.path.join(root, f"scale-{seed}-{i}.jpg")
        synthetic.render_crop(spec, seed=i).save(path)
        samples.append(fo.Sample(filepath=path))
    dataset.add_samples(samples)
    dataset.persistent = True
    return dataset


@pytest.fixture()
def lancedb_uri(test_root, request):
    """A LanceDB location configured for this process and every process it starts; restored afterwards."""
    import fiftyone.brain as fb

    var = backends.location_env_var("lancedb")
    saved_env, saved_cfg = os.environ.get(var), dict(fb.brain_config.similarity_backends["lancedb"])
    uri = backends.configure_backend("lancedb", os.path.join(test_root, f"lancedb-{request.node.name}"))
    yield uri
    fb.brain_config.similarity_backends["lancedb"] = saved_cfg
    if saved_env is None:
        os.environ.pop(var, None)
    else:
        os.environ[var] = saved_env


def test_backend_option_is_validated_before_the_dataset_is_touched(dataset, tiny_siglip, test_root):
    _add_crops(dataset, test_root, 2)
    build_text_index(dataset, brain_key="kept", matcher=tiny_siglip)
    with pytest.raises(ValueError, match=r"'faiss' is not supported; use one of \('sklearn', 'lancedb'"):
        build_text_index(dataset, brain_key="kept", matcher=tiny_siglip, backend="faiss")
    with pytest.raises(ValueError, match="needs the 'qdrant-client' package: pip install qdrant-client"):
        build_text_index(dataset, brain_key="kept", matcher=tiny_siglip, backend="qdrant")
    assert dataset.list_brain_runs() == ["kept"]
    with pytest.raises(ValueError, match="FIFTYONE_DATABASE_URI"):
        backends.configure_backend("sklearn", "/anywhere")


def test_lancedb_index_answers_a_text_query_in_a_second_process(dataset, tiny_siglip, test_root, lancedb_uri,
                                                                run_python):
    _add_crops(dataset, test_root, 8, seed=1)
    results = build_text_index(dataset, brain_key="crops", matcher=tiny_siglip, backend="lancedb")
    assert results.config.method == "lancedb" and results.total_index_size == 8
    assert os.path.isdir(lancedb_uri) and os.listdir(lancedb_uri)
    here = [s.id for s in dataset.sort_by_similarity(QUERY, k=5, brain_key="crops")]
    code = f"""
import fiftyone as fo
from person_finder.core.search.backends import load_index
ds = fo.load_dataset({dataset.name!r})
load_index(ds, "crops")
print(",".join(s.id for s in ds.sort_by_similarity({QUERY!r}, k=5, brain_key="crops")))
"""
    there = run_python(code).strip().splitlines()[-1].split(",")
    assert there == here and len(here) == 5
    # A process that looks elsewhere is told which variable to set, instead of getting an empty result.
    with pytest.raises(AssertionError, match="FIFTYONE_BRAIN_SIMILARITY_LANCEDB_URI in this process"):
        run_python(code, env={backends.location_env_var("lancedb"): os.path.join(test_root, "elsewhere")})


def test_duplicate_search_falls_back_where_the_backend_lacks_it(dataset, test_root, lancedb_uri):
    import fiftyone.brain as fob

    _add_crops(dataset, test_root, 6, seed=2)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 16)).astype(np.float32)
    vectors[3] = vectors[0] + 0.001  # a planted duplicate pair
    lance = fob.compute_similarity(dataset, embeddings=vectors, brain_key="lance", backend="lancedb")
    assert not hasattr(lance, "find_duplicates")  # FiftyOne offers duplicate search on sklearn indexes only
    exact = fob.compute_similarity(dataset, embeddings=vectors, brain_key="exact", backend="sklearn")
    via_lance = backends.find_duplicates(lance, thresh=0.01)
    via_sklearn = backends.find_duplicates(exact, thresh=0.01)
    ids = dataset.values("id")
    assert sorted(via_lance.duplicate_ids) == sorted(via_sklearn.duplicate_ids) == [ids[3]]
    assert via_lance.neighbors_map.keys() == via_sklearn.neighbors_map.keys() == {ids[0]}


def test_large_lancedb_tables_get_an_approximate_index(dataset, lancedb_uri, monkeypatch):
    import fiftyone.brain as fob

    monkeypatch.setattr(defaults, "LANCEDB_ANN_MIN_ROWS", 300)
    monkeypatch.setattr(defaults, "LANCEDB_ROWS_PER_PARTITION", 150)
    dataset.add_samples([fo.Sample(filepath=f"/nowhere/{i}.jpg") for i in range(300)])
    vectors = np.random.default_rng(1).normal(size=(300, 32)).astype(np.float32)
    small = fob.compute_similarity(dataset.limit(299), embeddings=vectors[:299], brain_key="small", backend="lancedb")
    assert backends.finalize_index(small).table.list_indices() == []  # under the threshold: exact scan
    large = backends.finalize_index(fob.compute_similarity(dataset, embeddings=vectors, brain_key="large",
                                                           backend="lancedb"))
    assert [i.index_type for i in large.table.list_indices()] == ["IvfSq"]
    nearest = dataset.sort_by_similarity(vectors[7], k=1, brain_key="large").first()
    assert nearest.id == dataset.values("id")[7]


@pytest.mark.slow
def test_a_delegated_worker_builds_a_lancedb_index_the_sdk_queries(dataset, tiny_siglip, test_root, lancedb_uri):
    _add_crops(dataset, test_root, 6, seed=3)
    worker = start_worker(os.path.join(test_root, "worker-lancedb.log"))
    try:
        queued = foo.execute_operator(URI, ctx=dict(view=dataset.view(), request_delegation=True, params=dict(
            brain_key="crops", matcher=tiny_siglip, backend="lancedb", delegate=True)))
        op_id = queued.result["id"]
        wait_for_states([op_id], timeout=240)
    finally:
        log = stop_worker(worker)
    assert f"Running operation {op_id}" in log, log
    dataset.reload()  # the worker changed the dataset's runs in the database
    results = backends.load_index(dataset, "crops")
    assert results.config.method == "lancedb" and results.total_index_size == 6
    assert len(dataset.sort_by_similarity(QUERY, k=3, brain_key="crops")) == 3


# Runs in a process whose FIFTYONE_DATABASE_URI points at a separately started mongod: make a dataset,
# queue one delegated build per shard of it, and report the queued operation ids.
QUEUE_SHARDS = """
import json, os, fiftyone as fo, fiftyone.operators as foo
from person_finder.testing import synthetic
assert fo.config.database_uri == os.environ["FIFTYONE_DATABASE_URI"]
ds = fo.Dataset("external-shards", overwrite=True, persistent=True)
paths = []
for i, spec in enumerate(synthetic.random_specs(8, seed=5)):
    paths.append(os.path.join({root!r}, "external-%d.jpg" % i))
    synthetic.render_crop(spec, seed=i).save(paths[-1])
ds.add_samples([fo.Sample(filepath=p) for p in paths])
ids = ds.values("id")
ops = []
for shard in range({shards}):
    view = ds.select(ids[shard::{shards}])
    queued = foo.execute_operator({uri!r}, ctx=dict(view=view, request_delegation=True, params=dict(
        brain_key="shard%d" % shard, matcher={matcher!r}, delegate=True)))
    ops.append(str(queued.result["id"]))
print(json.dumps(ops))
"""

CHECK_SHARDS = """
import json, fiftyone as fo
from bson import ObjectId
from fiftyone.operators.delegated import DelegatedOperationService
docs = [DelegatedOperationService().get(ObjectId(op)) for op in {ops!r}]
ds = fo.load_dataset("external-shards")
ids = ds.values("id")
out = {{"states": [str(d.run_state) for d in docs], "errors": [d.result.error if d.result else None for d in docs],
       "indexed": [sorted(ds.load_brain_results("shard%d" % i).sample_ids) for i in range({shards})],
       "expected": [sorted(ids[i::{shards}]) for i in range({shards})]}}
print(json.dumps(out))
"""

HOLD_MONGOD = """
import sys
from person_finder.testing.mongo import start_private_mongod
print(start_private_mongod({path!r}), flush=True)
sys.stdin.read()   # runs until the test closes stdin; mongod is stopped at exit
"""


@pytest.fixture()
def external_mongod(test_root):
    """A second mongod on another port, started (and stopped) by a process of its own."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_MONGOD.format(path=os.path.join(test_root, "external-db"))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=test_root)
    uri = holder.stdout.readline().strip()
    assert uri.startswith("mongodb://127.0.0.1:") and uri != os.environ["FIFTYONE_DATABASE_URI"], uri
    yield uri
    holder.stdin.close()
    holder.wait(timeout=60)


@pytest.mark.slow
def test_two_workers_on_an_external_mongod_drain_a_sharded_queue_once_each(external_mongod, tiny_siglip, test_root,
                                                                          run_python):
    env = {"FIFTYONE_DATABASE_URI": external_mongod}
    shards = 4
    workers = [start_worker(os.path.join(test_root, f"worker-{i}.log"), env=env) for i in range(2)]
    try:
        for worker in workers:
            wait_for_log(worker, "Delegated operation service running")
        ops = json.loads(run_python(QUEUE_SHARDS.format(root=test_root, shards=shards, uri=URI, matcher=tiny_siglip),
                                    env=env).strip().splitlines()[-1])
        deadline = time.time() + 300
        while True:
            out = json.loads(run_python(CHECK_SHARDS.format(ops=ops, shards=shards), env=env)
                             .strip().splitlines()[-1]) if _all_done(workers, ops) else None
            if out or time.time() > deadline:
                break
            time.sleep(2)
    finally:
        logs = [stop_worker(w) for w in workers]
    assert out is not None, logs
    assert out["states"] == ["completed"] * shards, (out["errors"], logs)
    assert out["indexed"] == out["expected"]
    runs = [re.findall(r"Running operation (\w+)", log) for log in logs]
    assert sorted(runs[0] + runs[1]) == sorted(ops), runs  # every operation ran, none twice
    assert runs[0] and runs[1], runs  # both workers took work from the queue
    # The session's own database never saw the dataset: everything lived in the external mongod.
    assert "external-shards" not in fo.list_datasets()


def _all_done(workers, ops):
    text = "".join(open(w.log_path).read() for w in workers)
    return all(text.count(f"Operation {op} complete") + text.count(f"Operation {op} failed") >= 1 for op in ops) or \
        any(w.poll() is not None for w in workers)


def test_rank_persons_asks_lancedb_for_candidates_and_scores_whole_tracks(dataset, tiny_siglip, test_root,
                                                                          lancedb_uri, monkeypatch):
    from person_finder.core.search import gallery as galleries
    from person_finder.core.search import index_persons, rank_persons

    specs = synthetic.random_specs(6, seed=4)
    scenes = synthetic.write_scenes(os.path.join(test_root, "lancedb-rank", dataset.name),
                                    [specs[i:i + 2] for i in range(0, 6, 2)] * 4, width=320, height=200)
    dataset.add_samples([scene.to_sample() for scene in scenes])
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", backend="lancedb")
    assert summary["indexed"] == 24
    everyone = rank_persons(dataset, "red top and blue trousers", k=None)  # every person, exact
    monkeypatch.setattr(defaults, "RANK_MIN_CANDIDATES", 1)
    monkeypatch.setattr(defaults, "RANK_CANDIDATES_PER_RESULT", 1)
    loaded = []
    real = galleries.Gallery.__init__

    def spy(self, dataset, brain_key, sample_ids=None):
        loaded.append(sample_ids)
        real(self, dataset, brain_key, sample_ids=sample_ids)

    monkeypatch.setattr(galleries.Gallery, "__init__", spy)
    top = rank_persons(dataset, "red top and blue trousers", k=3)
    assert [r["label_id"] for r in top] == [r["label_id"] for r in everyone[:3]]
    assert len(loaded) == 1 and 1 <= len(loaded[0]) <= 3  # only the candidates' samples were read
