"""ONNX Runtime vs PyTorch on this CPU: YOLOv8n detector at 640 and a SigLIP-B/16 image tower.

Random weights with the real architectures (no downloads): speed depends
on the graph, not on the values. Both runtimes use the same thread count,
the same inputs and the plugin's own code paths (``load_detector`` /
``load_matcher`` and :func:`core.models.onnx.with_runtime`); the ratio is measured
in one run. Agreement is checked too (max |difference|).

    .venv/bin/python bench/onnx_runtime.py      # about 3 minutes (named so it does not shadow the onnx package)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _report  # noqa: E402


def _rate(fn, items, repeats):
    fn(items)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(items)
        times.append(time.perf_counter() - t)
    return len(items) / float(np.median(times))


def siglip_base_folder(folder):
    """A SigLIP with the base-patch16-224 image tower (random weights) and a tiny text side, saved like a checkpoint."""
    from transformers import SiglipConfig, SiglipModel, SiglipProcessor

    from person_finder.testing.tiny_models import make_tiny_siglip

    tiny = make_tiny_siglip(os.path.join(folder, "tiny"))
    processor = SiglipProcessor.from_pretrained(tiny)
    processor.image_processor.size = {"height": 224, "width": 224}
    text = SiglipModel.from_pretrained(tiny).config.text_config.to_dict()
    SiglipModel(SiglipConfig(text_config=text, vision_config={})).save_pretrained(os.path.join(folder, "base"))
    processor.save_pretrained(os.path.join(folder, "base"))
    return os.path.join(folder, "base")


def main():
    import torch

    from person_finder.core.models import onnx
    from person_finder.testing import synthetic, tiny_models
    from person_finder.core.models.detector import load_detector
    from person_finder.core.models.matcher import load_matcher

    torch.set_num_threads(os.cpu_count())
    root = tempfile.mkdtemp(prefix="bench-onnx-")
    cache = os.path.join(root, "cache")
    figures, details = [], {"threads": torch.get_num_threads()}

    specs = synthetic.random_specs(8, seed=0)
    scenes = synthetic.write_scenes(os.path.join(root, "scenes"), [specs[i:i + 2] for i in range(0, 8, 2)], seed=0)
    from PIL import Image

    frames = [np.asarray(Image.open(s.filepath).convert("RGB")) for s in scenes]
    detector = load_detector(tiny_models.make_tiny_yolo(os.path.join(root, "yolov8n.pt")), confidence=0.25,
                             image_size=640, device="cpu")
    t = time.perf_counter()
    fast_detector = onnx.with_runtime(detector, "onnx", folder=cache)
    details["detector_export_s"] = time.perf_counter() - t
    torch_fps = _rate(lambda x: detector.detect(x, batch_size=4), frames, 3)
    onnx_fps = _rate(lambda x: fast_detector.detect(x, batch_size=4), frames, 3)
    figures += [
        _report.figure("YOLOv8n 640, PyTorch", round(torch_fps, 2), "img/s"),
        _report.figure("YOLOv8n 640, ONNX Runtime", round(onnx_fps, 2), "img/s"),
        _report.figure("YOLOv8n speed-up ONNX / PyTorch", round(onnx_fps / torch_fps, 2), "x", (">=", 1.0)),
    ]

    matcher = load_matcher(siglip_base_folder(os.path.join(root, "siglip")), device="cpu", batch_size=8)
    t = time.perf_counter()
    fast_matcher = onnx.with_runtime(matcher, "onnx", folder=cache)
    details["image_tower_export_s"] = time.perf_counter() - t
    crops = [synthetic.render_crop(s, seed=i) for i, s in enumerate(synthetic.random_specs(16, seed=1))]
    torch_cps = _rate(matcher.embed_images, crops, 2)
    onnx_cps = _rate(fast_matcher.embed_images, crops, 2)
    diff = float(np.abs(matcher.embed_images(crops[:4]) - fast_matcher.embed_images(crops[:4])).max())
    from person_finder.core import defaults

    figures += [
        _report.figure("SigLIP-B/16 image tower, PyTorch", round(torch_cps, 2), "crops/s"),
        _report.figure("SigLIP-B/16 image tower, ONNX Runtime", round(onnx_cps, 2), "crops/s"),
        _report.figure("SigLIP-B/16 speed-up ONNX / PyTorch", round(onnx_cps / torch_cps, 2), "x", (">=", 1.0)),
        _report.figure("SigLIP-B/16 max |embedding difference|", float(f"{diff:.2e}"), "",
                       ("<=", defaults.ONNX_EMBEDDING_TOLERANCE)),
    ]
    return _report.write("onnx_runtime", figures, details)


if __name__ == "__main__":
    main()
