"""Untrusted input against a real database (issue 17): hub folders, Gemini answers and servers, bad values, re-runs.

Gemini is the real google-genai client talking to the fake server in fake_gemini.py on 127.0.0.1.
"""

import json
import os
import shutil
import time

import fiftyone as fo
import fiftyone.types as fot
import pytest
import yaml

from person_finder.testing.fake_gemini import FAST_CLIENT, FakeGemini, add_people, image_key, spec_answer
from person_finder.core import contract
from person_finder.core.attributes.gemini import generate_attributes
from person_finder.core.curation import hub
from person_finder.testing import synthetic


def _people(dataset, fake, test_root, identities=4, views=3):
    keys = add_people(dataset, os.path.join(test_root, "untrusted-people", dataset.name),
                      synthetic.random_specs(identities, seed=5), views=views)
    fake.answers.update({k: spec_answer(s) for k, s in keys.items()})
    return keys


def _key_of(sample):
    with open(sample.filepath, "rb") as f:
        return image_key(f.read())


def _state(dataset):
    return [(s["attributes"] is not None if s.has_field("attributes") else False, s["attributes_error"])
            for s in dataset]


# --- item 2: paths that leave the folder; only images reach Gemini --------------------------------

def _staged(dataset, test_root, name):
    folder = os.path.join(test_root, "untrusted-hub", name)
    shutil.rmtree(folder, ignore_errors=True)
    dataset.export(export_dir=folder, dataset_type=fot.FiftyOneDataset, export_media=True)
    with open(os.path.join(folder, "fiftyone.yml"), "w") as f:
        yaml.safe_dump({"format": "FiftyOneDataset", "name": name}, f)
    return folder


def _rewrite_paths(folder, paths):
    with open(os.path.join(folder, "samples.json")) as f:
        data = json.load(f)
    for sample, path in zip(data["samples"], paths):
        if path is not None:
            sample["filepath"] = path
    with open(os.path.join(folder, "samples.json"), "w") as f:
        json.dump(data, f)


@pytest.mark.parametrize("escape", ["dot-dot", "absolute", "symlink"])
def test_a_hub_folder_whose_paths_leave_it_is_refused(dataset, fake, test_root, escape):
    _people(dataset, fake, test_root, identities=2, views=2)
    folder = _staged(dataset, test_root, f"escape-{escape}")
    secret = os.path.join(test_root, "untrusted-secret.txt")
    with open(secret, "w") as f:
        f.write("root:x:0:0:root:/root:/bin/bash\n")
    if escape == "symlink":
        os.symlink(secret, os.path.join(folder, "data", "innocent.jpg"))
        bad = "data/innocent.jpg"
    else:
        bad = os.path.relpath(secret, folder) if escape == "dot-dot" else secret
    _rewrite_paths(folder, [None, bad])
    name = f"loaded-{escape}-{os.getpid()}"
    with pytest.raises(ValueError, match=r"1 media path\(s\) point outside the folder") as info:
        hub.load_hub_dataset(folder, name=name)
    assert "filepath" in str(info.value) and "nothing was loaded" in str(info.value)
    assert not fo.dataset_exists(name)
    _rewrite_paths(folder, [None, "data/" + os.path.basename(dataset.first().filepath)])  # inside again: loads
    loaded = hub.load_hub_dataset(folder, name=name)
    assert len(loaded) == len(dataset)
    loaded.delete()


def test_only_decodable_images_are_sent_to_gemini(dataset, fake, test_root):
    _people(dataset, fake, test_root, identities=2, views=1)
    secret = os.path.join(test_root, "untrusted-passwd.jpg")  # named like an image, is not one
    with open(secret, "w") as f:
        f.write("root:x:0:0:SECRET-MARKER:/root:/bin/bash\n")
    dataset.add_sample(fo.Sample(filepath=secret, person_id=9))
    out = generate_attributes(dataset, base_url=fake.base_url, **FAST_CLIENT)
    assert out["attributed"] == 2 and out["failed"] == 1
    error = dataset.match({"filepath": secret}).first()["attributes_error"]
    assert "not a readable image; nothing was sent" in error
    assert fake.count() == 2 and not any(b"SECRET-MARKER" in r["body"] for r in fake.requests)
    assert all(b"U0VDUkVU" not in r["body"] for r in fake.requests)  # not even base64-encoded


# --- item 5: an oversized answer is that sample's error; the run record is always written -----------

