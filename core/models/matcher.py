"""The image-text matcher: SigLIP, SigLIP 2 or CLIP from a hub id or a folder.

Example::

    from core.models.matcher import load_matcher
    matcher = load_matcher("google/siglip-base-patch16-224")
    crops = matcher.embed_images([pil_image, numpy_rgb_array])   # (2, D), unit norm
    texts = matcher.embed_texts(["a woman in a white t-shirt"])  # (1, D), unit norm
    cosine = crops @ texts.T
    probability = matcher.probability(cosine)                    # SigLIP only
"""

from __future__ import annotations

import logging
import os

import numpy as np

from .. import defaults
from .embedding import in_batches, unit_vectors
from .images import to_rgb_array
from .loading import ModelLoadError, load_pretrained, resolve_device

logger = logging.getLogger(__name__)

#: Hugging Face ``model_type`` values this matcher understands.
SUPPORTED_MODEL_TYPES = ("siglip", "siglip2", "clip")


class ImageTextMatcher:
    """Batched, L2-normalised image and text embeddings from one checkpoint.

    Use :func:`load_matcher` to build one. ``model`` and ``processor`` are the
    underlying Hugging Face objects (for fine-tuning).
    """

    def __init__(self, model, processor, name_or_path, device, batch_size=defaults.MATCHER_BATCH_SIZE):
        self.model = model
        self.processor = processor
        self.name_or_path = name_or_path
        self.device = device
        self.batch_size = int(batch_size)
        self.model_type = model.config.model_type
        self.is_siglip = self.model_type.startswith("siglip")
        self.text_tokens = self._text_window()
        self._truncated = set()  # texts already warned about (a training loop tokenises them every epoch)

    def _text_window(self):
        text_config = getattr(self.model.config, "text_config", None)
        window = getattr(text_config, "max_position_embeddings", None) or defaults.MATCHER_TEXT_TOKENS
        return min(window, defaults.MATCHER_TEXT_TOKENS) if self.is_siglip else window

    @property
    def embedding_dim(self):
        config = self.model.config
        return int(getattr(config, "projection_dim", None) or config.vision_config.hidden_size)

    def image_inputs(self, images):
        """Pixel tensors for ``images`` as the model expects them: RGB, whole body (never centre-cropped)."""
        arrays = [to_rgb_array(im) for im in images]
        kwargs = {}
        image_processor = getattr(self.processor, "image_processor", self.processor)
        if getattr(image_processor, "do_center_crop", False):
            # CLIP crops the centre of a square: that cuts heads and feet off people.
            crop = image_processor.crop_size
            kwargs = dict(do_center_crop=False, size={"height": crop["height"], "width": crop["width"]})
        return image_processor(images=arrays, return_tensors="pt", **kwargs)

    def text_inputs(self, texts):
        """Tokenise as the model was trained (SigLIP: padded to 64 tokens), warning on truncation."""
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        padding = "max_length" if self.is_siglip else True
        lengths = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
        for text, n in zip(texts, lengths):
            if n > self.text_tokens and text not in self._truncated:
                self._truncated.add(text)
                logger.warning(
                    "query of %d tokens is longer than the text model's window of %d; "
                    "it was truncated: %r", n, self.text_tokens, text[:80]
                )
        encoded = tokenizer(list(texts), padding=padding, max_length=self.text_tokens,
                            truncation=True, return_tensors="pt")
        if self.is_siglip:
            # SigLIP's text tower was trained without a padding mask (its pad token is EOS and the last
            # position is pooled); transformers 5's tokenizer returns one, which would change the embedding.
            return {"input_ids": encoded["input_ids"]}
        return encoded

    def embed_images(self, images, batch_size=None):
        """Embed RGB images (PIL or numpy, any size) into unit vectors, ``batch_size`` at a time."""
        import torch

        def forward(batch):
            pixels = self.image_inputs(batch)["pixel_values"].to(self.device, dtype=self.model.dtype)
            return unit_vectors(self.model.get_image_features(pixel_values=pixels))

        with torch.inference_mode():
            return in_batches(images, batch_size or self.batch_size, forward, self.embedding_dim)

    @staticmethod
    def check_texts(texts):
        """Raise ``ValueError`` unless every text query is a non-empty string."""
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"a text query must be a non-empty string, got {text!r}")

    def embed_texts(self, texts, batch_size=None):
        """Embed text queries into unit vectors.

        Raises ``ValueError`` for an empty or blank query.
        """
        import torch

        if isinstance(texts, str):
            texts = [texts]
        self.check_texts(texts)

        def forward(batch):
            inputs = {k: v.to(self.device) for k, v in self.text_inputs(batch).items()}
            return unit_vectors(self.model.get_text_features(**inputs))

        with torch.inference_mode():
            return in_batches(texts, batch_size or self.batch_size, forward, self.embedding_dim)

    def logit_scale_and_bias(self):
        """The model's learned (scale, bias); bias is None for CLIP."""
        scale = float(self.model.logit_scale.exp().item())
        bias = getattr(self.model, "logit_bias", None)
        return scale, (float(bias.item()) if bias is not None else None)

    def probability(self, cosine):
        """SigLIP's calibrated match probability ``sigmoid(scale * cos + bias)``; None for CLIP."""
        scale, bias = self.logit_scale_and_bias()
        if bias is None:
            return None
        return 1.0 / (1.0 + np.exp(-(scale * np.asarray(cosine, dtype=np.float64) + bias)))

    def cosine_for_probability(self, probability):
        """Inverse of :meth:`probability`: the cosine at which SigLIP says ``probability``."""
        scale, bias = self.logit_scale_and_bias()
        if bias is None:
            raise ValueError(f"{self.model_type} has no calibrated probability; give the threshold as a cosine")
        if not 0.0 < probability < 1.0:
            raise ValueError(f"probability threshold must be in (0, 1), got {probability}")
        return float((np.log(probability / (1.0 - probability)) - bias) / scale)


