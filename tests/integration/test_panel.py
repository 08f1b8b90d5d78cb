"""The person-search panel as the App drives it: events through a real ExecutionContext, App calls recorded."""

import os

import pytest

from fiftyone.operators.executor import ExecutionContext, Executor

from person_finder.core import contract

from person_finder.core.search import panel_data
from person_finder.testing import synthetic
from person_finder.core.search import index_persons, last_search, rank_persons
from person_finder.panels.person_search import PersonSearchPanel

QUERY = "red top and blue trousers"


def _ctx(dataset, state=None, view=None, **params):
    """What the App sends for one panel event; ``ctx.executor._requests`` records the App operations."""
    return ExecutionContext(request_params={"dataset_name": dataset.name, "view": view or [], "params": {
        "panel_id": "panel-1", "panel_state": state or {}, **params}}, executor=Executor())


def _view_changed(panel, dataset, opened):
    """The App loaded the view ``opened`` set: the panel's on_change_view event, in that view."""
    changed = _ctx(dataset, opened.panel.state._data, view=_calls(opened)["set_view"]["view"])
    panel.on_change_view(changed)
    return changed


def _calls(ctx):
    return {r.operator_uri.split("/")[-1]: r.params for r in ctx.executor._requests}


def _search(panel, dataset, query, state=None, k=3):
    ctx = _ctx(dataset, state)
    panel.on_load(ctx)
    ctx.panel.state.set({"form.query": query, "form.k": k})
    panel.on_search(ctx)
    return ctx


@pytest.fixture()
def scenes(dataset, test_root, tiny_siglip):
    specs = synthetic.random_specs(5, seed=11)
    scenes = synthetic.write_scenes(os.path.join(test_root, "panel-ui", dataset.name), [specs[:3], specs[3:]],
                                    width=480, height=270, seed=2)
    dataset.add_samples([scene.to_sample() for scene in scenes])
    return dataset


def test_without_index_the_panel_offers_the_index_operator(scenes):
    panel = PersonSearchPanel()
    ctx = _ctx(scenes)
    panel.on_load(ctx)
    layout = panel.render(ctx).to_json()["type"]["properties"]
    assert "No person index" in str(layout["no_index"])
    assert "on_index" in str(layout["index"]["view"])
    assert "form" not in layout
    prompted = _ctx(scenes)
    panel.on_index(prompted)
    prompt = _calls(prompted)["prompt_user_for_operation"]
    assert prompt["operator_uri"] == contract.PANEL_INDEX_OPERATOR and "on_load" in prompt["on_success"]


def test_search_ranks_stores_recent_and_opens_results(scenes, tiny_siglip):
    index_persons(scenes, matcher=tiny_siglip, detections_field="ground_truth")
    panel = PersonSearchPanel()
    ctx = _search(panel, scenes, QUERY)
    state = ctx.panel.state._data
    expected = rank_persons(scenes, QUERY, k=3)
    assert state["ranked"] == 3 and state["error"] is None and state["recent"][0] == QUERY
    assert panel_data.recent_queries(scenes)[0] == QUERY
    data = ctx.panel.data._data
    assert [data["results"][f"r{i + 1}"]["caption"].split("·")[1].strip() for i in range(3)] == [
        f"{r['similarity']:.3f}" for r in expected]
    assert all(data["results"][f"r{i + 1}"]["crop"].startswith("data:image/jpeg") for i in range(3))
    assert data["histogram"][0]["type"] == "bar" and sum(data["histogram"][0]["y"]) == 5
    # the crops travel as panel data; the state stays small
    assert len(str(state)) < 2000

    layout = panel.render(ctx).to_json()["type"]["properties"]
    assert set(layout["results"]["type"]["properties"]) == {"r1", "r2", "r3"}

    # the grid's labels are this query's: the panel's matches are the dataset's `match` labels
    above = int(state["summary"].split("**")[1])
    assert scenes.count_values("persons.detections.label").get(contract.MATCH_LABEL, 0) == above
    assert QUERY in state["labels"] and last_search(scenes)["query"] == QUERY

    # a click sets the view first; the sample opens with the person selected once the App has that view
    opened = _ctx(scenes, state, rank=2)
    panel.on_open(opened)
    calls = _calls(opened)
    assert [s["_cls"].split(".")[-1] for s in calls["set_view"]["view"]] == ["Select"]
    assert "open_sample" not in calls and "set_selected_labels" not in calls
    assert calls["set_active_fields"]["fields"] == ["persons"]
    changed = _calls(_view_changed(panel, scenes, opened))
    assert changed["open_sample"]["id"] == expected[1]["sample_id"]
    assert changed["set_selected_labels"]["labels"][0]["label_id"] == expected[1]["label_id"]

    shown = _ctx(scenes, state)
    panel.on_show_all(shown)
    stages = [s["_cls"].split(".")[-1] for s in _calls(shown)["set_view"]["view"]]
    assert "ToPatches" in stages

    bad = _search(panel, scenes, "   ")
    assert "non-empty" in bad.panel.state._data["error"] and bad.panel.state._data["summary"] is None