@pytest.mark.parametrize("cap", ["default", "above-mongodb-limit"])
def test_one_oversized_answer_fails_its_sample_only_and_the_run_is_recorded(dataset, test_root, cap):
    with FakeGemini(huge_bytes=17_000_000) as fake:
        _people(dataset, fake, test_root, identities=10, views=4)  # 40 samples, as in the report
        huge = dataset.skip(5).first()
        fake.faults[_key_of(huge)] = ["huge"]
        extra = {} if cap == "default" else {"max_answer_bytes": 20_000_000}
        out = generate_attributes(dataset, base_url=fake.base_url, chunk_size=32, **FAST_CLIENT, **extra)
        huge_requests = sum(1 for r in fake.requests if r.get("images") == [_key_of(huge)])
    # Gemini's failure (answer over the cap) vs the database's refusal (an answer paid for, kept on disk)
    failed, unstored = (1, 0) if cap == "default" else (0, 1)
    assert out["attributed"] == 39 and out["failed"] == failed and out["unstored"] == unstored
    state = dict(zip(dataset.values("id"), _state(dataset)))
    assert all(state[i] == (True, None) for i in state if i != huge.id)
    attributed, error = state[huge.id]
    assert not attributed
    assert ("answer too large" in error) if cap == "default" else ("could not be stored" in error)
    if unstored:
        kept = error.rsplit("kept in ", 1)[1]
        assert os.path.getsize(kept) > 16_000_000 and json.load(open(kept))["provider"] == "gemini"
    assert huge_requests == 1  # not retried: the same request would give the same answer
    results = dataset.load_run_results(contract.ATTRIBUTES_RUN_KEY)
    assert results.attributed == 39 and results.failed == failed and results.unstored == unstored
    assert results.calls == 40


# --- item 6: a total deadline per call ---------------------------------------------------------------

def test_a_trickling_server_cannot_hold_a_call_past_its_deadline(dataset, test_root):
    with FakeGemini(trickle_s=0.05) as fake:  # ~1 KB body at 20 bytes/s: about a minute per answer
        _people(dataset, fake, test_root, identities=2, views=1)
        first, second = list(dataset)
        fake.faults[_key_of(first)] = ["trickle"]                 # the retry gets a normal answer
        fake.faults[_key_of(second)] = ["trickle", "trickle"]     # every attempt trickles
        started = time.monotonic()
        out = generate_attributes(dataset, base_url=fake.base_url, **{**FAST_CLIENT, "timeout_s": 1.0, "max_attempts": 2})
        elapsed = time.monotonic() - started
    assert elapsed < 8, f"took {elapsed:.1f} s with timeout_s=1"
    assert out["attributed"] == 1 and out["failed"] == 1 and out["retries"] == 2
    first.reload(), second.reload()
    assert first["attributes_error"] is None
    assert second["attributes_error"] == "gemini: no complete answer within 1 s after 2 attempts"


# --- item 7: HTML, truncated JSON and a malformed usage block are transient ------------------------

def test_broken_200_answers_are_retried_like_other_transient_failures(dataset, fake, test_root):
    _people(dataset, fake, test_root, identities=3, views=1)
    for sample, fault in zip(dataset, ["html", "truncated", "bad_usage"]):
        fake.faults[_key_of(sample)] = [fault]
    out = generate_attributes(dataset, base_url=fake.base_url, **FAST_CLIENT)
    assert out["attributed"] == 3 and out["failed"] == 0 and out["retries"] == 3
    assert all(s == (True, None) for s in _state(dataset))
    for sample, fault in zip(dataset, ["html", "truncated", "bad_usage"]):  # always broken: recorded as such
        fake.faults[_key_of(sample)] = [fault] * 3
    generate_attributes(dataset, base_url=fake.base_url, overwrite=True, **FAST_CLIENT)
    errors = dataset.values("attributes_error")
    assert all(e.startswith("gemini: malformed response body") and e.endswith("after 3 attempts") for e in errors)


# --- item 8: bad values -----------------------------------------------------------------------------

def _scenes(dataset, test_root, count=2):
    specs = synthetic.random_specs(2 * count, seed=4, distinct=2 * count <= 60)
    folder = os.path.join(test_root, "untrusted-scenes", dataset.name)
    scenes = synthetic.write_scenes(folder, [specs[2 * i:2 * i + 2] for i in range(count)], width=320, height=240)
    dataset.add_samples([s.to_sample() for s in scenes])
    return scenes


