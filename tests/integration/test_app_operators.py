"""What the App and the SDK get from the operators: execution mode, validation before scheduling, readable results,
and what a search leaves on the dataset (its record, declared score fields, match colours)."""

import os

import pytest

import fiftyone.operators as foo
from fiftyone.operators.executor import ExecutionContext

from person_finder.core import contract, defaults
from person_finder.core.jobs import recent_jobs
from person_finder.core.search import index_persons, last_search, search_persons
from person_finder.operators.base import NO_SCHEDULING_WARNING
from person_finder.testing import synthetic

URI = contract.PLUGIN_NAME + "/"
INDEX = URI + "index_persons"
QUERY = "red top and blue trousers"


@pytest.fixture()
def scenes(dataset, test_root):
    specs = synthetic.random_specs(5, seed=21)
    made = synthetic.write_scenes(os.path.join(test_root, "app-operators", dataset.name), [specs[:3], specs[3:]],
                                  width=320, height=180, seed=3)
    dataset.add_samples([scene.to_sample() for scene in made])
    return dataset


def _form(dataset, uri=INDEX, **params):
    ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": params}, operator_uri=uri)
    return foo.get_operator(uri).resolve_input(ctx).to_json()["type"]["properties"]


def _options(dataset, uri=INDEX, request_delegation=False, **params):
    """What the App asks before it draws the Execute / Schedule button."""
    ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": params,
                                           "request_delegation": request_delegation}, operator_uri=uri)
    operator = foo.get_operator(uri)
    return operator.resolve_execution_options(ctx).to_dict(), operator.resolve_delegation(ctx)


def test_sdk_runs_immediately_unless_delegation_is_requested(scenes, tiny_siglip):
    params = {"matcher": tiny_siglip, "detections_field": "ground_truth"}
    result = foo.execute_operator(INDEX, ctx=dict(view=scenes.view(), params=params)).result
    assert result["persons"] == 5 and "queued" not in str(result).lower()
    assert result["message"] == "5 people in 2 of 2 images indexed (index `person_index`)"

    for request in ({"request_delegation": True, "params": params}, {"params": {**params, "delegate": True}}):
        queued = foo.execute_operator(INDEX, ctx=dict(view=scenes.view(), **request))
        assert queued.delegated, request
    assert [j["state"] for j in recent_jobs(scenes, INDEX)] == ["queued", "queued"]


def test_the_form_defaults_to_what_this_app_can_run(scenes, monkeypatch):
    import fiftyone as fo

    monkeypatch.setattr(fo.config, "allow_legacy_orchestrators", False)
    form = _form(scenes)
    assert form["delegate"]["default"] is False and "no_scheduling" not in form
    options, forced = _options(scenes, delegate=False)
    assert forced is False and options["allow_immediate_execution"]  # the App shows Execute
    ticked = _form(scenes, delegate=True)
    assert NO_SCHEDULING_WARNING in str(ticked["no_scheduling"])
    assert "FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true" in NO_SCHEDULING_WARNING and "Untick" in NO_SCHEDULING_WARNING

    monkeypatch.setattr(fo.config, "allow_legacy_orchestrators", True)
    form = _form(scenes)
    assert form["delegate"]["default"] is True and "no_scheduling" not in form
    options, forced = _options(scenes, delegate=True)
    assert forced is True and options["allow_delegated_execution"] and not options["orchestrator_registration_enabled"]
    # quick operators never delegate
    assert _options(scenes, URI + "search_persons", request_delegation=True)[1] is False


def test_paths_that_cannot_work_are_rejected_before_scheduling(scenes, tmp_path):
    missing = str(tmp_path / "no-such-model")
    form = _form(scenes, matcher=missing, detector="weights/none.pt")
    assert form["matcher"]["invalid"] and missing in form["matcher"]["error_message"]
    assert form["detector"]["invalid"]
    assert not _form(scenes, matcher=defaults.MATCHER_MODEL, detector=defaults.DETECTOR_MODEL)["matcher"].get("invalid")
    with pytest.raises(Exception, match="no such file or folder"):
        foo.execute_operator(INDEX, ctx=dict(view=scenes.view(), request_delegation=True,
                                             params={"matcher": missing, "delegate": True}))
    assert recent_jobs(scenes, INDEX) == []  # nothing was scheduled


def test_a_failed_delegated_job_is_reported(scenes, tmp_path):
    from fiftyone.operators.delegated import DelegatedOperationService

    bad = str(tmp_path / "deleted-later")
    os.makedirs(bad)
    foo.execute_operator(INDEX, ctx=dict(view=scenes.view(), params={"matcher": bad, "delegate": True,
                                                                     "detections_field": "ground_truth"}))
    os.rmdir(bad)  # gone by the time the worker runs it
    DelegatedOperationService().execute_queued_operations(operator=INDEX, dataset_name=scenes.name)
    (job,) = recent_jobs(scenes, INDEX)
    assert job["state"] == "failed" and "deleted-later" in job["error"]


def test_a_search_records_itself_declares_scores_and_colours_matches(scenes, tiny_siglip):
    index_persons(scenes, matcher=tiny_siglip, detections_field="ground_truth")
    out = foo.execute_operator(URI + "search_persons", ctx=dict(view=scenes.view(), params={
        "query": QUERY, "threshold": -1.0})).result
    record = last_search(scenes)
    assert (record["query"], record["threshold"], record["threshold_type"]) == (QUERY, -1.0, "cosine")
    assert record["matches"] == record["people"] == 5 and record["labels"] == "persons"
    assert out["message"].startswith(f"5 people labelled `match` for *{QUERY}*")
    for attr in ("similarity", "probability"):
        assert scenes.get_field(f"persons.detections.{attr}") is not None  # filterable in the sidebar
    assert scenes.bounds("persons.detections.similarity")[0] is not None

    search_persons(scenes, "a person with a black backpack", threshold=1.0)
    assert last_search(scenes)["matches"] == 0 and scenes.count_values("persons.detections.label") == {"person": 5}
    scheme = scenes.app_config.color_scheme
    (ours,) = [f for f in scheme.fields if f["path"] == "persons"]
    assert {v["value"]: v["color"] for v in ours["valueColors"]} == {
        contract.MATCH_LABEL: defaults.MATCH_COLOR, contract.PERSON_LABEL: defaults.OTHER_PERSON_COLOR}
    assert scheme.color_by == "value"