def test_video_result_opens_the_clip_of_its_track(dataset, test_root, tiny_siglip):
    truth = synthetic.write_video(os.path.join(test_root, "panel-ui-video", dataset.name, "walk.mp4"),
                                  synthetic.random_specs(2, seed=5), num_frames=24, width=320, height=180, seed=1)
    dataset.add_sample(truth.to_sample())
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    panel = PersonSearchPanel()
    ctx = _search(panel, dataset, QUERY)
    assert "track" in ctx.panel.data._data["results"]["r1"]["caption"]
    opened = _ctx(dataset, ctx.panel.state._data, rank=1)
    panel.on_open(opened)
    calls = _calls(opened)
    stages = [s["_cls"].split(".")[-1] for s in calls["set_view"]["view"]]
    assert stages[-2:] == ["ToClips", "FilterLabels"]  # only the track's boxes in its clip
    assert "open_sample" not in calls  # a clip id does not exist before the App has the clips view
    changed = _view_changed(panel, dataset, opened)
    clip_id = _calls(changed)["open_sample"]["id"]
    clip = changed.view[clip_id]
    track = rank_persons(dataset, QUERY, k=1)[0]["track_id"]
    assert {i for f in clip.frames.values() for i in [d.index for d in f.persons.detections]} == {track}
    assert f"Track {track} of walk.mp4" in _calls(changed)["notify"]["message"]


def test_more_like_this_on_a_result_card(dataset, test_root, finetuned_siglip):
    from person_finder.testing.people_training import held_out_specs

    scenes = synthetic.write_recurring_scenes(os.path.join(test_root, "panel-ui-like", dataset.name),
                                              held_out_specs())
    dataset.add_samples([scene.to_sample() for scene in scenes])
    index_persons(dataset, matcher=finetuned_siglip, detections_field="ground_truth")
    who = synthetic.scene_people(dataset, scenes)
    panel = PersonSearchPanel()
    ctx = _search(panel, dataset, QUERY, k=len(who))
    layout = panel.render(ctx).to_json()["type"]["properties"]["results"]["type"]["properties"]
    assert "on_more_like_this" in str(layout["r1"]["type"]["properties"]["like"]["view"])
    text_rows = rank_persons(dataset, QUERY, k=None)
    rank = next(i + 1 for i, r in enumerate(text_rows) if who[r["label_id"]] == 0)  # in three of the images
    example = text_rows[rank - 1]

    liked = _ctx(dataset, ctx.panel.state._data, rank=rank)
    panel.on_more_like_this(liked)
    state, data = liked.panel.state._data, liked.panel.data._data
    assert state["example"] == example["label_id"] and state["searched"].startswith("more like the person of")
    assert state["searched"] in state["summary"] and state["searched"] in state["labels"]  # the grid's labels
    assert state["ranked"] == len(who) - 1 and len(data["results"]) == len(who) - 1  # all but the example
    captions = [data["results"][f"r{i}"]["caption"] for i in range(1, len(who))]
    assert all("p=" not in c for c in captions)  # image-to-image cosines have no SigLIP probability
    calls = _calls(liked)
    assert "reload_samples" in calls and "set_color_scheme" in calls  # the grid is relabelled, as for a text
    assert last_search(dataset)["query"] == state["searched"]

    # opening a card of the example's results opens that person (the example's own person is not listed)
    opened = _ctx(dataset, state, rank=1)
    panel.on_open(opened)
    best = _calls(_view_changed(panel, dataset, opened))["set_selected_labels"]["labels"][0]["label_id"]
    assert best != example["label_id"] and who[best] == 0  # that person's other image first
    # the slider is the text's threshold: it leaves an example's results alone
    moved = _ctx(dataset, {**state, "threshold": 0.5})
    panel.on_threshold(moved)
    assert "set_active_fields" not in _calls(moved) and last_search(dataset)["query"] == state["searched"]
