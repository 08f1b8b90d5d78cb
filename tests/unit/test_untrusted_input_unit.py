"""Untrusted input without a database (issue 17): crafted model files, model paths, bad values, resume."""

import os
import pickle

import pytest

from person_finder.core.models.loading import ModelLoadError


class _Payload:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('code ran')",)


def _evil_checkpoint(path, marker, zipped=True):
    import torch

    payload = {"model": _Payload(marker), "train_args": {}}
    if zipped:
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    return str(path)


@pytest.mark.parametrize("zipped", [True, False], ids=["torch-save", "raw-pickle"])
def test_a_crafted_pt_detector_cannot_run_code(tmp_path, zipped):
    import torch

    from person_finder.core.models.detector import load_detector

    # the file is really malicious: an ordinary full unpickling runs its code
    proof = tmp_path / "proof"
    evil = _evil_checkpoint(tmp_path / "proof.pt", str(proof), zipped)
    if zipped:
        torch.load(evil, weights_only=False)
    else:
        with open(evil, "rb") as f:
            pickle.load(f)
    assert proof.exists()

    marker = tmp_path / "pwned"
    path = _evil_checkpoint(tmp_path / "evil.pt", str(marker), zipped)
    with pytest.raises(ModelLoadError) as info:
        load_detector(path, device="cpu")
    assert not marker.exists(), "loading the detector ran code from the .pt file"
    message = str(info.value)
    assert "evil.pt" in message and "weights_only=True" in message and ".onnx" in message and ".yaml" in message


def test_a_crafted_yaml_detector_config_cannot_run_code(tmp_path):
    import yaml

    from person_finder.core.models.detector import load_detector

    marker = tmp_path / "pwned"
    config = {"nc": 80, "activation": f"exec(\"open({str(marker)!r}, 'w').write('x')\") or nn.SiLU()",
              "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [32, 3, 2]], [-1, 1, "Conv", [64, 3, 2]]],
              "head": [[[0, 1, 2], 1, "Detect", ["nc"]]]}
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ModelLoadError, match="evil.yaml"):
        load_detector(str(path), device="cpu")
    assert not marker.exists(), "building the detector from a config ran code"


def test_real_detector_files_still_load_and_other_types_are_refused(tiny_yolo, tmp_path):
    import numpy as np

    from person_finder.core.models.detector import load_detector

    detector = load_detector(tiny_yolo, device="cpu")  # an Ultralytics checkpoint passes the restricted loader
    assert detector.detect([np.zeros((64, 64, 3), dtype=np.uint8)])[0].shape[1] == 5
    assert load_detector("yolov8n.yaml", device="cpu").yolo is not None
    script = tmp_path / "model.torchscript"
    script.write_bytes(b"not allowed")
    with pytest.raises(ModelLoadError, match=r"not an accepted detector file; pass a \.pt checkpoint"):
        load_detector(str(script), device="cpu")


def test_model_and_market_path_errors_name_what_was_expected_not_what_the_folder_holds(tmp_path):
    from person_finder.core.curation.market import MarketFormatError, scan_market_folder
    from person_finder.core.models.matcher import load_matcher

    (tmp_path / "id_rsa").write_text("secret")
    (tmp_path / "private-notes").mkdir()
    with pytest.raises(ModelLoadError) as info:
        load_matcher(str(tmp_path), device="cpu")
    assert "config.json" in str(info.value) and "save_pretrained" in str(info.value)
    assert "id_rsa" not in str(info.value) and "private-notes" not in str(info.value)
    with pytest.raises(MarketFormatError) as info:
        scan_market_folder(str(tmp_path))
    assert "bounding_box_train" in str(info.value) and "private-notes" not in str(info.value)


# --- fine-tuning resume from any kill point (item 4) ---------------------------------------------

_TRAIN_SCRIPT = """
import os, signal, sys, threading, time
from person_finder.testing import synthetic
from person_finder.testing.people_training import person_items
from person_finder.core.training import TrainConfig, train_matcher

tiny, out, kill = sys.argv[1], sys.argv[2], sys.argv[3]
specs = synthetic.random_specs(8, seed=3)
train, val = person_items(specs[:6], 0, 4), person_items(specs[6:], 100, 2, seed=1)
config = TrainConfig(base_model=tiny, epochs=3, batch_size=8, learning_rate=1e-3, patience=5, device="cpu")
on_progress = None
if kill == "after-epoch-1":   # epoch 1 is checkpointed; killed as epoch 2 starts
    def on_progress(fraction, label):
        if label.startswith("epoch 2/"):
            os.kill(os.getpid(), signal.SIGKILL)
else:                          # "writing-epoch-N": killed while epoch N's checkpoint is being written
    epoch = "epoch-" + kill.rsplit("-", 1)[1]

    def watch():
        folder = os.path.join(out, "checkpoints")
        while True:
            names = os.listdir(folder) if os.path.isdir(folder) else []
            if any(n.startswith(epoch) and os.listdir(os.path.join(folder, n)) for n in names):
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.0005)
    threading.Thread(target=watch, daemon=True).start()
train_matcher(train, val, out, config, on_progress=on_progress)
print("finished without being killed")
"""


