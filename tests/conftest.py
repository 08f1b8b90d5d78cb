"""Test environment shared by every layer: an isolated plugin / zoo dir, offline models, synthetic data.

Layers: ``tests/unit`` needs no database (run it alone: ``./run_tests.sh tests/unit``, seconds);
``tests/integration`` and ``tests/app`` get FiftyOne's own mongod, started before their first
test (:func:`pytest_runtest_setup`). The database address is fixed here, before fiftyone is imported, so a
unit test that touches MongoDB fails instead of finding one; nothing touches the internet.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_ROOT = tempfile.mkdtemp(prefix="person-finder-tests-")
PLUGINS_DIR = os.path.join(TEST_ROOT, "plugins")
ARTIFACTS_DIR = os.environ.get("PERSON_FINDER_TEST_ARTIFACTS", os.path.join(REPO_ROOT, "test-artifacts"))


def _configure_environment():
    from person_finder.testing.mongo import free_port

    os.makedirs(os.path.join(PLUGINS_DIR, "@openset-reid"), exist_ok=True)
    os.symlink(REPO_ROOT, os.path.join(PLUGINS_DIR, "@openset-reid", "person-finder"))
    os.environ.update({
        "FIFTYONE_DATABASE_URI": f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=5000",
        "PERSON_FINDER_TEST_DB": os.path.join(TEST_ROOT, "db"),
        "FIFTYONE_PLUGINS_DIR": PLUGINS_DIR,
        "FIFTYONE_MODEL_ZOO_DIR": os.path.join(TEST_ROOT, "zoo"),
        "FIFTYONE_DATASET_ZOO_DIR": os.path.join(TEST_ROOT, "dataset-zoo"),
        "FIFTYONE_DEFAULT_DATASET_DIR": os.path.join(TEST_ROOT, "datasets"),
        "FIFTYONE_DO_NOT_TRACK": "true",
        "FIFTYONE_SHOW_PROGRESS_BARS": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": os.path.join(TEST_ROOT, "hf"),
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "false",
        "YOLO_CONFIG_DIR": os.path.join(TEST_ROOT, "ultralytics"),
        "MPLBACKEND": "Agg",
        "TOKENIZERS_PARALLELISM": "false",
    })
    # atexit runs last-registered first: FiftyOne's own cleanup, then mongod's stop, then this removal
    atexit.register(shutil.rmtree, TEST_ROOT, ignore_errors=True)


_configure_environment()
UNIT_TESTS = os.path.join(REPO_ROOT, "tests", "unit")


def pytest_runtest_setup(item):
    """Integration and App tests get the session's mongod, started before their first fixture."""
    if not str(item.path).startswith(UNIT_TESTS + os.sep):
        from person_finder.testing.mongo import start_reserved_mongod

        start_reserved_mongod(os.environ["PERSON_FINDER_TEST_DB"])


@pytest.fixture(scope="session")
def test_root():
    return TEST_ROOT


@pytest.fixture(scope="session")
def artifacts_dir():
    os.makedirs(ARTIFACTS_DIR, exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def tiny_siglip():
    """Folder of a tiny random SigLIP saved like a hub checkpoint."""
    from person_finder.testing.tiny_models import make_tiny_siglip

    return make_tiny_siglip(os.path.join(TEST_ROOT, "models", "tiny-siglip"))


@pytest.fixture(scope="session")
def tiny_clip():
    """Folder of a tiny random CLIP (no logit bias), saved like a hub checkpoint."""
    from person_finder.testing.tiny_models import make_tiny_clip

    return make_tiny_clip(os.path.join(TEST_ROOT, "models", "tiny-clip"))


@pytest.fixture(scope="session")
def tiny_dinov2():
    from person_finder.testing.tiny_models import make_tiny_dinov2

    return make_tiny_dinov2(os.path.join(TEST_ROOT, "models", "tiny-dinov2"))


@pytest.fixture(scope="session")
def tiny_yolo():
    from person_finder.testing.tiny_models import make_tiny_yolo

    return make_tiny_yolo(os.path.join(TEST_ROOT, "models", "tiny-yolo", "yolo.pt"))


@pytest.fixture(scope="session")
def matcher(tiny_siglip):
    from person_finder.core.models.matcher import load_matcher

    return load_matcher(tiny_siglip, device="cpu")


@pytest.fixture(scope="session")
def market_folder():
    """A Market-1501 style folder with planted near-duplicates, distractors and junk."""
    from person_finder.testing.synthetic import write_market_folder

    return write_market_folder(os.path.join(TEST_ROOT, "market"), num_train=6, num_test=6,
                               images_per_camera=2, cameras=(1, 2, 3), duplicates_per_identity=1, seed=0)


@pytest.fixture(scope="session")
def market_attribute_file(market_folder):
    """``market_attribute.mat`` of the synthetic Market folder, written with the product's own writer."""
    from person_finder.core.curation.market import write_market_attributes
    from person_finder.testing import synthetic

    train_ids = {info["person_id"] for info in market_folder.files.values() if info["split"] == "train"}
    parts = {"train": {}, "test": {}}
    for pid, spec in market_folder.specs.items():
        parts["train" if pid in train_ids else "test"][pid] = synthetic.market_attributes(spec)
    return write_market_attributes(os.path.join(TEST_ROOT, "market_attribute.mat"), parts)


@pytest.fixture(scope="session")
def small_items():
    """(train, held-out) PersonItems of synthetic people: 6 identities x 4 views, 2 x 2."""
    from person_finder.testing import synthetic
    from person_finder.testing.people_training import person_items

    specs = synthetic.random_specs(8, seed=3)
    return person_items(specs[:6], 0, 4), person_items(specs[6:], 100, 2, seed=1)


@pytest.fixture(scope="session")
def run_python():
    """Run Python code in a fresh process with this session's environment; returns stdout."""

    def run(code, timeout=300, env=None):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, cwd=TEST_ROOT)
        if proc.returncode != 0:
            raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    return run


@pytest.fixture(scope="session")
def fiftyone_cli():
    """Run the ``fiftyone`` command of this environment; returns stdout (asserts it succeeded)."""

    def run(*args, env=None):
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "fiftyone"), *args], capture_output=True,
                              text=True, env={**os.environ, **(env or {})}, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return run


@pytest.fixture(scope="session")
def finetuned_siglip():
    """Folder of a tiny SigLIP fine-tuned (core.training) on synthetic people: texts such as
    "red top and blue trousers" or ``describe(spec)`` rank that person's crops first, also for
    people it never saw (see testing/people_training.py for the recipe and held-out specs)."""
    from person_finder.testing.people_training import finetune_tiny_siglip

    return finetune_tiny_siglip(os.path.join(TEST_ROOT, "models", "finetuned-siglip"))


@pytest.fixture()
def dataset(request):
    """An empty, uniquely named dataset, deleted after the test (integration and App layers)."""
    import fiftyone as fo

    ds = fo.Dataset(f"test-{request.node.name[:40]}-{os.getpid()}-{id(request)}")
    yield ds
    if fo.dataset_exists(ds.name):
        ds.delete()


@pytest.fixture()
def fake():
    """A fake Gemini server on 127.0.0.1 (testing/fake_gemini.py), stopped after the test."""
    from person_finder.testing.fake_gemini import FakeGemini

    with FakeGemini() as server:
        yield server
