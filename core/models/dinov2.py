"""DINOv2 image embeddings through transformers (never torch.hub).

Whole-body crops are resized to a square without cropping, so heads and feet
stay in the embedding.

Example::

    from core.models.dinov2 import load_dinov2
    embedder = load_dinov2("facebook/dinov2-small")
    vectors = embedder.embed_images([pil_or_rgb_array, ...])   # (N, 384), unit norm
"""

from __future__ import annotations


from .. import defaults
from .loading import load_pretrained, resolve_device
from .embedding import in_batches, unit_vectors
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

        def forward(batch):
            arrays = [to_rgb_array(im) for im in batch]
            inputs = self.processor(images=arrays, return_tensors="pt", do_center_crop=False, size=self.size)
            return unit_vectors(self.model(pixel_values=inputs["pixel_values"].to(self.device)))

        with torch.inference_mode():
            return in_batches(images, batch_size or self.batch_size, forward, self.embedding_dim)


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