def test_nan_and_infinite_boxes_are_skipped_and_recorded_on_their_sample(dataset, tiny_siglip, test_root):
    from person_finder.core.search import index_persons, search_persons

    _scenes(dataset, test_root)
    first, second = list(dataset)
    first.ground_truth.detections[0].bounding_box = [float("nan"), 0.1, 0.2, 0.3]
    second.ground_truth.detections[1].bounding_box = [0.1, 0.1, float("inf"), 0.3]
    first.save(), second.save()
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    assert summary["processed"] == 2 and summary["persons"] == 2
    assert dataset.count("persons.detections") == 2
    for sample in (first, second):
        sample.reload()
        assert sample[contract.PERSON_ERROR_FIELD] == "skipped 1 box(es) of 'ground_truth' with NaN or infinite values"
    assert search_persons(dataset, "red top", threshold=-1.0).count("persons.detections") == 2


def test_a_nan_box_in_a_video_frame_is_skipped_and_recorded(dataset, tiny_siglip, test_root):
    from person_finder.core.search import index_persons

    folder = os.path.join(test_root, "untrusted-video", dataset.name)
    os.makedirs(folder, exist_ok=True)
    truth = synthetic.write_video(os.path.join(folder, "walk.mp4"), synthetic.random_specs(1, seed=2), num_frames=12,
                                  width=320, height=240)
    sample = truth.to_sample()
    frame = next(n for n in range(1, 13) if sample.frames[n]["ground_truth"] is not None)
    sample.frames[frame]["ground_truth"].detections[0].bounding_box = [float("nan")] * 4
    dataset.add_sample(sample)
    dataset.compute_metadata()
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    assert summary["processed"] == 1
    assert dataset.first()[contract.PERSON_ERROR_FIELD] == (
        "skipped 1 box(es) of 'ground_truth' with NaN or infinite values")


def test_a_market_id_beyond_64_bits_is_refused_before_anything_is_written(dataset, test_root):
    from person_finder.core.curation.market import MarketFormatError, import_market1501

    root = synthetic.write_market_folder(os.path.join(test_root, "untrusted-market", dataset.name), num_train=2,
                                         num_test=2, images_per_camera=1, cameras=(1, 2), seed=0).root
    train = os.path.join(root, "bounding_box_train")
    huge = f"{2 ** 70}_c1s1_000001_01.jpg"
    shutil.copy(os.path.join(train, sorted(os.listdir(train))[0]), os.path.join(train, huge))
    schema = set(dataset.get_field_schema())
    with pytest.raises(MarketFormatError, match=r"numbers below 2\*\*63") as info:
        import_market1501(root, dataset=dataset)
    assert huge in str(info.value)
    assert len(dataset) == 0 and set(dataset.get_field_schema()) == schema


def test_a_lone_surrogate_query_and_a_nan_panel_threshold_are_clear_errors(dataset, tiny_siglip, test_root):
    from person_finder.core.search import index_persons, rank_persons, search_persons
    from person_finder.core.search.panel_data import run_query

    _scenes(dataset, test_root, count=1)
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    for search in (rank_persons, search_persons):
        with pytest.raises(ValueError, match="lone UTF-16 surrogate"):
            search(dataset, "a man in a red \ud800 jacket")
    assert len(rank_persons(dataset, "a man in a red jacket", k=None)) == 2
    for bad in (float("nan"), float("inf"), 3.0):
        with pytest.raises(ValueError, match=r"cosine threshold must be in \[-1, 1\]"):
            run_query(dataset, "a man in a red jacket", contract.PERSON_INDEX_KEY, k=5, threshold=bad)
    assert run_query(dataset, "a man in a red jacket", contract.PERSON_INDEX_KEY, k=5, threshold=-1.0)["above"] == 2


# --- item 9: a SIGKILLed delegated worker; requeue as the README says; re-running is safe ---------------

