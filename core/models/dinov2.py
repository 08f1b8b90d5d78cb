"""DINOv2 image embeddings through transformers (never torch.hub).

Whole-body crops are resized to a square without cropping, so heads and feet
stay in the embedding.

Example::

    from core.models.dinov2 import load_dinov2
    embedder = load_dinov2("facebook/dinov2-small")
    vectors = embedder.embed_images([pil_or_rgb_array, ...])   # (N, 384), unit norm
"""

from __future__ import annotations

import numpy as np

from .. import defaults
from .loading import load_pretrained, resolve_device
from .images import to_rgb_array


class DinoV2Embedder:
    """CLS-token embeddings of a DINOv2 backbone, L2-normalised."""

    def __init__(self, model, processor, device, batch_size=defaults.DEDUPE_BATCH_SIZE):
        self.model = model
        self.processor = processor
        self.device = device
        self.batch_size = int(batch_size)
        crop = getattr(processor, "crop_size", None) or {"height": 224, "width": 224}
        self.size = {"height": crop["height"], "width": crop["width"]}

    @property
    def embedding_dim(self):
        return int(self.model.config.hidden_size)

    def embed_images(self, images, batch_size=None):
        """Embed RGB images (PIL or numpy) into unit vectors, ``batch_size`` at a time."""
        import torch

        batch_size = batch_size or self.batch_size
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                arrays = [to_rgb_array(im) for im in images[start:start + batch_size]]
                inputs = self.processor(images=arrays, return_tensors="pt", do_center_crop=False, size=self.size)
                hidden = self.model(pixel_values=inputs["pixel_values"].to(self.device)).pooler_output
                out.append(torch.nn.functional.normalize(hidden.float(), dim=-1).cpu().numpy())
        if not out:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)


def load_dinov2(name_or_path=defaults.DEDUPE_MODEL, device=None, batch_size=defaults.DEDUPE_BATCH_SIZE):
    """Load a DINOv2 backbone and its image processor from a hub id or folder.

    Example::

        embedder = load_dinov2("/models/dinov2-small", device="cpu")
    """
    from transformers import AutoImageProcessor, AutoModel

    device = resolve_device(device)
    model, _ = load_pretrained(AutoModel, name_or_path, ("dinov2", "dinov2_with_registers"), "DINOv2 embedder")
    processor = AutoImageProcessor.from_pretrained(str(name_or_path))
    model.to(device).eval()
    return DinoV2Embedder(model, processor, device, batch_size=batch_size)
