"""Gemini attributes with the real google-genai client against a fake generateContent server on 127.0.0.1."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import fiftyone as fo
from person_finder.testing.fake_gemini import FAST_CLIENT, TEST_API_KEY, add_people, spec_answer
from person_finder.core import contract, defaults
from person_finder.core.attributes.gemini import GeminiRequestRefused, generate_attributes
from person_finder.testing import synthetic


@pytest.fixture()
def people(dataset, fake, test_root):
    """4 identities x 3 views; the fake answers each image with its person's true attributes."""
    keys = add_people(dataset, os.path.join(test_root, "gemini-people", dataset.name),
                      synthetic.random_specs(4, seed=5), views=3)
    fake.answers.update({k: spec_answer(s) for k, s in keys.items()})
    return keys


def _state(dataset):
    return [(s.has_field("attributes") and s["attributes"] is not None, s["attributes_error"]) for s in dataset]


def test_structured_output_writes_every_view_and_records_the_run(dataset, fake, people):
    out = generate_attributes(dataset, base_url=fake.base_url, **FAST_CLIENT)
    assert out["attributed"] == len(dataset) == 12 and out["failed"] == 0
    for sample in dataset:
        spec = next(s for k, s in people.items() if synthetic.market_attributes(s) == sample["market_attributes"])
        assert sample["attributes"]["upper_colors"] == [spec.upper_color]
        assert sample["attributes"]["gender"] == spec.gender
        assert sample["attributes"]["provider"] == "gemini"
        assert sample["attributes_error"] is None
    body = json.loads(fake.requests[0]["body"])
    schema = body["generationConfig"]["responseSchema"]
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert set(["brown", "gray", "pink", "purple", "orange"]) <= set(schema["properties"]["upper_colors"]["items"]["enum"])
    assert "ethnicity" not in schema["properties"]  # sensitive attributes are opt-in
    info = dataset.get_run_info(contract.ATTRIBUTES_RUN_KEY)
    assert info.config.model == defaults.GEMINI_MODEL and info.config.prompt_version == contract.ATTRIBUTES_PROMPT_VERSION
    results = dataset.load_run_results(contract.ATTRIBUTES_RUN_KEY)
    assert results.calls == 12 and results.prompt_tokens > 12 * 258 and results.output_tokens > 0
    # the App can filter on the embedded document
    assert len(dataset.match(fo.ViewField("attributes.hat") == "yes")) == 3 * sum(s.hat for s in set(people.values()))


def test_sensitive_attributes_only_on_opt_in(dataset, fake, people):
    generate_attributes(dataset.limit(1), base_url=fake.base_url, include_sensitive=True, **FAST_CLIENT)
    body = json.loads(fake.requests[-1]["body"])
    assert "ethnicity" in body["generationConfig"]["responseSchema"]["properties"]


def test_faults_end_on_the_sample_and_a_rerun_completes_only_the_missing(dataset, fake, people):
    fake.hang_s = 1.5
    keys = list(people)
    plan = {0: ["429", "429"], 1: ["500", "503"], 2: ["timeout"], 3: ["malformed"], 4: ["empty"],
            5: ["safety"], 6: ["finish_safety"], 7: ["503", "503", "503"]}
    for i, faults in plan.items():
        fake.faults[keys[i]] = list(faults)
    out = generate_attributes(dataset, base_url=fake.base_url, chunk_size=5,
                              **{**FAST_CLIENT, "timeout_s": 0.5})
    state = _state(dataset)
    assert all(has != (error is not None) for has, error in state), "each sample has attributes xor an error"
    errors = sorted(e for _, e in state if e)
    assert len(errors) == 3 and out["failed"] == 3 and out["attributed"] == 9
    assert any("SAFETY" in e for e in errors) and any("503" in e and "after 3 attempts" in e for e in errors)
    assert out["rate_limited"] == 2 and out["retries"] >= 7
    before = fake.count()
    again = generate_attributes(dataset, base_url=fake.base_url, **FAST_CLIENT)
    assert fake.count() - before == 3 and again["todo"] == 3  # only the failed ones are redone
    assert all(has and error is None for has, error in _state(dataset))


@pytest.mark.parametrize("code, hint", [(400, "invalid"), (403, "GEMINI_API_KEY"), (404, "not found")])
def test_refusals_stop_the_run_with_a_clear_message(dataset, fake, people, code, hint):
    fake.faults["*"] = [None, None, str(code)]
    with pytest.raises(GeminiRequestRefused, match=hint) as err:
        generate_attributes(dataset, base_url=fake.base_url, concurrency=1, chunk_size=1, **FAST_CLIENT)
    assert str(code) in str(err.value)
    assert fake.count() == 3  # no retry, nothing sent after the refusal
    assert len(dataset.exists("attributes")) == 2  # finished samples were kept
    assert dataset.load_run_results(contract.ATTRIBUTES_RUN_KEY).stopped.startswith("Gemini refused")


