"""YOLO person detector (Ultralytics), class ``person`` only.

Weights come from a file (``.pt``, ``.onnx``, or a ``.yaml`` config for
random weights) or an Ultralytics name such as ``yolo26n.pt`` (downloaded by
Ultralytics when online). Every file is loaded with Ultralytics' restricted
loader (:func:`load_yolo`): a detector path typed into a form must not be a
way to run code on the App server or a worker. Ultralytics' offline switches are applied for
local files, and the torch thread count it changes on first predict is put
back, so other models keep their speed.

Example::

    from core.models.detector import load_detector
    detector = load_detector("yolo26n.pt", confidence=0.3)
    boxes = detector.detect([rgb_array])[0]   # (n, 5): x1, y1, x2, y2, confidence in pixels
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading

import numpy as np

from .. import defaults
from .loading import ModelLoadError, resolve_device
from .images import to_rgb_array


_OFFLINE_SET_HERE = False
_SAFE_LOAD_LOCK = threading.Lock()
ACCEPTED_FILES = ("a .pt checkpoint (unpickled with torch.load(weights_only=True) against Ultralytics' allow-list "
                  "of model classes), an .onnx graph, or a .yaml model config (random weights)")


def apply_ultralytics_offline_switches(offline=True):
    """Keep Ultralytics from installing packages, phoning home, or writing to $HOME.

    ``offline`` turns on ``YOLO_OFFLINE`` for local weights; a later call with
    ``offline=False`` (a weights name to download) turns it off again, unless
    the user had set it themselves.
    """
    global _OFFLINE_SET_HERE
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tempfile.gettempdir(), "person-finder-ultralytics"))
    if offline and "YOLO_OFFLINE" not in os.environ:
        os.environ["YOLO_OFFLINE"] = "1"
        _OFFLINE_SET_HERE = True
    elif not offline and _OFFLINE_SET_HERE:
        os.environ.pop("YOLO_OFFLINE", None)
        _OFFLINE_SET_HERE = False
_SAFE_LOAD_LOCK = threading.Lock()
ACCEPTED_FILES = ("a .pt checkpoint (unpickled with torch.load(weights_only=True) against Ultralytics' allow-list "
                  "of model classes), an .onnx graph, or a .yaml model config (random weights)")


@contextlib.contextmanager
def preserve_torch_threads():
    """Restore torch's intra-op thread count after Ultralytics changes it."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def load_yolo(weights, task="detect"):
    """An Ultralytics ``YOLO`` loaded from ``weights`` with Ultralytics' restricted (safe) loading switched on.

    A ``.pt`` file is unpickled with ``torch.load(weights_only=True)`` against
    Ultralytics' allow-list of model classes and a ``.yaml`` config is built
    without ``eval``, so a crafted file raises instead of running its code.
    Raises :class:`ModelLoadError` where this Ultralytics / torch has no such
    mode (then only ``.onnx`` loads).

    Example::

        yolo = load_yolo("/models/yolo26n.pt")
    """
    import torch
    from ultralytics import YOLO
    from ultralytics.nn import tasks

    weights = str(weights)
    safe_mode = hasattr(tasks, "SAFE_LOAD") and hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint")
    if not safe_mode and not weights.lower().endswith(".onnx"):
        raise ModelLoadError(f"person detector: this Ultralytics / torch cannot load {weights!r} safely (no restricted "
                             f"loading; needs torch >= 2.6 and a current ultralytics); pass an .onnx file")
    with _SAFE_LOAD_LOCK:  # the switch is process-wide: no load may see it half set
        previous, tasks.SAFE_LOAD = getattr(tasks, "SAFE_LOAD", False), True
        try:
            with preserve_torch_threads():
                return YOLO(weights, task=task)
        finally:
            tasks.SAFE_LOAD = previous


class PersonDetector:
    """Batched person detection on RGB (or OpenCV BGR) images. Build it with :func:`load_detector`."""

    def __init__(self, yolo, weights, confidence, image_size, device, person_class):
        self.yolo = yolo
        self.weights = weights
        self.confidence = float(confidence)
        self.image_size = int(image_size)
        self.device = device
        self.person_class = int(person_class)

    def detect(self, images, batch_size=defaults.DETECTOR_BATCH_SIZE, bgr=False):
        """Detect people in RGB images; returns one ``(n, 5)`` array per image.

        Columns are ``x1, y1, x2, y2, confidence`` in pixels, boxes clipped to
        the image. ``bgr=True`` takes ``uint8`` frames as OpenCV decodes them
        and skips the colour conversion.
        """
        out = []
        for start in range(0, len(images), batch_size):
            # Ultralytics reads numpy arrays as BGR (OpenCV order).
            chunk = images[start:start + batch_size]
            batch = chunk if bgr else [np.ascontiguousarray(to_rgb_array(im)[..., ::-1]) for im in chunk]
            with preserve_torch_threads():
                results = self.yolo.predict(
                    batch, conf=self.confidence, imgsz=self.image_size, classes=[self.person_class],
                    device=self.device, verbose=False,
                )
            for result in results:
                boxes = result.boxes
                xyxy = boxes.xyxy.cpu().numpy().reshape(-1, 4)
                conf = boxes.conf.cpu().numpy().reshape(-1, 1)
                keep = boxes.cls.cpu().numpy().astype(int) == self.person_class
                out.append(np.concatenate([xyxy, conf], axis=1)[keep].astype(np.float32))
        return out


def load_detector(weights=defaults.DETECTOR_MODEL, confidence=defaults.DETECTOR_CONFIDENCE,
                  image_size=defaults.DETECTOR_IMAGE_SIZE, device=None, person_class=defaults.PERSON_CLASS_ID):
    """Load a YOLO model as a person detector.

    Example::

        detector = load_detector("/models/yolo26n.onnx", confidence=0.4)
    """
    if not 0.0 <= float(confidence) <= 1.0:
        raise ValueError(f"detector confidence must be in [0, 1], got {confidence}")
    weights = str(weights)
    local = os.path.exists(weights)
    apply_ultralytics_offline_switches(offline=local)
    if os.path.splitext(weights)[1].lower() not in defaults.DETECTOR_FILE_TYPES:
        raise ModelLoadError(f"person detector: {weights!r} is not an accepted detector file; pass {ACCEPTED_FILES}, "
                             f"or an Ultralytics model name such as {defaults.DETECTOR_MODEL!r}")
    if not local and (os.sep in weights or weights.endswith(".onnx")):
        raise ModelLoadError(f"person detector: no file at {weights!r}; pass {ACCEPTED_FILES}, or an "
                             f"Ultralytics model name such as {defaults.DETECTOR_MODEL!r}")
    device = resolve_device(device)
    try:
        yolo = load_yolo(weights)
    except ModelLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - re-raised with the fix
        raise ModelLoadError(
            f"person detector: could not load {weights!r} ({e}). Accepted: {ACCEPTED_FILES}. Without network "
            f"access pass a local file; names like {defaults.DETECTOR_MODEL!r} are downloaded by Ultralytics."
        ) from e
    return PersonDetector(yolo, weights, confidence, image_size, device, person_class)