def matcher_info(name_or_path):
    """The Person Finder record saved next to a matcher (``person_finder.json``), or {} (hub ids, other folders).

    Example::

        matcher_info("runs/people").get("calibration", {}).get("threshold")
    """
    import json

    from .. import contract

    path = os.path.join(str(name_or_path), contract.MATCHER_INFO_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def matcher_threshold(name_or_path, threshold_type="cosine"):
    """The match threshold for this matcher: the one its last evaluation calibrated, else the core default.

    Example::

        matcher_threshold("runs/people")                     # e.g. 0.31, calibrated to 0.9 precision
        matcher_threshold("google/siglip-base-patch16-224")  # defaults.MATCH_THRESHOLD (nothing calibrated)
    """
    calibration = matcher_info(name_or_path).get("calibration") or {}
    value = calibration.get("threshold" if threshold_type == "cosine" else "threshold_probability")
    if value is not None:
        return float(value)
    return defaults.MATCH_THRESHOLD if threshold_type == "cosine" else defaults.MATCH_PROBABILITY


def load_matcher(name_or_path=defaults.MATCHER_MODEL, device=None, batch_size=defaults.MATCHER_BATCH_SIZE):
    """Load a SigLIP / SigLIP 2 / CLIP checkpoint from a hub id or a local folder.

    Errors name what was tried and how to fix it (offline mode, missing
    tokenizer files, an architecture that is not an image-text model).

    Example::

        matcher = load_matcher("./runs/finetuned-siglip", device="cuda")
    """
    from transformers import AutoModel, AutoProcessor

    device = resolve_device(device)
    model, config = load_pretrained(AutoModel, name_or_path, SUPPORTED_MODEL_TYPES, "image-text matcher")
    try:
        processor = AutoProcessor.from_pretrained(name_or_path)
    except Exception as e:  # noqa: BLE001 - re-raised with the fix
        local = os.path.isdir(str(name_or_path))
        raise ModelLoadError(
            f"loaded the {config.model_type} weights from {name_or_path!r} but not its processor "
            f"(tokenizer + image processor): {e}. "
            + ("The folder needs the tokenizer files (e.g. spiece.model / tokenizer.json) and "
               "preprocessor_config.json: save them with processor.save_pretrained(folder)."
               if local else "Check that the hub repository has a processor.")
        ) from e
    model.to(device).eval()
    return ImageTextMatcher(model, processor, str(name_or_path), device, batch_size=batch_size)
