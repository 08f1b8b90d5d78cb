"""The built wheel, installed (not editable) in a fresh virtual environment, is the whole product.

Every other test runs against the editable checkout, so a module, a zoo
manifest or a plugin file missing from the wheel would go unnoticed. The
fresh environment borrows the already installed dependencies (torch,
FiftyOne ...) through a ``.pth`` path, but not the editable checkout.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig

from conftest import REPO_ROOT

IMPORT_EVERY_MODULE = """
import importlib, json, os, pkgutil
import person_finder
root = os.path.dirname(person_finder.__file__)
names = [m.name for m in pkgutil.walk_packages([root], "person_finder.")]
for name in names:
    importlib.import_module(name)
from person_finder.core.models import zoo
print(json.dumps({"root": root, "modules": names,
                  "manifest": os.path.isfile(os.path.join(zoo.SOURCE_DIR, "manifest.json")),
                  "plugin_files": sorted(f for f in os.listdir(root) if f.endswith((".yml", ".md", ".txt")))}))
"""

RUN_AN_OPERATOR = """
import json, sys
import fiftyone as fo
import fiftyone.operators as foo
result = foo.execute_operator("@openset-reid/person-finder/import_market1501",
                              params=dict(market_dir=sys.argv[1], dataset_name=sys.argv[2], delegate=False))
dataset = fo.load_dataset(sys.argv[2])
print(json.dumps({"added": result.result["added"], "samples": len(dataset),
                  "tags": dataset.count_sample_tags(), "module": foo.get_operator(
                      "@openset-reid/person-finder/import_market1501").__class__.__module__}))
"""


def _fresh_environment(root):
    """A venv with the wheel installed and the current environment's dependencies on its path."""
    source, wheels = os.path.join(root, "source"), os.path.join(root, "wheels")
    # built from a copy: setuptools leaves build/ behind, which must not land in the checkout
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "test-artifacts", "demo_output"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels,
                    source], check=True, capture_output=True, timeout=300)
    venv = os.path.join(root, "venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = os.path.join(venv, "bin", "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(site, "borrowed-dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")  # a plain path: its editable-install hooks do not run
    wheel = os.path.join(wheels, next(w for w in os.listdir(wheels) if w.endswith(".whl")))
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel],
                   check=True, capture_output=True, timeout=300)
    return python, site


def _shipped_modules():
    """Every module of the checkout's product packages (all but the test kit), as ``person_finder.*`` names."""
    for folder, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("testing", "tests", "bench", "scripts")]
        if "__init__.py" not in files:
            dirs[:] = []
            continue
        relative = os.path.relpath(folder, REPO_ROOT)
        package = "person_finder" + ("" if relative == "." else "." + relative.replace(os.sep, "."))
        yield from (f"{package}.{f[:-3]}" for f in files if f.endswith(".py") and f != "__init__.py")


def test_wheel_installs_imports_everything_and_runs_an_operator(tmp_path, market_folder, test_root):
    python, site = _fresh_environment(str(tmp_path))
    env = {**os.environ, "PYTHONPATH": ""}

    out = subprocess.run([python, "-c", IMPORT_EVERY_MODULE], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path), timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["root"] == os.path.join(site, "person_finder"), "imported the checkout, not the wheel"
    expected = set(_shipped_modules())
    assert expected <= set(report["modules"]), f"missing from the wheel (pyproject.toml's packages?): " \
                                               f"{sorted(expected - set(report['modules']))}"
    assert not any(m.startswith("person_finder.testing") for m in report["modules"]), "the test kit ships"
    assert report["manifest"], "zoo/manifest.json is missing from the wheel"
    assert report["plugin_files"] == ["README.md", "fiftyone.yml", "requirements.txt"]

    plugins = tmp_path / "plugins" / "@openset-reid"
    plugins.mkdir(parents=True)
    os.symlink(report["root"], plugins / "person-finder")
    out = subprocess.run([python, "-c", RUN_AN_OPERATOR, market_folder.root, "packaged-market"], capture_output=True,
                         text=True, env={**env, "FIFTYONE_PLUGINS_DIR": str(tmp_path / "plugins")},
                         cwd=str(tmp_path), timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["added"] == result["samples"] == len(market_folder.files)
    assert {"train", "query", "gallery"} <= set(result["tags"])
    import fiftyone as fo

    fo.delete_dataset("packaged-market")
