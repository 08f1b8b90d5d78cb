"""Attribute-aware search end to end: Gemini query parse, fusion with merged attributes, hard filters, the operator."""

import dataclasses
import json
import os

import fiftyone.operators as foo
import pytest

from person_finder.core import contract
from person_finder.core.attributes.constraints import parse_query, parse_with_gemini
from person_finder.core.identities.attributes import attribute_persons, indexed_persons
from person_finder.core.search.crops import crop_files
from person_finder.core.search import rank_persons, search_persons
from person_finder.testing import synthetic
from person_finder.testing.fake_gemini import FAST_CLIENT, TEST_API_KEY, image_key, spec_answer

UPPERS = ("black", "white", "red", "purple", "yellow", "green")
LOWERS = ("pink", "blue", "gray", "brown", "orange", "black")


def _is_parse(text):
    return "searches surveillance footage" in text


def test_gemini_parse_is_structured_retried_and_checked(fake):
    fake.responder = lambda images, text: {"upper_colors": "white", "shoulder_bag": "yes",
                                           "shoulder_bag_color": "brown", "hat": None} if _is_parse(text) else None
    fake.faults["*"] = ["500", "429"]
    parsed = parse_with_gemini("a woman in a white t-shirt with a brown shoulder bag", base_url=fake.base_url,
                               **FAST_CLIENT)
    assert parsed == {"upper_colors": "white", "shoulder_bag": "yes", "shoulder_bag_color": "brown"}
    assert fake.count() == 3  # two transient failures, then the answer
    schema = json.loads(fake.requests[-1]["body"])["generationConfig"]["responseSchema"]
    assert "ethnicity" not in schema["properties"] and "description" not in schema["properties"]
    assert "unknown" not in json.dumps(schema["properties"]["hat"])


def test_auto_parse_falls_back_offline_and_gemini_mode_raises(fake):
    fake.faults["*"] = ["malformed"] * 3 + ["malformed"] * 3
    auto = parse_query("red top and blue trousers", parser="auto", base_url=fake.base_url, **FAST_CLIENT)
    assert auto == {"upper_colors": "red", "lower_type": "trousers", "lower_colors": "blue"}
    with pytest.raises(Exception, match="malformed|schema"):
        parse_query("red top", parser="gemini", base_url=fake.base_url, **FAST_CLIENT)


@pytest.fixture()
def attributed(dataset, test_root, tiny_siglip, fake):
    """Two indexed scenes of three people each, with Gemini attributes (the fake answers the truth) per person."""
    specs = [dataclasses.replace(s, upper_color=u, lower_color=l)
             for s, u, l in zip(synthetic.random_specs(6, seed=3), UPPERS, LOWERS)]
    scenes = synthetic.add_indexed_scenes(dataset, os.path.join(test_root, "fused", dataset.name),
                                          [specs[:3], specs[3:]], tiny_siglip, width=320, height=180, seed=7)
    folder = os.path.join(test_root, "fused-crops", dataset.name)
    persons = indexed_persons(dataset)
    spec_of = synthetic.scene_specs(dataset, scenes)
    for label_id, path in crop_files(persons, folder).items():
        with open(path, "rb") as f:
            fake.answers[image_key(f.read())] = spec_answer(spec_of[label_id])
    attribute_persons(dataset, provider="gemini", crop_folder=folder, base_url=fake.base_url, **FAST_CLIENT)
    return spec_of


