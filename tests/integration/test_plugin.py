"""The plugin installs, registers cheaply, and its operators run through FiftyOne's own machinery."""

import http.server
import os
import shutil
import threading
import zipfile

import pytest

from conftest import REPO_ROOT

HEAVY = ("torch", "transformers", "ultralytics", "google.genai", "sklearn", "cv2", "peft", "accelerate")

MEASURE_IMPORTS = """
import json, sys
import fiftyone as fo, fiftyone.operators, fiftyone.plugins
import fiftyone.plugins.context as fopc
before = set(sys.modules)
ctx = fopc.PluginContext(next(p for p in fiftyone.plugins.list_plugins() if p.name == "@openset-reid/person-finder"))
ctx.register_all()
print(json.dumps({"errors": ctx.errors, "operators": [o.name for o in ctx.instances],
                  "new": sorted(set(sys.modules) - before)}))
"""


def test_registering_the_plugin_imports_no_heavy_library(run_python):
    import json

    out = json.loads(run_python(MEASURE_IMPORTS).strip().splitlines()[-1])
    assert out["errors"] == []
    assert "build_text_index" in out["operators"]
    added = [m for m in out["new"] if m.split(".")[0] in {h.split(".")[0] for h in HEAVY} or m.startswith("google.genai")]
    assert added == [], f"registering the plugin imported {added}"


@pytest.fixture()
def served_zip(test_root):
    """The repository as a zip archive served on 127.0.0.1, like a GitHub release."""
    archive = os.path.join(test_root, "person-finder.zip")
    with zipfile.ZipFile(archive, "w") as zf:
        for folder, dirs, files in os.walk(REPO_ROOT):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "test-artifacts")]
            for name in files:
                path = os.path.join(folder, name)
                zf.write(path, os.path.join("person-finder-main", os.path.relpath(path, REPO_ROOT)))
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=test_root, **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/person-finder.zip"
    server.shutdown()


def test_download_from_zip_then_run_an_operator(served_zip, test_root, tiny_siglip, run_python, fiftyone_cli):
    plugins_dir = os.path.join(test_root, "downloaded-plugins")
    shutil.rmtree(plugins_dir, ignore_errors=True)
    env = {"FIFTYONE_PLUGINS_DIR": plugins_dir}
    fiftyone_cli("plugins", "download", served_zip, env=env)
    assert "@openset-reid/person-finder" in fiftyone_cli("plugins", "list", env=env)
    installed = [root for root, _, files in os.walk(plugins_dir) if "fiftyone.yml" in files]
    assert len(installed) == 1 and os.path.isfile(os.path.join(installed[0], "core", "models", "matcher.py"))
    out = run_python(f"""
import fiftyone as fo, fiftyone.operators as foo
from person_finder.testing import synthetic
ds = fo.Dataset()
for i, spec in enumerate(synthetic.random_specs(3)):
    path = {test_root!r} + f"/zip-crop-{{i}}.jpg"
    synthetic.render_crop(spec, seed=i).save(path)
    ds.add_sample(fo.Sample(filepath=path))
result = foo.execute_operator("@openset-reid/person-finder/build_text_index", ctx=dict(view=ds.view(),
    params=dict(brain_key="crops", matcher={tiny_siglip!r}, delegate=False)))
print(result.result["indexed"], ds.list_brain_runs())
""", env=env)
    assert out.strip().splitlines()[-1] == "3 ['crops']"
