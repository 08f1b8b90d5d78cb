"""Start the FiftyOne App headless on 127.0.0.1 and drive it with the system Chromium.

Example::

    with AppServer("my-dataset") as app, chromium_page() as page:
        page.goto(app.dataset_url)
        open_panel(page, "person_search")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
#: Generous: the App server imports fiftyone and loads every plugin on 2 busy cores.
START_TIMEOUT_S = 180
START_ATTEMPTS = 3
#: Every browser test's marks: skipped on a developer machine without Chromium; in CI (CI=true) a missing one fails.
BROWSER_TEST_MARKS = [pytest.mark.browser, pytest.mark.slow,
                      pytest.mark.skipif(not os.path.exists("/usr/bin/chromium") and not shutil.which("chromium")
                                         and os.environ.get("CI") != "true",
                                         reason="needs Debian's chromium (apt install chromium)")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_tree(proc):
    """Stop the App CLI and everything it started (the App server runs as a grandchild in its own group)."""
    import psutil

    try:
        parent = psutil.Process(proc.pid)
        family = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(family, timeout=15)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=10)


class AppServer:
    """The App on 127.0.0.1 started as users start it, retried on a new port if it does not come up.

    ``mode="session"``: ``fiftyone app launch NAME --remote`` (a Python session
    in the CLI process, whose client follows the App's events);
    ``mode="server"``: the App server alone (``python -m fiftyone.server.main``).
    Inherits this process's environment (FIFTYONE_DATABASE_URI, FIFTYONE_PLUGINS_DIR, ...) plus ``env``.
    """

    MODES = ("session", "server")

    def __init__(self, dataset_name, log_dir, env=None, mode="session"):
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.dataset_name = dataset_name
        self.log_dir = log_dir
        self.env = {**os.environ, **(env or {})}
        self.mode = mode
        self.proc = None
        self.port = None
        self.log_path = None

    def _command(self):
        if self.mode == "server":
            return [sys.executable, "-m", "fiftyone.server.main", "--port", str(self.port), "--address", "127.0.0.1"]
        return [os.path.join(os.path.dirname(sys.executable), "fiftyone"), "app", "launch", self.dataset_name,
                "--remote", "--port", str(self.port), "--address", "127.0.0.1", "--wait", "-1"]

    def log(self):
        """What the App process printed so far (a Python session reports its reconnects here)."""
        with open(self.log_path) as f:
            return f.read()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def dataset_url(self):
        return f"{self.url}/datasets/{self.dataset_name}"

    def __enter__(self):
        errors = []
        for attempt in range(START_ATTEMPTS):
            self.port = free_port()
            self.log_path = os.path.join(self.log_dir, f"app-{self.mode}-{attempt}.log")
            with open(self.log_path, "w") as log:
                self.proc = subprocess.Popen(self._command(), env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)
            if self._wait_until_up():
                return self
            errors.append(f"attempt {attempt + 1} (port {self.port}): see {self.log_path}")
            _kill_tree(self.proc)
        raise RuntimeError("the FiftyOne App did not start: " + "; ".join(errors))

    def _wait_until_up(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return True
            time.sleep(1)
        return False

    def __exit__(self, *exc):
        if self.proc is not None:
            _kill_tree(self.proc)


@contextlib.contextmanager
def chromium_page(width=1400, height=900):
    """A Playwright page in Debian's Chromium (never a downloaded browser); console errors collected."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            page.console_errors = []
            page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
            yield page
        finally:
            browser.close()


def open_dataset(page, app, attempts=3):
    """Load the App on ``app``'s dataset; retried because the first load can time out on a cold server."""
    for attempt in range(attempts):
        try:
            page.goto(app.dataset_url, timeout=120_000)
            page.wait_for_selector("[data-cy=new-panel-btn]", timeout=120_000)
            break
        except Exception:  # noqa: BLE001 - playwright timeouts; the last one is raised
            if attempt == attempts - 1:
                raise
    dismiss_popups(page)


def dismiss_popups(page):
    """Close the App's promotional popover if it shows (it covers the panel tabs)."""
    with contextlib.suppress(Exception):
        page.get_by_text("Dismiss", exact=True).first.click(timeout=5_000)


def open_panel(page, name):
    """Open the Python panel ``name`` from the App's "new panel" menu (unless a restored layout has it)."""
    content = page.locator(f"[data-cy=panel-content-{name}]")
    if not content.count():
        page.locator("[data-cy=new-panel-btn]").first.click()
        page.click(f"[data-cy=new-panel-option-{name}]")
    content.wait_for(state="visible")
    return content


@contextlib.contextmanager
def delegated_worker(log_path, env=None):
    """A ``fiftyone delegated launch`` worker (its own process, this environment plus ``env``), stopped on exit."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "fiftyone"), "delegated", "launch"],
                                env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        _kill_tree(proc)


def open_operator(page, label):
    """Open an operator's form from the App's operator browser (the backtick key), as a user does."""
    page.keyboard.press("`")
    page.get_by_placeholder("Search operations by name...").wait_for()
    page.keyboard.type(label)
    page.get_by_text(label, exact=False).first.wait_for()
    page.keyboard.press("Enter")


def form_field(page, label):
    """The operator form's field whose label is ``label`` (its input, checkbox or dropdown inside)."""
    return page.locator("div.MuiGrid-item", has=page.get_by_text(label, exact=True)).last


class Steps:
    """Numbered screenshots of a walk through the App, saved under ``folder``: ``steps.shot(page, "indexed")``."""

    def __init__(self, folder, prefix):
        self.folder, self.prefix, self.count = folder, prefix, 0
        os.makedirs(folder, exist_ok=True)

    def shot(self, target, name, settle_ms=800):
        self.count += 1
        page = getattr(target, "page", target)
        page.wait_for_timeout(settle_ms)
        path = os.path.join(self.folder, f"{self.prefix}-{self.count:02d}-{name}.png")
        target.screenshot(path=path)
        return path