def test_fused_query_puts_the_described_person_first_where_similarity_does_not(dataset, attributed):
    specs = list(attributed.values())
    query = "a person in a {} top and {} trousers"
    # the person the random tiny matcher ranks last for its own description
    last = {}
    for spec in specs:
        rows = rank_persons(dataset, query.format(spec.upper_color, spec.lower_color), k=None)
        last[spec] = rows[-1]["label_id"] == next(l for l, s in attributed.items() if s == spec)
    target = next(spec for spec, is_last in last.items() if is_last) if any(last.values()) else specs[0]
    text = query.format(target.upper_color, target.lower_color)
    target_label = next(l for l, s in attributed.items() if s == target)
    plain = rank_persons(dataset, text, k=None)
    assert plain[0]["label_id"] != target_label
    constraints = parse_query(text, parser="offline")
    assert constraints == {"upper_colors": target.upper_color, "lower_type": "trousers",
                           "lower_colors": target.lower_color}
    colours = {f: constraints[f] for f in ("upper_colors", "lower_colors")}  # the user keeps only the colours
    fused = rank_persons(dataset, text, k=None, constraints=colours)
    assert fused[0]["label_id"] == target_label and fused[0]["attribute_score"] == 1.0
    assert [r["fused_score"] for r in fused] == sorted((r["fused_score"] for r in fused), reverse=True)
    similarity_only = rank_persons(dataset, text, k=None, constraints=colours, attribute_weight=0.0)
    assert [r["label_id"] for r in similarity_only] == [r["label_id"] for r in plain]
    hard = rank_persons(dataset, text, k=None, constraints=colours, hard=["upper_colors"])
    assert [r["label_id"] for r in hard] == [target_label]  # everyone else wears a known other top


def test_search_writes_fused_scores_and_hard_filters_never_match(dataset, attributed):
    target_label, target = next(iter(attributed.items()))
    text = f"a {target.upper_color} top"
    view = search_persons(dataset, text, threshold=-1.0, constraints={"upper_colors": target.upper_color}, hard=True)
    dets = {d.id: d for sample in dataset for d in sample.persons.detections}
    assert dets[target_label].label == contract.MATCH_LABEL and dets[target_label][contract.ATTRIBUTE_SCORE_ATTR] == 1.0
    assert all(d.label == contract.PERSON_LABEL for i, d in dets.items() if i != target_label)  # hard: no match
    assert all(d[contract.FUSED_SCORE_ATTR] is not None for d in dets.values())
    assert target_label in [d.id for d in view.first().persons.detections]  # its image first
    record = dataset.info[contract.LAST_SEARCH_INFO]
    assert record["constraints"] == {"upper_colors": target.upper_color} and record["matches"] == 1
    search_persons(dataset, text, threshold=-1.0)  # a plain query clears the fused scores
    assert all(d[contract.FUSED_SCORE_ATTR] is None for s in dataset for d in s.persons.detections)


def test_constraints_without_attributes_or_with_bad_values_are_clear_errors(dataset, test_root, tiny_siglip):
    synthetic.add_indexed_scenes(dataset, os.path.join(test_root, "fused-bare", dataset.name),
                                 [synthetic.random_specs(2, seed=1)], tiny_siglip, width=320, height=180)
    with pytest.raises(ValueError, match="run attribute_indexed_persons first"):
        rank_persons(dataset, "red top", constraints={"upper_colors": "red"})
    with pytest.raises(ValueError, match="upper_colors='scarlet' is not allowed"):
        search_persons(dataset, "red top", constraints="upper_colors=scarlet")
    assert not dataset.has_field(f"persons.detections.{contract.SIMILARITY_ATTR}")  # nothing was written


def test_search_operator_shows_the_parse_and_uses_the_edited_constraints(dataset, attributed, monkeypatch):
    from fiftyone.operators.executor import ExecutionContext

    monkeypatch.delenv(contract.GEMINI_SECRET, raising=False)
    uri = f"{contract.PLUGIN_NAME}/search_persons"
    target_label, target = next(iter(attributed.items()))
    query = f"someone in a {target.upper_color} top without a hat"
    ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": {"query": query}},
                           operator_uri=uri)
    form = foo.get_operator(uri).resolve_input(ctx).to_json()["type"]["properties"]
    assert form["constraints"]["default"] == f"upper_colors={target.upper_color}, hat=no"
    assert form["attribute_weight"]["default"] == 0.6
    result = foo.execute_operator(uri, ctx=dict(view=dataset.view(), params={
        "query": query, "constraints": f"upper_colors={target.upper_color}", "hard": True, "threshold": -1.0})).result
    assert result["constraints"] == {"upper_colors": target.upper_color} and result["samples"] == 2
    labels = {d.id: d.label for s in dataset for d in s.persons.detections}
    assert [i for i, label in labels.items() if label == contract.MATCH_LABEL] == [target_label]
    with pytest.raises(Exception, match="not allowed"):
        foo.execute_operator(uri, ctx=dict(view=dataset.view(), params={
            "query": query, "constraints": "upper_colors=teal"})).raise_exceptions()


