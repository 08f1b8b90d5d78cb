"""The person-search panel in a real browser: the App headless on 127.0.0.1, Debian's Chromium via Playwright."""

import os

import pytest


from person_finder.testing import synthetic
from person_finder.core.search import rank_persons

from browser.app import BROWSER_TEST_MARKS, AppServer, chromium_page, open_dataset, open_panel

pytestmark = BROWSER_TEST_MARKS

QUERY = "red top and blue trousers"
RESULTS_TIMEOUT_MS = 180_000  # the App's first query loads the matcher in the server process


@pytest.fixture()
def indexed_scenes(dataset, test_root, tiny_siglip):
    """Three scene images, six people, indexed by the tiny matcher; persistent so the App process sees it."""
    dataset.persistent = True
    specs = synthetic.random_specs(6, seed=4)
    synthetic.add_indexed_scenes(dataset, os.path.join(test_root, "browser-scenes", dataset.name),
                                 [specs[:3], specs[3:5], specs[5:]], tiny_siglip, width=480, height=270, seed=0)
    return dataset


def test_panel_ranks_people_and_opens_the_clicked_one(indexed_scenes, artifacts_dir, test_root):
    expected = rank_persons(indexed_scenes, QUERY, k=None)
    log_dir = os.path.join(test_root, "app-logs")
    os.makedirs(log_dir, exist_ok=True)
    with AppServer(indexed_scenes.name, log_dir) as app, chromium_page(height=1300) as page:
        open_dataset(page, app)
        counts = page.locator("[data-cy=entry-counts]").first
        assert counts.inner_text().startswith("3 samples")
        panel = open_panel(page, "person_search")

        query = panel.locator("input[type=string]").first
        query.wait_for()
        query.fill(QUERY)
        page.wait_for_timeout(1_500)  # the App debounces field edits into the panel state
        panel.get_by_role("button", name="Search", exact=True).click()
        panel.locator(f'img[alt="rank {len(expected)}"]').wait_for(timeout=RESULTS_TIMEOUT_MS)
        page.wait_for_timeout(1_000)
        panel.screenshot(path=os.path.join(artifacts_dir, "panel.png"))
        page.screenshot(path=os.path.join(artifacts_dir, "panel-results.png"))

        # ranked rows, in core's order: rank i shows the i-th best similarity
        text = panel.inner_text()
        shown = [text.index(f"#{i + 1} · {row['similarity']:.3f}") for i, row in enumerate(expected)]
        assert shown == sorted(shown)
        assert f"of {len(expected)} people score at or above" in text
        assert panel.get_by_role("button", name=QUERY).count() == 1  # remembered as a recent query
        crop = panel.locator('img[alt="rank 1"]')
        assert crop.evaluate("img => img.complete && img.naturalHeight") == 128  # a person crop, not the scene

        # clicking rank 2 selects its image and opens it
        crop2 = panel.locator('img[alt="rank 2"]')
        crop2.click()
        page.wait_for_function("() => document.body.innerText.includes('%s')" % expected[1]["sample_id"],
                               timeout=60_000)
        page.wait_for_timeout(1_000)
        page.screenshot(path=os.path.join(artifacts_dir, "panel-opened.png"))
        assert counts.inner_text().startswith("1 sample")
        errors = [e for e in page.console_errors if "ERR_NAME_NOT_RESOLVED" not in e]
        assert not [e for e in errors if "person_search" in e or "Traceback" in e], errors


@pytest.fixture()
def trained_people(test_root, tiny_siglip):
    """A crop dataset with a 3-epoch fine-tuning run and an evaluation of it against its base model."""
    from person_finder.core.training import TrainConfig
    from person_finder.core.training.evaluation import evaluate_matchers
    from person_finder.core.training.finetune import finetune
    from person_finder.testing.people_training import write_people_dataset

    people = write_people_dataset(f"training-panel-{os.getpid()}", os.path.join(test_root, "training-panel"),
                                  synthetic.random_specs(12, seed=9), images=3)
    people.persistent = True
    model = os.path.join(test_root, "training-panel-model")
    finetune(people, model, TrainConfig(base_model=tiny_siglip, epochs=3, batch_size=4, learning_rate=1e-3),
             val_fraction=0.34)
    evaluate_matchers(people, {"zero-shot": tiny_siglip, "fine-tuned": model})
    yield people
    people.delete()


def test_training_panel_shows_the_evaluation_table_and_curves(trained_people, artifacts_dir, test_root):
    from person_finder.core.training.evaluation import load_evaluation

    rows = load_evaluation(trained_people)
    log_dir = os.path.join(test_root, "app-logs")
    os.makedirs(log_dir, exist_ok=True)
    with AppServer(trained_people.name, log_dir, mode="server") as app, chromium_page(height=1100) as page:
        open_dataset(page, app)
        panel = open_panel(page, "matcher_training")
        panel.get_by_text("Rank-1", exact=True).wait_for(timeout=RESULTS_TIMEOUT_MS)
        panel.locator(".js-plotly-plot").first.wait_for()
        page.wait_for_timeout(1_500)
        panel.screenshot(path=os.path.join(artifacts_dir, "training-panel.png"))
        text = panel.inner_text()
        for row in rows:  # one table row per matcher, its metrics as stored
            assert row["model"] in text and f"{row['mAP']:.3f}" in text and f"{row['mINP']:.3f}" in text
        assert "Evaluation, text-to-person retrieval by identity: 6 query texts" in text
        assert "Fine-tuning matcher_finetune: 3 epochs" in text
        legend = panel.locator(".js-plotly-plot .legendtext").all_text_contents()
        assert legend[:2] == ["training loss", "validation mAP"]
        assert panel.locator(".js-plotly-plot .scatterlayer .trace").count() >= 2  # the curves are drawn