def test_refused_connection_is_retried_then_recorded(dataset, people):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = generate_attributes(dataset.limit(2), base_url=f"http://127.0.0.1:{port}", **FAST_CLIENT)
    assert out["failed"] == 2 and out["attempts"] == 2 * FAST_CLIENT["max_attempts"]
    assert all("ConnectError" in e for e in dataset.limit(2).values("attributes_error"))


def test_api_key_never_reaches_dataset_run_record_or_logs(dataset, fake, people, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    fake.faults["*"] = ["429", "500", None, None, "403"]
    with pytest.raises(GeminiRequestRefused) as err:
        generate_attributes(dataset, base_url=fake.base_url, concurrency=1, chunk_size=1, **FAST_CLIENT)
    assert fake.requests[0]["headers"]["x-goog-api-key"] == TEST_API_KEY  # it was really used
    captured = capsys.readouterr()
    dumps = [caplog.text, captured.out, captured.err, str(err.value), json.dumps(dataset.to_dict(), default=str),
             str(dataset.get_run_info(contract.ATTRIBUTES_RUN_KEY)),
             json.dumps(dataset.load_run_results(contract.ATTRIBUTES_RUN_KEY).serialize(), default=str)]
    assert "retrying" in caplog.text
    for text in dumps:
        assert TEST_API_KEY not in text and TEST_API_KEY[8:] not in text


def test_dry_run_estimates_without_calls_or_writes(dataset, fake, people):
    out = generate_attributes(dataset, dry_run=True)  # no key needed
    assert out["calls"] == 12 and out["estimated_input_tokens"] > 12 * 258 and out["estimated_output_tokens"] > 0
    grouped = generate_attributes(dataset, dry_run=True, views_per_call=2)
    assert grouped["calls"] == 8 and grouped["images"] == 12  # 3 views -> 2 calls per identity
    assert fake.count() == 0 and not dataset.has_field("attributes_error")


def test_missing_key_is_an_error_before_touching_the_dataset(dataset, people, monkeypatch):
    monkeypatch.delenv(contract.GEMINI_SECRET, raising=False)
    with pytest.raises(ValueError, match="GEMINI_API_KEY"):
        generate_attributes(dataset)
    with pytest.raises(ValueError, match="concurrency"):
        generate_attributes(dataset, api_key=TEST_API_KEY, concurrency=0)
    assert not dataset.has_field("attributes_error")


def test_several_views_of_one_identity_per_call(dataset, fake, people):
    out = generate_attributes(dataset, base_url=fake.base_url, views_per_call=2, **FAST_CLIENT)
    assert out["calls"] == 8 and out["attributed"] == 12
    for request in fake.requests:
        specs = {people[k] for k in request["images"]}
        assert len(request["images"]) in (1, 2) and len(specs) == 1
        assert "2 images" in request["body"].decode() or len(request["images"]) == 1
    assert sorted(dataset.values("attributes.views_in_call")) == [1] * 4 + [2] * 8


KILL_SCRIPT = """
import sys
import fiftyone as fo
from person_finder.core.attributes.gemini import generate_attributes
generate_attributes(fo.load_dataset(sys.argv[1]), api_key="k", base_url=sys.argv[2], concurrency=1, chunk_size=3)
"""


@pytest.mark.slow
def test_kill_9_loses_at_most_the_chunk_in_flight(dataset, fake, test_root):
    dataset.persistent = True
    add_people(dataset, os.path.join(test_root, "gemini-kill"), synthetic.random_specs(8, seed=9), views=3)
    fake.latency = 0.15
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, dataset.name, fake.base_url], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while fake.count(200) < 10 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    answered = fake.count(200)
    assert 10 <= answered < len(dataset), proc.stderr.read().decode()[-2000:]
    dataset.reload()
    kept = len(dataset.exists("attributes"))
    assert kept % 3 == 0  # whole chunks only
    assert kept >= answered - 3  # at most one chunk (2 buffered + 1 in flight) lost
    before = fake.count()
    generate_attributes(dataset, api_key=TEST_API_KEY, base_url=fake.base_url)
    assert fake.count() - before == len(dataset) - kept
    assert len(dataset.exists("attributes")) == len(dataset)
