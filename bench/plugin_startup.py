"""What registering Person Finder adds to the App server's start, and which libraries it imports.

The App server builds every plugin's context on start
(``fiftyone.plugins.context.build_plugin_contexts``). This times that call in
fresh processes with a plugins folder that holds only this plugin, against
the same call with an empty plugins folder (median of several runs each),
and lists the heavy libraries the plugin's registration imports.

    .venv/bin/python bench/plugin_startup.py      # about a minute
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _report  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("torch", "transformers", "ultralytics", "google.genai", "sklearn", "cv2", "peft", "accelerate",
         "onnxruntime", "lancedb")
RUNS = 7

MEASURE = """
import json, sys, time
import fiftyone as fo, fiftyone.operators, fiftyone.plugins.context as fopc
before = set(sys.modules)
t = time.perf_counter()
contexts = fopc.build_plugin_contexts(enabled=True)
ms = (time.perf_counter() - t) * 1000
print(json.dumps({"ms": ms, "errors": [e for c in contexts for e in c.errors],
                  "operators": sum(len(c.instances) for c in contexts), "new": sorted(set(sys.modules) - before)}))
"""


def _run(plugins_dir, db_uri):
    env = {**os.environ, "FIFTYONE_PLUGINS_DIR": plugins_dir, "FIFTYONE_DATABASE_URI": db_uri,
           "FIFTYONE_DO_NOT_TRACK": "true"}
    out = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    from person_finder.testing.mongo import start_private_mongod

    root = tempfile.mkdtemp(prefix="bench-startup-")
    db_uri = start_private_mongod(os.path.join(root, "db"))
    empty, ours = os.path.join(root, "empty"), os.path.join(root, "plugins")
    os.makedirs(empty)
    os.makedirs(os.path.join(ours, "@openset-reid"))
    os.symlink(REPO, os.path.join(ours, "@openset-reid", "person-finder"))
    _run(ours, db_uri)  # warm the OS file cache for both
    base, with_plugin = [], []
    for _ in range(RUNS):
        base.append(_run(empty, db_uri)["ms"])
        result = _run(ours, db_uri)
        with_plugin.append(result["ms"])
    assert not result["errors"], result["errors"]
    heavy = sorted({m for m in result["new"] if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}
                    and (m.split(".")[0] != "google" or m.startswith("google.genai"))})
    added = float(np.median(with_plugin) - np.median(base))
    figures = [
        _report.figure("plugin registration adds to App server start (median)", round(added, 1), "ms", ("<", 150)),
        _report.figure("heavy libraries imported by registration", len(heavy), "", ("<=", 0), note=", ".join(heavy)),
        _report.figure("operators registered", result["operators"], ""),
    ]
    return _report.write("plugin_startup", figures, {"runs": RUNS, "baseline_ms": base, "with_plugin_ms": with_plugin,
                                                     "modules_imported": len(result["new"]), "heavy": heavy})


if __name__ == "__main__":
    main()
