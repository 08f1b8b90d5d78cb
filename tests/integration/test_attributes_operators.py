"""The attribute operators end to end: generate (Gemini and zero-shot), merge, audit; forms; delegation."""

import os

import pytest

import fiftyone.operators as foo
from person_finder.testing.fake_gemini import FakeGemini, add_people, spec_answer
from person_finder.core import contract, defaults
from person_finder.testing import synthetic

PREFIX = contract.PLUGIN_NAME + "/"
KEY = "AIzaTEST-operator-key-42"


@pytest.fixture()
def gemini_env(monkeypatch):
    """A fake Gemini reached through the plugin secret and google-genai's GOOGLE_GEMINI_BASE_URL."""
    with FakeGemini() as fake:
        monkeypatch.setenv(contract.GEMINI_SECRET, KEY)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
        yield fake


@pytest.fixture()
def market_people(dataset, test_root):
    specs = synthetic.random_specs(3, seed=11)
    keys = add_people(dataset, os.path.join(test_root, "ops", dataset.name), specs, views=3)
    return specs, keys


def run(name, dataset, **params):
    return foo.execute_operator(PREFIX + name, ctx=dict(view=dataset.view(), params={"delegate": False, **params}))


def test_generate_merge_audit_end_to_end_with_gemini(dataset, market_people, gemini_env):
    specs, keys = market_people
    gemini_env.answers.update({k: spec_answer(s) for k, s in keys.items()})
    first = next(iter(keys))
    gemini_env.answers[first] = {**spec_answer(keys[first]), "upper_colors": ["orange"]}  # one view disagrees
    dry = run("generate_person_attributes", dataset, dry_run=True).result
    assert dry["calls"] == 9 and gemini_env.count() == 0
    out = run("generate_person_attributes", dataset, concurrency=4).result
    assert out["attributed"] == 9 and out["failed"] == 0
    assert gemini_env.requests[0]["headers"]["x-goog-api-key"] == KEY
    merged = run("merge_person_attributes", dataset).result
    assert merged["identities"] == 3 and merged["identities_with_conflicts"] == 1
    assert all(d is not None for d in dataset.values(contract.DESCRIPTION_FIELD))
    per_view = run("audit_person_attributes", dataset).result
    consensus = run("audit_person_attributes", dataset, field=contract.MERGED_ATTRIBUTES_FIELD).result
    assert consensus["mean_accuracy"] == 1.0 > per_view["mean_accuracy"]  # the merge outvoted the wrong view
    assert {r["attribute"] for r in consensus["rows"]} >= {"backpack", "bag", "handbag", "upblack", "downbrown"}
    again = run("generate_person_attributes", dataset).result
    assert again["todo"] == 0  # nothing left to do


def test_merge_can_rewrite_descriptions_with_gemini(dataset, market_people, gemini_env):
    specs, keys = market_people
    gemini_env.answers.update({k: spec_answer(s) for k, s in keys.items()})
    run("generate_person_attributes", dataset)
    out = run("merge_person_attributes", dataset, rewrite=True).result
    assert out["rewrite_failures"] == 0
    texts = set(dataset.values(contract.DESCRIPTION_FIELD))
    assert len(texts) == 3 and all(t.startswith("rewritten: a ") for t in texts)


def test_zero_shot_provider_through_the_operator(dataset, market_people, tiny_siglip, monkeypatch):
    monkeypatch.delenv(contract.GEMINI_SECRET, raising=False)
    out = run("generate_person_attributes", dataset, provider="zero-shot", matcher=tiny_siglip).result
    assert out["attributed"] == 9
    assert dataset.first()["attributes"]["provider"] == "zero-shot"
    assert run("audit_person_attributes", dataset).result["samples"] == 9


def test_bad_input_is_refused_before_touching_the_dataset(dataset, market_people, gemini_env):
    with pytest.raises(Exception, match="views_per_call"):
        run("generate_person_attributes", dataset, views_per_call=0)
    with pytest.raises(Exception, match="provider"):
        run("generate_person_attributes", dataset, provider="gpt")
    with pytest.raises(Exception, match="not found"):
        run("merge_person_attributes", dataset)  # no attributes yet
    assert not dataset.has_field(contract.ATTRIBUTES_ERROR_FIELD) and gemini_env.count() == 0


def _form(name, dataset, **params):
    from fiftyone.operators.executor import ExecutionContext

    ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": params},
                           operator_uri=PREFIX + name, required_secrets=[contract.GEMINI_SECRET])
    return foo.get_operator(PREFIX + name).resolve_input(ctx).to_json()["type"]["properties"]


def test_forms_read_the_defaults_and_warn_without_a_key(dataset, market_people, monkeypatch):
    monkeypatch.delenv(contract.GEMINI_SECRET, raising=False)
    form = _form("generate_person_attributes", dataset)
    assert form["model"]["default"] == defaults.GEMINI_MODEL
    assert form["concurrency"]["default"] == defaults.GEMINI_CONCURRENCY
    assert form["include_sensitive"]["default"] is False and form["delegate"]["default"] is False  # stock App: cannot schedule
    assert "no_key" in form
    monkeypatch.setenv(contract.GEMINI_SECRET, KEY)
    assert "no_key" not in _form("generate_person_attributes", dataset)
    assert "matcher" in _form("generate_person_attributes", dataset, provider="zero-shot")
    merge = _form("merge_person_attributes", dataset)
    assert merge["group_field"]["default"] == contract.PERSON_ID_FIELD and merge["delegate"]["default"] is False


def test_delegated_generation_reports_progress(dataset, market_people, gemini_env):
    from fiftyone.operators.delegated import DelegatedOperationService
    from fiftyone.operators.executor import ExecutionRunState

    queued = foo.execute_operator(PREFIX + "generate_person_attributes", ctx=dict(
        view=dataset.view(), request_delegation=True, params={"delegate": True}))
    service = DelegatedOperationService()
    service.execute_queued_operations(operator=PREFIX + "generate_person_attributes", dataset_name=dataset.name)
    doc = service.get(queued.result["id"])
    assert doc.run_state == ExecutionRunState.COMPLETED, doc.result.error
    assert doc.status.progress == 1.0
    assert doc.result.result["attributed"] == 9
    dataset.reload()
    assert len(dataset.exists(contract.ATTRIBUTES_FIELD)) == 9
