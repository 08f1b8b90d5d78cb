"""The panel's attribute chips in a real browser: parsed from the query, clicked off, the ranking follows."""

import os

from person_finder.core import contract
from person_finder.core.identities.attributes import attribute_persons
from person_finder.core.search import last_search
from person_finder.testing import synthetic

from browser.app import BROWSER_TEST_MARKS, AppServer, chromium_page, open_dataset, open_panel

pytestmark = BROWSER_TEST_MARKS

QUERY = "a person in a red top, no backpack"
RESULTS_TIMEOUT_MS = 180_000  # the App's first query loads the matcher in the server process


def test_chips_are_shown_and_toggle_the_constraints(dataset, test_root, tiny_siglip, artifacts_dir, monkeypatch):
    monkeypatch.delenv(contract.GEMINI_SECRET, raising=False)  # the offline parse
    dataset.persistent = True
    specs = synthetic.random_specs(4, seed=4)
    synthetic.add_indexed_scenes(dataset, os.path.join(test_root, "chips-scenes", dataset.name), [specs[:2], specs[2:]],
                                 tiny_siglip, width=480, height=270, seed=0)
    attribute_persons(dataset, provider="zero-shot", min_confidence=0.0)
    log_dir = os.path.join(test_root, "chips-app-logs")
    os.makedirs(log_dir, exist_ok=True)
    with AppServer(dataset.name, log_dir) as app, chromium_page(height=1300) as page:
        open_dataset(page, app)
        panel = open_panel(page, "person_search")
        query = panel.locator("input[type=string]").first
        query.wait_for()
        query.fill(QUERY)
        page.wait_for_timeout(1_500)  # the App debounces field edits into the panel state
        panel.get_by_role("button", name="Search", exact=True).click()
        chip = panel.get_by_role("button", name="upper_colors=red")
        chip.wait_for(timeout=RESULTS_TIMEOUT_MS)
        assert panel.get_by_role("button", name="backpack=no").count() == 1
        panel.locator('img[alt="rank 4"]').wait_for(timeout=RESULTS_TIMEOUT_MS)
        panel.screenshot(path=os.path.join(artifacts_dir, "panel-chips.png"))
        assert last_search(dataset)["constraints"] == {"upper_colors": "red", "backpack": "no"}
        assert "contained" in chip.get_attribute("class")

        chip.click()  # switched off: the search runs again without it
        for _ in range(120):
            if last_search(dataset)["constraints"] == {"backpack": "no"}:
                break
            page.wait_for_timeout(500)
        assert last_search(dataset)["constraints"] == {"backpack": "no"}
        page.wait_for_function("() => [...document.querySelectorAll('button')].some(b => b.innerText === "
                               "'upper_colors=red' && b.className.includes('outlined'))", timeout=30_000)
        panel.screenshot(path=os.path.join(artifacts_dir, "panel-chip-off.png"))
        errors = [e for e in page.console_errors if "ERR_NAME_NOT_RESOLVED" not in e]
        assert not [e for e in errors if "person_search" in e or "Traceback" in e], errors
