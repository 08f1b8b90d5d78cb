"""The App as a user clicks it, in real Chromium, started the two ways users start it.

1. ``fiftyone app launch`` (a Python session follows the App): operator browser -> index persons with bad
   inputs first (a missing matcher, delegation in a stock App), then from the panel (immediate; result shown,
   panel updates, no page reload) -> panel query (grid labels agree, matches in their colour, scores filterable)
   -> open an image result (the new ``persons`` in the modal, person selected, still open 20 s later) -> threshold, recent query -> more like this on a result
   card (that person's other images first, the grid relabelled) -> show all -> k = 0.
2. The App server alone with scheduling enabled and a ``fiftyone delegated launch`` worker: index a video
   delegated -> the panel reports the job -> query -> open a video result (its track's clip with that track's
   boxes, no error).

Each step saves a screenshot under the artifacts dir (``walk-session-*.png``, ``walk-server-*.png``).
"""

import os
import time

import pytest

from person_finder.core.identities.examples import rank_like
from person_finder.core.search import last_search, rank_persons
from person_finder.testing import synthetic
from person_finder.testing.people_training import held_out_specs

from browser.app import (BROWSER_TEST_MARKS, AppServer, Steps, chromium_page, delegated_worker, form_field,
                         open_dataset, open_operator, open_panel)

pytestmark = BROWSER_TEST_MARKS

QUERY = "red top and blue trousers"
SLOW_MS = 180_000  # the App's first query / index loads the matcher in the server process
STAYS_OPEN_S = 20  # a Python session that failed on an event resets the App about 10 s later


