"""Optional ONNX Runtime path for the person detector and the matcher's image tower.

One option, ``runtime`` (``"torch"`` or ``"onnx"``), picks the engine:
:func:`with_runtime` turns a loaded matcher or detector into its ONNX
Runtime twin, exporting once and caching the export by a hash of the
weights. The detector is exported with Ultralytics' own exporter, the image
tower with ``torch.onnx``; text queries stay on PyTorch (one forward per
query). Results agree with PyTorch within ``defaults.ONNX_*_TOLERANCE``
(tests/test_scale_onnx.py); the speed-up on this CPU is in bench/onnx_runtime.py.

Example::

    from person_finder.core import onnx
    from person_finder.core.models.matcher import load_matcher
    from person_finder.core.models.detector import load_detector
    matcher = onnx.with_runtime(load_matcher("google/siglip-base-patch16-224"), "onnx")
    detector = onnx.with_runtime(load_detector("/models/yolo26n.pt"), "onnx")
    crops = matcher.embed_images(images)            # ONNX Runtime
    texts = matcher.embed_texts(["a man in a red jacket"])   # PyTorch
"""

from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np

from . import defaults
from .models.detector import PersonDetector, load_detector, preserve_torch_threads
from .models.matcher import ImageTextMatcher


def validate_runtime(runtime):
    """The runtime name, or a ValueError naming the allowed ones."""
    if runtime not in defaults.INFERENCE_RUNTIMES:
        raise ValueError(f"runtime {runtime!r} is not supported; use one of {defaults.INFERENCE_RUNTIMES}")
    return runtime


def cache_dir(folder=None):
    """Folder of the ONNX exports: ``folder``, ``defaults.ONNX_CACHE_DIR`` or the FiftyOne model zoo dir."""
    if folder is None:
        folder = defaults.ONNX_CACHE_DIR
    if folder is None:
        import fiftyone as fo

        folder = os.path.join(fo.config.model_zoo_dir, "person-finder-onnx")
    os.makedirs(folder, exist_ok=True)
    return folder


def with_runtime(model, runtime=defaults.INFERENCE_RUNTIME, folder=None):
    """``model`` (an ImageTextMatcher or PersonDetector) as is for "torch", or its ONNX Runtime twin for "onnx".

    Example::

        detector = with_runtime(load_detector("yolo.pt"), runtime="onnx")
    """
    validate_runtime(runtime)
    if runtime == "torch" or isinstance(model, OnnxImageTextMatcher):
        return model
    if isinstance(model, ImageTextMatcher):
        return OnnxImageTextMatcher(model, export_image_tower(model, folder))
    if isinstance(model, PersonDetector):
        if model.weights.endswith(".onnx"):
            return model
        return load_detector(export_detector(model, folder), confidence=model.confidence,
                             image_size=model.image_size, device="cpu", person_class=model.person_class)
    raise TypeError(f"with_runtime() takes an ImageTextMatcher or a PersonDetector, not {type(model).__name__}")


def _hash_file(path):
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def export_detector(detector, folder=None):
    """Export a PersonDetector's YOLO weights to ONNX (dynamic batch) with Ultralytics; returns the .onnx path."""
    source = str(getattr(detector.yolo, "ckpt_path", None) or detector.weights)
    target = os.path.join(cache_dir(folder), f"detector-{_hash_file(source)}-{detector.image_size}")
    onnx_path = os.path.join(target, "model.onnx")
    if not os.path.exists(onnx_path):
        from ultralytics import YOLO

        os.makedirs(target, exist_ok=True)
        copy = shutil.copy(source, os.path.join(target, "model" + os.path.splitext(source)[1]))
        with preserve_torch_threads():
            exported = YOLO(copy, task="detect").export(format="onnx", imgsz=detector.image_size, dynamic=True,
                                                        simplify=False, opset=defaults.ONNX_OPSET, device="cpu")
        if os.path.abspath(exported) != onnx_path:
            shutil.move(exported, onnx_path)
    return onnx_path


def _tower_hash(matcher):
    digest = hashlib.sha1(str(matcher.model_type).encode())
    pixel_size = _pixel_size(matcher)
    digest.update(repr(pixel_size).encode())
    for name, tensor in sorted(matcher.model.state_dict().items()):
        if name.startswith(("vision_model.", "visual_projection.")):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def _pixel_size(matcher):
    pixels = matcher.image_inputs([np.zeros((8, 8, 3), dtype=np.uint8)])["pixel_values"]
    return tuple(pixels.shape[1:])


def _image_tower(model):
    """The exported graph: pixels -> unit image embeddings (torch is imported lazily, hence the local class)."""
    import torch

    from .models.matcher import _features

    class ImageTower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            features = _features(self.model.get_image_features(pixel_values=pixel_values))
            return torch.nn.functional.normalize(features.float(), dim=-1)

    return ImageTower().eval()


def export_image_tower(matcher, folder=None):
    """Export the matcher's image tower (pixels -> unit embeddings, dynamic batch) with torch.onnx; returns the path."""
    import torch

    onnx_path = os.path.join(cache_dir(folder), f"image-tower-{_tower_hash(matcher)}.onnx")
    if not os.path.exists(onnx_path):
        example = torch.zeros((2, *_pixel_size(matcher)), dtype=torch.float32)
        model = matcher.model.float().to("cpu")
        tmp = onnx_path + f".{os.getpid()}.tmp"
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(_image_tower(model), (example,), tmp, input_names=["pixel_values"],
                              output_names=["embeddings"], opset_version=defaults.ONNX_OPSET, dynamo=False,
                              dynamic_axes={"pixel_values": {0: "batch"}, "embeddings": {0: "batch"}})
        os.replace(tmp, onnx_path)  # atomic: workers sharing the cache never read a half-written file
        model.to(matcher.device)
    return onnx_path


class OnnxImageTextMatcher(ImageTextMatcher):
    """An ImageTextMatcher whose ``embed_images`` runs on ONNX Runtime (texts stay on PyTorch)."""

    def __init__(self, matcher, onnx_path):
        super().__init__(matcher.model, matcher.processor, matcher.name_or_path, matcher.device, matcher.batch_size)
        import onnxruntime as ort
        import torch

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.onnx_path = onnx_path
        self.session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])

    def embed_images(self, images, batch_size=None):
        """Embed RGB images into unit vectors with ONNX Runtime, ``batch_size`` at a time."""
        batch_size = batch_size or self.batch_size
        out = [
            self.session.run(None, {"pixel_values": self.image_inputs(images[start:start + batch_size])
                                    ["pixel_values"].numpy().astype(np.float32)})[0]
            for start in range(0, len(images), batch_size)
        ]
        if not out:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)
