"""The fine-tune and evaluate operators through foo.execute_operator, immediate and delegated, on a real dataset."""

import os

import fiftyone.operators as foo
import pytest

from person_finder.core import contract, defaults
from person_finder.core.models.matcher import matcher_info
from person_finder.core.training.evaluation import load_evaluation
from person_finder.testing import synthetic
from person_finder.testing.people_training import write_people_dataset

URI = contract.PLUGIN_NAME + "/"


@pytest.fixture(scope="module")
def people(test_root):
    ds = write_people_dataset(f"training-ops-{os.getpid()}", os.path.join(test_root, "training-ops"),
                              synthetic.random_specs(12, seed=9), images=3)
    yield ds
    ds.delete()


def _form(name, dataset, **params):
    from fiftyone.operators.executor import ExecutionContext

    ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": params}, operator_uri=URI + name)
    return foo.get_operator(URI + name).resolve_input(ctx).to_json()["type"]["properties"]


def test_forms_read_the_shared_defaults(people):
    form = _form("finetune_matcher", people)
    assert form["base_model"]["default"] == defaults.MATCHER_MODEL
    assert form["epochs"]["default"] == defaults.TRAIN_EPOCHS and form["delegate"]["default"] is False  # stock App: cannot schedule
    evaluate = _form("evaluate_matchers", people)
    assert evaluate["target_precision"]["default"] == defaults.CALIBRATION_TARGET_PRECISION


def test_delegated_finetune_then_evaluation_table(people, tiny_siglip, finetuned_siglip, tmp_path):
    from fiftyone.operators.delegated import DelegatedOperationService
    from fiftyone.operators.executor import ExecutionRunState

    out = str(tmp_path / "model")
    queued = foo.execute_operator(URI + "finetune_matcher", ctx=dict(
        view=people.view(), request_delegation=True,
        params=dict(output_dir=out, base_model=tiny_siglip, epochs=1, batch_size=4, learning_rate=1e-3,
                    val_fraction=0.34)))
    service = DelegatedOperationService()
    service.execute_queued_operations(operator=URI + "finetune_matcher", dataset_name=people.name)
    doc = service.get(queued.result["id"])
    assert doc.run_state == ExecutionRunState.COMPLETED, doc.result.error
    assert doc.status.progress == 1.0
    assert doc.result.result["model_dir"] == out and doc.result.result["epochs_run"] == 1
    people.reload()
    assert people.has_run(contract.TRAIN_RUN_KEY)

    result = foo.execute_operator(URI + "evaluate_matchers", ctx=dict(
        view=people.view(), params=dict(zero_shot=tiny_siglip, finetuned=finetuned_siglip, delegate=False)))
    rows = result.result["rows"]
    assert [r["model"] for r in rows] == ["zero-shot", "fine-tuned"]
    assert rows[1]["mAP"] > rows[0]["mAP"]
    assert {trace["name"] for trace in result.result["plot"]} == {"zero-shot", "fine-tuned"}
    stored = load_evaluation(people)
    assert stored[1]["mAP"] == rows[1]["mAP"] and stored[1]["calibrated_on"] == "val"
    assert 0.0 <= stored[1]["recall"] <= 1.0

    # the App shows both: the evaluation table and the fine-tuning curves (the "Matcher training" panel)
    history = people.load_run_results(contract.TRAIN_RUN_KEY).history
    panel, ctx = _panel_loaded(people)
    data = ctx.panel.data._data
    assert [r["model"] for r in data["evaluation"]] == ["zero-shot", "fine-tuned"]
    assert [data["evaluation"][1][k] for k in ("rank1", "mAP", "mINP")] == [
        f"{rows[1][k]:.3f}" for k in ("rank1", "mAP", "mINP")]
    loss, val_map, *_ = data["curve_0"]
    assert (loss["name"], loss["x"], loss["y"]) == ("training loss", [1], [history[0]["loss"]])
    assert (val_map["name"], val_map["y"], val_map["yaxis"]) == ("validation mAP", [history[0]["val_mAP"]], "y2")
    layout = panel.render(ctx).to_json()["type"]["properties"]
    columns = [c["label"] for c in layout["evaluation"]["view"]["columns"]]
    assert columns[:6] == ["matcher", "Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"]
    # what the fine-tuned matcher's zero-shot attributes are worth: 6 val images are too few to measure, so the
    # kit's measurement (on its validation people) stays, and the table names its best attributes
    from person_finder.core.attributes.zero_shot import stored_reliability

    assert len(people.match_tags(contract.VAL_TAG)) < defaults.ZERO_SHOT_RELIABILITY_MIN_LABELLED
    reliability = stored_reliability(finetuned_siglip)
    assert "validation people" in matcher_info(finetuned_siglip)[contract.ATTRIBUTE_RELIABILITY_KEY]["measured_on"]
    best = max(reliability, key=reliability.get)
    assert columns[-1] == "zero-shot attributes it sees" and data["evaluation"][0]["attribute_reliability"] == ""
    assert data["evaluation"][1]["attribute_reliability"].startswith(f"{best} {reliability[best]:.2f}")
    assert "matcher_finetune" in str(layout["run_0"]) and out in str(layout["run_0"])


def _panel_loaded(dataset):
    """The "Matcher training" panel as the App loads it on ``dataset``: ``(panel, ctx)``."""
    from fiftyone.operators.executor import ExecutionContext, Executor

    from person_finder.panels.matcher_training import MatcherTrainingPanel

    panel = MatcherTrainingPanel()
    ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": {
        "panel_id": "panel-1", "panel_state": {}}}, executor=Executor())
    panel.on_load(ctx)
    return panel, ctx


def test_the_training_panel_without_runs_says_what_to_run(dataset):
    panel, ctx = _panel_loaded(dataset)
    layout = panel.render(ctx).to_json()["type"]["properties"]
    assert "No matcher evaluated or fine-tuned yet" in str(layout["nothing"]) and "evaluation" not in layout


def test_evaluation_refuses_a_dataset_without_gallery(people):
    with pytest.raises(Exception, match="gallery"):
        foo.execute_operator(URI + "evaluate_matchers", ctx=dict(
            view=people.match_tags("train"), params=dict(zero_shot="x", delegate=False))).raise_exceptions()