def _verifier(fake, upper_color):
    """Answer verification prompts like a perfect model for 'a <upper_color> top'."""
    def respond(images, text):
        if "Does the person in this image match" not in text:
            return None
        seen = fake.answers[images[0]]["upper_colors"][0]
        return {"match": "yes"} if seen == upper_color else {"match": "no", "failed_constraint": "upper_colors"}
    return respond


def test_verification_is_estimated_cached_written_and_reranks(dataset, attributed, fake, test_root):
    from person_finder.core.search.verify import verify_persons

    folder = os.path.join(test_root, "fused-crops", dataset.name)
    target_label, target = list(attributed.items())[-1]
    fake.responder = _verifier(fake, target.upper_color)
    query, before = f"someone in a {target.upper_color} top", fake.count()
    dry = verify_persons(dataset, query, k=6, dry_run=True)  # no key needed to estimate
    assert dry["calls"] == 6 and dry["estimated_cost_usd"] > 0 and fake.count() == before
    out = verify_persons(dataset, query, k=6, crop_folder=folder, base_url=fake.base_url, **FAST_CLIENT)
    assert out["verified"] == 6 and out["failed"] == 0 and fake.count() - before == 6
    assert out["rows"][0]["label_id"] == target_label and out["rows"][0]["verification"]["match"] == "yes"
    assert [r["verification"]["match"] for r in out["rows"][1:]] == ["no"] * 5
    assert {r["verification"]["failed_constraint"] for r in out["rows"][1:]} == {"upper_colors"}
    dets = {d.id: d for s in dataset for d in s.persons.detections}
    assert dets[target_label][contract.VERIFICATION_ATTR]["match"] == "yes"
    assert dets[target_label][contract.VERIFICATION_ATTR]["query"] == query
    again = verify_persons(dataset, query, k=6, crop_folder=folder, base_url=fake.base_url, **FAST_CLIENT)
    assert fake.count() - before == 6 and again["cached"] == 6  # answered from the cache
    assert [r["label_id"] for r in again["rows"]] == [r["label_id"] for r in out["rows"]]
    assert verify_persons(dataset, query, k=6, dry_run=True)["calls"] == 0
    assert dataset.load_run_results(contract.VERIFY_RUN_KEY).cached == 6


def test_verification_under_faults_ends_every_candidate_and_resumes(dataset, attributed, fake, test_root):
    from person_finder.core.search.verify import verify_persons

    folder = os.path.join(test_root, "fused-crops", dataset.name)
    target = list(attributed.values())[0]
    fake.responder = _verifier(fake, target.upper_color)
    fake.hang_s = 1.5
    keys = list(fake.answers)
    plan = {0: ["429", "429"], 1: ["500", "503", "500"], 2: ["timeout", "timeout", "timeout"], 3: ["malformed"],
            4: ["malformed", "malformed", "malformed"]}
    for i, faults in plan.items():
        fake.faults[keys[i]] = list(faults)
    query = f"a {target.upper_color} top"
    out = verify_persons(dataset, query, k=6, crop_folder=folder, base_url=fake.base_url,
                         **{**FAST_CLIENT, "timeout_s": 0.5})
    assert out["verified"] == 3 and out["failed"] == 3 and out["rate_limited"] == 2
    ends = [r["verification"] for r in out["rows"]]
    assert all(("match" in v) != ("error" in v) for v in ends)  # each verified xor an error
    errors = sorted(v["error"] for v in ends if "error" in v)
    assert any("503" in e or "500" in e for e in errors) and all("after 3 attempts" in e for e in errors)
    assert [r["verification"].get("match") for r in out["rows"]][-1] in ("no", None)
    before = fake.count()
    again = verify_persons(dataset, query, k=6, crop_folder=folder, base_url=fake.base_url, **FAST_CLIENT)
    assert fake.count() - before == 3 and again["cached"] == 3 and again["verified"] == 3  # only the failed
    assert all("match" in r["verification"] for r in again["rows"])


