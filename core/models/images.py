"""Images as the models see them: RGB, 8 bits, whatever the file or array held.

Example::

    from person_finder.core.models.images import open_rgb, to_rgb_array
    image = open_rgb("crop.jpg")             # PIL image, RGB, fully decoded (the file is closed)
    array = to_rgb_array(image)              # HxWx3 uint8
"""

from __future__ import annotations

import numpy as np


def open_rgb(source):
    """A path or a PIL image as a fully decoded RGB PIL image (16-bit and gray files included)."""
    from PIL import Image

    if isinstance(source, Image.Image):
        return Image.fromarray(to_rgb_array(source))
    with Image.open(source) as image:
        image.load()
        return Image.fromarray(to_rgb_array(image))


def read_rgb_array(path):
    """The image file at ``path`` as an HxWx3 uint8 RGB array."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return to_rgb_array(image)


def to_rgb_array(image):
    """Any PIL image or numpy array (gray, RGBA, 16-bit) as an HxWx3 uint8 RGB array."""
    from PIL import Image

    if isinstance(image, Image.Image):
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(image, dtype=np.float32)
            image = Image.fromarray((arr / max(arr.max(), 1) * 255).astype(np.uint8))
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        scale = 65535.0 if arr.dtype == np.uint16 else (255.0 if arr.max() > 1.0 else 1.0)
        arr = np.clip(arr.astype(np.float32) / scale * 255.0, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    elif arr.shape[-1] == 4:
        arr = arr[..., :3]
    elif arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr)


def crop_relative(image, box):
    """The part of an HxWx3 array inside a FiftyOne relative box ``[x, y, w, h]`` (at least 1x1 pixel)."""
    height, width = image.shape[:2]
    x, y, w, h = box
    x1, y1 = max(int(x * width), 0), max(int(y * height), 0)
    x2, y2 = min(int(np.ceil((x + w) * width)), width), min(int(np.ceil((y + h) * height)), height)
    return image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
