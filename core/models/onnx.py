"""ONNX Runtime paths for the person detector, the matcher's image tower and text queries.

One option, ``runtime`` (``"torch"`` or ``"onnx"``), picks the engine of
indexing: :func:`with_runtime` turns a loaded matcher or detector into its
ONNX Runtime twin, exporting once and caching the export by a hash of the
weights. The detector is exported with Ultralytics' own exporter, the image
tower with ``torch.onnx``. Results agree with PyTorch within
``defaults.ONNX_*_TOLERANCE`` (tests/test_scale_onnx.py); the speed-up on this
CPU is in bench/onnx_runtime.py.

Text queries on CPU go through :func:`query_encoder` (``defaults.QUERY_RUNTIME``):
the text tower exported once and quantized to int8 weights, several times
faster than PyTorch on a CPU for one query, embeddings within
``defaults.ONNX_TEXT_MIN_COSINE`` of PyTorch's.

Example::

    from person_finder.core.models import onnx
    from person_finder.core.models.matcher import load_matcher
    from person_finder.core.models.detector import load_detector
    matcher = onnx.with_runtime(load_matcher("google/siglip-base-patch16-224"), "onnx")
    detector = onnx.with_runtime(load_detector("/models/yolo26n.pt"), "onnx")
    crops = matcher.embed_images(images)            # ONNX Runtime
    texts = onnx.query_encoder(matcher).embed_texts(["a man in a red jacket"])   # int8 text tower
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import warnings

import numpy as np

from .. import defaults
from .detector import PersonDetector, load_detector, load_yolo, preserve_torch_threads
from .embedding import in_batches
from .matcher import ImageTextMatcher

logger = logging.getLogger(__name__)
_TEXT_ENCODERS = {}  # (loaded model, cache folder) -> its OnnxTextEncoder (the latest only)


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
        os.makedirs(target, exist_ok=True)
        copy = shutil.copy(source, os.path.join(target, "model" + os.path.splitext(source)[1]))
        with preserve_torch_threads():
            exported = load_yolo(copy).export(format="onnx", imgsz=detector.image_size, dynamic=True,
                                                        simplify=False, opset=defaults.ONNX_OPSET, device="cpu")
        if os.path.abspath(exported) != onnx_path:
            shutil.move(exported, onnx_path)
    return onnx_path


def _tower_hash(matcher, prefixes, shape):
    """A digest of the tower's weights (parameters whose names start with ``prefixes``) and input shape."""
    digest = hashlib.sha1(str(matcher.model_type).encode())
    digest.update(repr(shape).encode())
    for name, tensor in sorted(matcher.model.state_dict().items()):
        if name.startswith(prefixes):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def _pixel_size(matcher):
    pixels = matcher.image_inputs([np.zeros((8, 8, 3), dtype=np.uint8)])["pixel_values"]
    return tuple(pixels.shape[1:])


def _image_tower(model):
    """The exported graph: pixels -> unit image embeddings (torch is imported lazily, hence the local class)."""
    import torch

    from .embedding import unit_tensor

    class ImageTower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return unit_tensor(self.model.get_image_features(pixel_values=pixel_values))

    return ImageTower().eval()


@contextlib.contextmanager
def _cpu_float32(matcher):
    """The matcher's model on CPU in fp32 for an export; put back on its device and dtype afterwards."""
    model, dtype = matcher.model, matcher.model.dtype
    try:
        yield model.float().to("cpu")
    finally:
        model.to(matcher.device, dtype)


def _export(tower, example, names, onnx_path, dynamic_axes, quantize=False):
    """Export ``tower`` (on CPU, fp32) to ``onnx_path`` once, optionally with int8 weights; returns the path."""
    import torch

    if os.path.exists(onnx_path):
        return onnx_path
    tmp = onnx_path + f".{os.getpid()}.tmp"
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks traced as constants: expected
        torch.onnx.export(tower, example, tmp, input_names=names, output_names=["embeddings"],
                          opset_version=defaults.ONNX_OPSET, dynamo=False, dynamic_axes=dynamic_axes)
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quiet = logging.getLogger()  # the quantizer suggests an optional pre-processing step on the root logger
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            quantize_dynamic(tmp, tmp + ".int8", weight_type=QuantType.QInt8)
        finally:
            quiet.setLevel(level)
        os.replace(tmp + ".int8", tmp)
    os.replace(tmp, onnx_path)  # atomic: workers sharing the cache never read a half-written file
    return onnx_path