def test_verification_refusal_stops_and_keeps_the_finished(dataset, attributed, fake, test_root, caplog):
    from person_finder.core.attributes.gemini import GeminiRequestRefused
    from person_finder.core.search.verify import verify_persons

    folder = os.path.join(test_root, "fused-crops", dataset.name)
    fake.responder = _verifier(fake, "red")
    fake.faults["*"] = [None, None, "403"]
    with pytest.raises(GeminiRequestRefused, match="GEMINI_API_KEY") as err:
        verify_persons(dataset, "red top", k=6, crop_folder=folder, base_url=fake.base_url, concurrency=1,
                       **FAST_CLIENT)
    assert TEST_API_KEY not in str(err.value) and TEST_API_KEY not in caplog.text
    written = [v for v in dataset.values(f"persons.detections.{contract.VERIFICATION_ATTR}", unwind=True) if v]
    assert sum("match" in v for v in written) == 2
    assert dataset.load_run_results(contract.VERIFY_RUN_KEY).stopped.startswith("Gemini refused")
    assert TEST_API_KEY not in json.dumps(dataset.load_run_results(contract.VERIFY_RUN_KEY).serialize(), default=str)


def test_verify_operator_shows_the_cost_then_verifies(dataset, attributed, fake, monkeypatch):
    from fiftyone.operators.executor import ExecutionContext

    uri = f"{contract.PLUGIN_NAME}/verify_persons"
    target_label, target = list(attributed.items())[1]
    fake.responder = _verifier(fake, target.upper_color)
    monkeypatch.setenv(contract.GEMINI_SECRET, TEST_API_KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
    query = f"a {target.upper_color} top"
    ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": {"query": query, "k": 4}},
                           operator_uri=uri, required_secrets=[contract.GEMINI_SECRET])
    form = foo.get_operator(uri).resolve_input(ctx).to_json()["type"]["properties"]
    assert "At most 4 Gemini calls" in form["estimate"]["view"]["label"] and "no_key" not in form
    assert form["constraints"]["default"] == f"upper_colors={target.upper_color}"
    before = fake.count()
    dry = foo.execute_operator(uri, ctx=dict(view=dataset.view(), params={"query": query, "k": 4, "dry_run": True}))
    assert dry.result["calls"] == 4 and fake.count() == before
    out = foo.execute_operator(uri, ctx=dict(view=dataset.view(), params={"query": query, "k": 6})).result
    assert out["yes"] == 1 and out["no"] == 5 and "1 yes" in out["message"]
    assert dataset.load_run_results(contract.VERIFY_RUN_KEY).verified == 6


def test_many_ranked_people_read_their_attributes_in_one_pass(dataset, attributed, monkeypatch):
    from person_finder.core import defaults

    target = next(iter(attributed.values()))
    constraints = {"upper_colors": target.upper_color}
    by_ids = rank_persons(dataset, "a person", k=None, constraints=constraints)
    monkeypatch.setattr(defaults, "ATTRIBUTE_LOOKUP_BY_ID_MAX", 1)
    assert rank_persons(dataset, "a person", k=None, constraints=constraints) == by_ids
    assert by_ids[0]["attribute_score"] == 1.0