@pytest.fixture(scope="module")
def straight_run(tiny_siglip, tmp_path_factory):
    from person_finder.core.training import TrainConfig, train_matcher
    from person_finder.testing import synthetic
    from person_finder.testing.people_training import person_items

    specs = synthetic.random_specs(8, seed=3)
    train, val = person_items(specs[:6], 0, 4), person_items(specs[6:], 100, 2, seed=1)
    config = TrainConfig(base_model=tiny_siglip, epochs=3, batch_size=8, learning_rate=1e-3, patience=5, device="cpu")
    out = str(tmp_path_factory.mktemp("straight"))
    return train, val, config, train_matcher(train, val, out, config)


def _killed_run(tiny_siglip, out, kill):
    import subprocess
    import sys

    import torch

    # the same intra-op threads as this process (importing Ultralytics sets OMP_NUM_THREADS=1 in os.environ),
    # so float sums run in the same order and the weights can be compared
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.run([sys.executable, "-c", _TRAIN_SCRIPT, tiny_siglip, out, kill], capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == -9, f"the run was not killed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"


def _assert_same_as_straight(straight, resumed):
    import torch

    from person_finder.core.models.matcher import load_matcher

    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    for a, b in zip(straight.history, resumed.history):
        assert a == pytest.approx(b, rel=1e-5)
    w1 = load_matcher(straight.model_dir, device="cpu").model.state_dict()
    w2 = load_matcher(resumed.model_dir, device="cpu").model.state_dict()
    assert all(torch.allclose(w1[k], w2[k], atol=1e-6) for k in w1)


@pytest.mark.parametrize("kill", ["after-epoch-1", "writing-epoch-1", "writing-epoch-2"])
def test_finetune_killed_resumes_to_the_uninterrupted_weights(straight_run, tiny_siglip, tmp_path, kill):
    from person_finder.core.training import train_matcher

    train, val, config, straight = straight_run
    out = str(tmp_path / "killed")
    _killed_run(tiny_siglip, out, kill)
    if kill == "after-epoch-1":
        # what a kill inside epoch 2's checkpoint write leaves, whichever file it stopped at:
        # a staged folder without the loop state, and (as older versions wrote in place) an incomplete epoch-2
        ckpt = os.path.join(out, "checkpoints")
        for name in ("epoch-2.partial", "epoch-2"):
            os.makedirs(os.path.join(ckpt, name))
            with open(os.path.join(ckpt, name, "model.safetensors"), "wb") as f:
                f.write(b"\x00" * 100)
    resumed = train_matcher(train, val, out, config)
    _assert_same_as_straight(straight, resumed)
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["best.pt", "epoch-3"]
    again = train_matcher(train, val, out, config)  # a finished run re-run: nothing trained again
    assert again.history == resumed.history


def test_bad_values_are_caught_by_the_checks_that_run_before_any_write():
    import numpy as np

    from person_finder.core.curation.market import parse_market_name
    from person_finder.core.search.tracking import finite_boxes
    from person_finder.core.search.validation import check_query

    kept, dropped = finite_boxes([[0, 0, 5, 5, 0.9], [np.nan, 0, 5, 5, 0.9], [0, 0, np.inf, 5, 0.9], [0, 0, 5, 5, np.nan]])
    assert kept.tolist() == [[0, 0, 5, 5, pytest.approx(0.9)]] and dropped == 3
    assert parse_market_name(f"{2 ** 70}_c1s1_000001_01.jpg") is None
    assert parse_market_name(f"{2 ** 63 - 1}_c1s1_000001_01.jpg").person_id == 2 ** 63 - 1
    with pytest.raises(ValueError, match="lone UTF-16 surrogate"):
        check_query("red \udc80 top")
    check_query("rote Jacke, café, 赤いジャケット 🧥")  # any real character is fine