def _cli(*args):
    import subprocess
    import sys

    fiftyone = os.path.join(os.path.dirname(sys.executable), "fiftyone")
    proc = subprocess.run([fiftyone, "delegated", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _persons_written(dataset):
    dataset.reload()  # the worker adds the field
    return dataset.count("persons") if dataset.has_field("persons") else 0


def test_a_killed_delegated_index_run_is_requeued_and_rerun_safely(dataset, tiny_siglip, test_root):
    import signal
    import subprocess
    import sys

    import fiftyone.operators as foo
    from fiftyone.operators.delegated import DelegatedOperationService
    from fiftyone.operators.executor import ExecutionRunState

    from person_finder.core.search import rank_persons

    scenes = 160  # five batches of 32 images: the worker is killed after the first one is written
    _scenes(dataset, test_root, count=scenes)
    uri = contract.PLUGIN_NAME + "/index_persons"
    queued = foo.execute_operator(uri, ctx=dict(view=dataset.view(), request_delegation=True, params={
        "delegate": True, "matcher": tiny_siglip, "detections_field": "ground_truth"}))
    op_oid = queued.result["id"]
    op_id = str(op_oid)
    fiftyone = os.path.join(os.path.dirname(sys.executable), "fiftyone")
    worker = subprocess.Popen([fiftyone, "delegated", "launch"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while _persons_written(dataset) < 32:
            assert worker.poll() is None and time.time() < deadline, "the worker did not start the job"
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    service = DelegatedOperationService()
    assert service.get(op_oid).run_state == ExecutionRunState.RUNNING  # FiftyOne never learns the worker died
    assert _persons_written(dataset) < scenes, "the job finished before the worker was killed"

    # the README's recipe: find it, mark it failed, queue it again, and let a worker run it
    assert op_id in _cli("list", "--state", "RUNNING", "--dataset", dataset.name)
    _cli("fail", op_id)
    _cli("rerun", op_id)
    assert service.get(op_oid).run_state == ExecutionRunState.FAILED
    service.execute_queued_operations(operator=uri, dataset_name=dataset.name)
    rerun = [op for op in service.list_operations(dataset_name=dataset.name) if str(op.id) != op_id]
    assert len(rerun) == 1 and rerun[0].run_state == ExecutionRunState.COMPLETED, rerun[0].result.error

    def check():
        assert dataset.count("persons.detections") == 2 * scenes == dataset.count("ground_truth.detections")
        rows = rank_persons(dataset, "a man in a red jacket", k=None)
        assert len(rows) == 2 * scenes and len({r["label_id"] for r in rows}) == 2 * scenes  # no duplicates

    check()
    # and running the operator once more (as a user would from the App) changes nothing
    again = foo.execute_operator(uri, ctx=dict(view=dataset.view(), params={
        "delegate": False, "matcher": tiny_siglip, "detections_field": "ground_truth"}))
    assert again.result["processed"] == 0
    check()


def test_a_finetune_worker_killed_while_checkpointing_is_requeued_and_finishes(test_root, tiny_siglip, tmp_path):
    import signal
    import subprocess
    import sys

    import fiftyone.operators as foo
    from fiftyone.operators.delegated import DelegatedOperationService
    from fiftyone.operators.executor import ExecutionRunState

    from person_finder.testing.people_training import write_people_dataset

    people = write_people_dataset(f"untrusted-finetune-{os.getpid()}", os.path.join(test_root, "untrusted-finetune"),
                                  synthetic.random_specs(8, seed=9), images=3)
    try:
        out = str(tmp_path / "model")
        uri = contract.PLUGIN_NAME + "/finetune_matcher"
        queued = foo.execute_operator(uri, ctx=dict(view=people.view(), request_delegation=True, params=dict(
            output_dir=out, base_model=tiny_siglip, epochs=2, batch_size=4, learning_rate=1e-3, val_fraction=0.25)))
        fiftyone = os.path.join(os.path.dirname(sys.executable), "fiftyone")
        worker = subprocess.Popen([fiftyone, "delegated", "launch"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        checkpoints = os.path.join(out, "checkpoints")
        try:
            deadline = time.time() + 300
            while not any(n.startswith("epoch-1") and os.listdir(os.path.join(checkpoints, n))
                          for n in (os.listdir(checkpoints) if os.path.isdir(checkpoints) else [])):
                assert worker.poll() is None and time.time() < deadline, "the worker did not reach a checkpoint"
                time.sleep(0.001)
            worker.send_signal(signal.SIGKILL)  # while epoch 1's checkpoint is being written
            worker.wait(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
        service = DelegatedOperationService()
        assert service.get(queued.result["id"]).run_state == ExecutionRunState.RUNNING
        op_id = str(queued.result["id"])
        _cli("fail", op_id)
        _cli("rerun", op_id)
        service.execute_queued_operations(operator=uri, dataset_name=people.name)
        rerun = [op for op in service.list_operations(dataset_name=people.name) if str(op.id) != op_id]
        assert len(rerun) == 1 and rerun[0].run_state == ExecutionRunState.COMPLETED, rerun[0].result.error
        people.reload()
        assert [r["epoch"] for r in people.load_run_results(contract.TRAIN_RUN_KEY).history] == [1, 2]
    finally:
        people.delete()