def _red_pixels(path):
    """Pixels of the match colour (pure red) in a screenshot."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 230) & (rgb[..., 1] < 30) & (rgb[..., 2] < 30)).sum())


@pytest.fixture()
def scene_truth(dataset, test_root):
    """Four scene images of four people: one in three images, the others in two."""
    return synthetic.write_recurring_scenes(os.path.join(test_root, "walk-scenes", dataset.name), held_out_specs())


@pytest.fixture()
def scenes(dataset, scene_truth):
    """The scene images with ground-truth boxes, not indexed; persistent for the App process."""
    dataset.persistent = True
    dataset.add_samples([scene.to_sample() for scene in scene_truth])
    return dataset


def test_walk_with_a_python_session(scenes, scene_truth, finetuned_siglip, artifacts_dir, test_root):
    steps = Steps(artifacts_dir, "walk-session")
    logs = os.path.join(test_root, "app-logs")
    os.makedirs(logs, exist_ok=True)
    with AppServer(scenes.name, logs, mode="session") as app, \
            chromium_page(height=1300) as page:
        open_dataset(page, app)
        panel = open_panel(page, "person_search")
        panel.get_by_text("No person index yet").wait_for()
        steps.shot(page, "no-index")

        # operator browser -> index persons; inputs that cannot work are refused in the form
        open_operator(page, "index persons")
        matcher = form_field(page, "Matcher").locator("input")
        matcher.wait_for()
        execute = page.get_by_role("button", name="Execute")
        assert execute.is_visible()  # immediate by default in a stock App
        matcher.fill("/nonexistent/model")
        page.get_by_text("no such file or folder: /nonexistent/model").wait_for()
        steps.shot(page, "bad-matcher")
        delegate = form_field(page, "Delegate execution?").locator("input[type=checkbox]")
        delegate.check()
        warning = page.get_by_text("FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true", exact=False)
        warning.wait_for()
        warning.scroll_into_view_if_needed()
        steps.shot(page, "delegate-not-configured")
        delegate.uncheck()
        execute.wait_for()  # unticking brings Execute back
        page.get_by_role("button", name="Cancel").click()

        # index from the panel: the result is shown and the panel updates by itself
        panel.get_by_role("button", name="Index persons").click()
        matcher.wait_for()
        matcher.fill(finetuned_siglip)  # fine-tuned on synthetic people: "more like this" finds the same person
        form_field(page, "Existing detections").get_by_role("combobox").click()
        page.get_by_role("option", name="ground_truth").click()
        page.wait_for_timeout(1_000)
        execute.click()
        page.get_by_text("9 people in 4 of 4 images indexed").last.wait_for(timeout=SLOW_MS)
        steps.shot(page, "indexed")
        page.get_by_role("button", name="Close").click()
        query = panel.locator("input[type=string]").first
        query.wait_for()
        before = _red_pixels(steps.shot(page, "panel-updated"))  # no page reload from here on

        # panel query: ranked list, grid labelled by the same query, matches in their colour
        query.fill(QUERY)
        page.wait_for_timeout(1_500)  # the App debounces field edits into the panel state
        panel.get_by_role("button", name="Search", exact=True).click()
        scenes.reload()  # the App process indexed it
        expected = rank_persons(scenes, QUERY, k=None)
        panel.locator(f'img[alt="rank {len(expected)}"]').wait_for(timeout=SLOW_MS)
        page.wait_for_timeout(3_000)
        after = _red_pixels(steps.shot(page, "panel-query"))
        text = panel.inner_text()
        shown = [text.index(f"#{i + 1} · {row['similarity']:.3f}") for i, row in enumerate(expected)]
        assert shown == sorted(shown)
        record = last_search(scenes)
        assert record["query"] == QUERY and f"{record['matches']} of 9 people are match" in text.replace("\n", " ")
        assert scenes.count_values("persons.detections.label").get("match", 0) == record["matches"]
        assert os.path.basename(expected[0]["filepath"]) in text  # file names, not ids
        assert record["matches"] == 0 or after > before + 100, (before, after)  # red boxes in the grid
        page.locator("[data-cy=sidebar-field-arrow-enabled-persons]").click()
        page.get_by_text("similarity", exact=True).first.wait_for()  # a declared, filterable field
        steps.shot(page.locator("[data-cy=sidebar]"), "scores-filterable")

        # an image result opens with the person selected, and stays open
        panel.locator('img[alt="rank 2"]').click()
        modal = page.locator("[data-cy=modal]")
        modal.wait_for(timeout=60_000)
        page.wait_for_timeout(STAYS_OPEN_S * 1_000)
        assert modal.is_visible(), app.log()
        assert "Could not connect session" not in app.log()
        assert page.locator("[data-cy=entry-counts]").first.inner_text().startswith("1 sample")
        # the modal has the `persons` field added after the page loaded, drawn, with the person selected
        modal.locator("[data-cy=sidebar-field-persons]").wait_for()
        assert modal.locator("[data-cy=action-manage-selected]").inner_text().strip() == "1"
        steps.shot(page, "image-result-20s-later")
        page.mouse.click(5, 1290)  # the backdrop outside the modal closes it
        modal.wait_for(state="hidden")

        # threshold, recent query, show all
        slider = panel.locator(".MuiSlider-root").first.bounding_box()
        page.mouse.click(slider["x"] + slider["width"] / 2, slider["y"] + slider["height"] / 2)  # about 0.0
        page.wait_for_function("() => /at or above -?0\\.0[0-2]0/.test(document.body.innerText)", timeout=60_000)
        steps.shot(page, "threshold")
        assert last_search(scenes)["threshold"] == pytest.approx(0.0, abs=0.02)  # the grid follows the slider
        panel.get_by_role("button", name=QUERY).click()
        page.wait_for_timeout(3_000)

        # more like this: the person in three images; the panel lists its two other images first
        who = synthetic.scene_people(scenes, scene_truth)
        rank = next(i + 1 for i, row in enumerate(expected) if who[row["label_id"]] == 0)
        panel.get_by_role("button", name="More like this").nth(rank - 1).click()
        name = f"more like the person of {os.path.basename(expected[rank - 1]['filepath'])}"
        page.wait_for_function(f"() => document.body.innerText.includes('for {name}')", timeout=SLOW_MS)
        like = rank_like(scenes, label_id=expected[rank - 1]["label_id"], k=None)
        assert [who[row["label_id"]] for row in like[:2]] == [0, 0]
        panel.locator(f'img[alt="rank {len(like)}"]').wait_for()
        page.wait_for_timeout(2_000)
        steps.shot(page, "more-like-this")
        text = panel.inner_text()
        shown = [text.index(f"#{i + 1} · {row['similarity']:.3f}") for i, row in enumerate(like)]
        assert shown == sorted(shown) and "p=" not in text  # ranked as rank_like ranks; no text probability
        record = last_search(scenes)
        assert record["query"] == name and scenes.count_values("persons.detections.label").get(
            "match", 0) == record["matches"] >= 3  # the grid's labels are the example's: that person's images

        panel.get_by_role("button", name=f"Show all {len(like)} results").click()
        page.wait_for_function(f"() => document.body.innerText.includes('{len(like)} patches')", timeout=60_000)
        steps.shot(page, "show-all")

        # bad input in the panel
        k = panel.locator("input[type=number]").first
        k.fill("0")
        page.wait_for_timeout(1_500)
        panel.get_by_role("button", name="Search", exact=True).click()
        panel.get_by_text("k must be a whole number from 1 to 100, got 0").wait_for()
        steps.shot(page, "bad-k")
        errors = [e for e in page.console_errors if "ERR_NAME_NOT_RESOLVED" not in e]
        assert not [e for e in errors if "person_search" in e or "Traceback" in e], errors


@pytest.fixture()
def video(dataset, test_root):
    """One short H.264 video of two walking people with ground-truth tracks."""
    dataset.persistent = True
    truth = synthetic.write_video(os.path.join(test_root, "walk-video", dataset.name, "walk.mp4"),
                                  synthetic.random_specs(2, seed=5), num_frames=24, width=320, height=180, seed=1)
    dataset.add_sample(truth.to_sample())
    return dataset


def test_walk_with_the_app_server_alone_and_a_worker(video, tiny_siglip, artifacts_dir, test_root):
    from fiftyone.operators.delegated import DelegatedOperationService

    steps = Steps(artifacts_dir, "walk-server")
    scheduling = {"FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS": "true"}
    logs = os.path.join(test_root, "app-logs")
    os.makedirs(logs, exist_ok=True)
    with AppServer(video.name, logs, env=scheduling, mode="server") as app, chromium_page(height=1300) as page:
        open_dataset(page, app)
        open_operator(page, "index persons")
        form_field(page, "Matcher").locator("input").fill(tiny_siglip)
        form_field(page, "Existing detections").get_by_role("combobox").click()
        page.get_by_role("option", name="ground_truth").click()
        assert form_field(page, "Delegate execution?").locator("input[type=checkbox]").is_checked()
        page.wait_for_timeout(1_000)
        page.get_by_role("button", name="Schedule").click()
        page.get_by_text("successfully scheduled", exact=False).wait_for()
        steps.shot(page, "scheduled")
        page.keyboard.press("Escape")

        service = DelegatedOperationService()
        with delegated_worker(os.path.join(logs, "worker.log"), env=scheduling):
            deadline = time.monotonic() + SLOW_MS / 1000
            while time.monotonic() < deadline:
                ops = service.list_operations(dataset_name=video.name)
                if ops and str(ops[0].run_state) in ("completed", "failed"):
                    break
                time.sleep(2)
        assert str(ops[0].run_state) == "completed", ops[0].result

        panel = open_panel(page, "person_search")
        panel.get_by_text("Indexing job completed", exact=False).wait_for()
        assert "tracks" in panel.inner_text() and "in 1 of 1 videos indexed" in panel.inner_text()
        steps.shot(page, "job-reported")

        query = panel.locator("input[type=string]").first
        query.fill(QUERY)
        page.wait_for_timeout(1_500)
        panel.get_by_role("button", name="Search", exact=True).click()
        panel.locator('img[alt="rank 1"]').wait_for(timeout=SLOW_MS)
        video.reload()  # the worker indexed it
        best = rank_persons(video, QUERY, k=1)[0]
        assert f"track {best['track_id']}" in panel.inner_text()
        steps.shot(page, "video-query")

        panel.locator('img[alt="rank 1"]').click()
        modal = page.locator("[data-cy=modal]")
        modal.wait_for(timeout=60_000)
        page.get_by_text(f"Track {best['track_id']} of walk.mp4", exact=False).first.wait_for()
        # the clip draws the track's own boxes: `frames.persons` (indexed after the page loaded) is in the modal
        modal.locator("[data-cy='sidebar-field-frames.persons']").wait_for()
        page.wait_for_timeout(3_000)
        steps.shot(page, "video-clip-opened")
        assert page.get_by_text("not found", exact=False).count() == 0
        assert page.locator("[data-cy=entry-counts]").first.inner_text().startswith("1 clip"), app.log()
