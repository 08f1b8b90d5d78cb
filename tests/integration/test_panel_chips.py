"""The panel's attribute chips, verified badges and verification prompt, driven as the App drives the panel."""

import os

import pytest
from fiftyone.operators.executor import ExecutionContext, Executor

from person_finder.core import contract
from person_finder.core.identities.attributes import attribute_persons
from person_finder.core.search import rank_persons
from person_finder.core.search.verify import verify_persons
from person_finder.panels.person_search import PersonSearchPanel
from person_finder.testing import synthetic
from person_finder.testing.fake_gemini import FAST_CLIENT

QUERY = "a person in a red top, no backpack"


def _ctx(dataset, state=None, **params):
    return ExecutionContext(request_params={"dataset_name": dataset.name, "view": [], "params": {
        "panel_id": "panel-1", "panel_state": state or {}, **params}}, executor=Executor())


def _captions(ctx):
    results = ctx.panel.data._data["results"]
    return [results[f"r{i + 1}"]["caption"] for i in range(len(results))]


@pytest.fixture()
def attributed(dataset, test_root, tiny_siglip, monkeypatch):
    monkeypatch.delenv(contract.GEMINI_SECRET, raising=False)  # the chips come from the offline parse
    specs = synthetic.random_specs(5, seed=11)
    synthetic.add_indexed_scenes(dataset, os.path.join(test_root, "panel-chips", dataset.name), [specs[:3], specs[3:]],
                                 tiny_siglip, width=480, height=270, seed=2)
    attribute_persons(dataset, provider="zero-shot", min_confidence=0.0)
    return dataset


def test_chips_show_the_parse_toggle_and_rerank(attributed):
    panel = PersonSearchPanel()
    ctx = _ctx(attributed)
    panel.on_load(ctx)
    ctx.panel.state.set({"form.query": QUERY, "form.k": 5})
    panel.on_search(ctx)
    state = ctx.panel.state._data
    assert state["chips"] == {"upper_colors": {"value": "red", "on": True}, "backpack": {"value": "no", "on": True}}
    both = rank_persons(attributed, QUERY, k=5, constraints={"upper_colors": "red", "backpack": "no"})
    assert [c.split("·")[1].strip() for c in _captions(ctx)] == [f"{r['similarity']:.3f}" for r in both]
    layout = panel.render(ctx).to_json()["type"]["properties"]
    chips = layout["chips"]["type"]["properties"]
    assert chips["chip_upper_colors"]["view"]["label"] == "upper_colors=red"
    assert chips["chip_upper_colors"]["view"]["variant"] == "contained"

    toggled = _ctx(attributed, ctx.panel.state._data, field="upper_colors")
    panel.on_chip(toggled)
    assert toggled.panel.state._data["chips"]["upper_colors"]["on"] is False
    only_bag = rank_persons(attributed, QUERY, k=5, constraints={"backpack": "no"})
    assert [c.split("·")[1].strip() for c in _captions(toggled)] == [f"{r['similarity']:.3f}" for r in only_bag]
    off = panel.render(toggled).to_json()["type"]["properties"]["chips"]["type"]["properties"]
    assert off["chip_upper_colors"]["view"]["variant"] == "outlined"
    assert attributed.info[contract.LAST_SEARCH_INFO]["constraints"] == {"backpack": "no"}


def test_verify_button_prompts_with_the_cost_form_and_badges_follow(attributed, fake):
    panel = PersonSearchPanel()
    ctx = _ctx(attributed)
    panel.on_load(ctx)
    ctx.panel.state.set({"form.query": QUERY, "form.k": 3})
    panel.on_search(ctx)
    prompted = _ctx(attributed, ctx.panel.state._data)
    panel.on_verify(prompted)
    request = next(r for r in prompted.executor._requests if r.operator_uri.endswith("prompt_user_for_operation"))
    assert request.params["operator_uri"].endswith("/verify_persons")
    assert request.params["params"]["constraints"] == "upper_colors=red, backpack=no"
    assert request.params["params"]["k"] == 3

    fake.responder = lambda images, text: {"match": "yes"} if "Does the person" in text else None
    verify_persons(attributed, QUERY, k=1, constraints={"upper_colors": "red", "backpack": "no"},
                   base_url=fake.base_url, **FAST_CLIENT)
    again = _ctx(attributed, ctx.panel.state._data)
    panel.on_search(again)
    captions = _captions(again)
    assert "✅ verified" in captions[0] and not any("verified" in c for c in captions[1:])
