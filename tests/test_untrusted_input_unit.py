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