def export_image_tower(matcher, folder=None):
    """Export the matcher's image tower (pixels -> unit embeddings, dynamic batch) with torch.onnx; returns the path."""
    import torch

    shape = _pixel_size(matcher)
    onnx_path = os.path.join(cache_dir(folder), "image-tower-"
                             f"{_tower_hash(matcher, ('vision_model.', 'visual_projection.'), shape)}.onnx")
    with _cpu_float32(matcher) as model:
        return _export(_image_tower(model), (torch.zeros((2, *shape), dtype=torch.float32),), ["pixel_values"],
                       onnx_path, {"pixel_values": {0: "batch"}, "embeddings": {0: "batch"}})


def _text_tower(model, names):
    """The exported graph: token ids (and, for CLIP, the attention mask) -> unit text embeddings."""
    import torch

    from .embedding import unit_tensor

    class TextTower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return unit_tensor(self.model.get_text_features(**dict(zip(names, inputs))))

    return TextTower().eval()


def export_text_tower(matcher, folder=None, quantize=defaults.ONNX_TEXT_INT8):
    """Export the matcher's text tower (tokens -> unit embeddings; int8 weights when ``quantize``); returns the path.

    Example::

        path = export_text_tower(load_matcher("google/siglip-base-patch16-224"))
    """
    example = matcher.text_inputs(["a person in a red top", "blue trousers"])
    names = list(example)
    digest = _tower_hash(matcher, ("text_model.", "text_projection."), (names, matcher.text_tokens))
    onnx_path = os.path.join(cache_dir(folder), f"text-tower-{digest}{'-int8' if quantize else ''}.onnx")
    with _cpu_float32(matcher) as model:
        return _export(_text_tower(model, names), tuple(example[n] for n in names), names, onnx_path,
                       {**{n: {0: "batch", 1: "tokens"} for n in names}, "embeddings": {0: "batch"}}, quantize)


def _session(onnx_path):
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])


class OnnxTextEncoder:
    """Embeds text queries like :meth:`ImageTextMatcher.embed_texts`, on ONNX Runtime (see :func:`query_encoder`)."""

    def __init__(self, matcher, onnx_path):
        self.matcher = matcher
        self.onnx_path = onnx_path
        self.session = _session(onnx_path)

    def embed_texts(self, texts, batch_size=None):
        """Embed text queries into unit vectors (the matcher's tokenisation and checks)."""
        if isinstance(texts, str):
            texts = [texts]
        self.matcher.check_texts(texts)
        def forward(batch):
            return self.session.run(None, {name: value.numpy() for name, value in self.matcher.text_inputs(batch).items()})[0]

        return in_batches(texts, batch_size or self.matcher.batch_size, forward, self.matcher.embedding_dim)


def query_encoder(matcher, runtime=None, folder=None):
    """What embeds text queries: the int8 ONNX text tower for ``runtime="onnx"`` on CPU, else ``matcher``.

    ``runtime=None`` reads ``defaults.QUERY_RUNTIME`` at the call, so setting it turns the path on or off.

    The export is cached (see :func:`cache_dir`); if the model cannot be
    exported, a warning is logged and queries stay on PyTorch.

    Example::

        encoder = query_encoder(load_matcher("google/siglip-base-patch16-224"))
        vector = encoder.embed_texts(["red top and blue trousers"])[0]
    """
    runtime = validate_runtime(runtime or defaults.QUERY_RUNTIME)
    if runtime == "torch" or str(matcher.device) != "cpu":
        return matcher
    key = (matcher.model, folder)
    if key not in _TEXT_ENCODERS:  # one export check (a hash of the weights) and session per loaded model
        _TEXT_ENCODERS.clear()  # one at a time, like the matchers: each holds its model
        try:
            _TEXT_ENCODERS[key] = OnnxTextEncoder(matcher, export_text_tower(matcher, folder))
        except Exception as error:  # an architecture torch.onnx cannot trace: slower, still correct
            logger.warning("text queries stay on PyTorch: exporting %s's text tower failed (%s)",
                           matcher.name_or_path, error)
            return matcher
    return _TEXT_ENCODERS[key]


class OnnxImageTextMatcher(ImageTextMatcher):
    """An ImageTextMatcher whose ``embed_images`` runs on ONNX Runtime (see :func:`query_encoder` for texts)."""

    def __init__(self, matcher, onnx_path):
        super().__init__(matcher.model, matcher.processor, matcher.name_or_path, matcher.device, matcher.batch_size)
        self.onnx_path = onnx_path
        self.session = _session(onnx_path)

    def embed_images(self, images, batch_size=None):
        """Embed RGB images into unit vectors with ONNX Runtime, ``batch_size`` at a time."""
        def forward(batch):
            return self.session.run(None, {"pixel_values": self.image_inputs(batch)["pixel_values"].numpy()
                                           .astype(np.float32)})[0]

        return in_batches(images, batch_size or self.batch_size, forward, self.embedding_dim)
