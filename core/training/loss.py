"""Contrastive losses for image-text matching with identity-aware positives.

Both losses take the model's own logits (``logits_per_image``: learned
scale times cosine, plus SigLIP's learned bias), so training goes through
the model's ``forward`` and stays correct under DDP. Every image-text pair
whose person ids agree is a positive: two views of one person in a batch
are never pushed apart.

Example::

    out = model(input_ids=ids, pixel_values=pixels)
    loss = contrastive_loss("sigmoid", out.logits_per_image, person_ids, person_ids)
"""

from __future__ import annotations

from .. import defaults

#: Loss names accepted by :func:`contrastive_loss`.
LOSSES = defaults.TRAIN_LOSSES


def positive_mask(image_ids, text_ids):
    """``mask[i, j]`` is True when image ``i`` and text ``j`` show the same person."""
    return image_ids[:, None] == text_ids[None, :]


def sigmoid_loss(logits, image_ids, text_ids):
    """SigLIP's pairwise sigmoid loss, summed over pairs and divided by the number of images."""
    import torch.nn.functional as F

    labels = positive_mask(image_ids, text_ids).to(logits.dtype) * 2 - 1
    return -F.logsigmoid(labels * logits).sum() / logits.shape[0]


def infonce_loss(logits, image_ids, text_ids):
    """Symmetric InfoNCE (CLIP's loss) with all same-identity pairs as a shared soft target."""
    import torch

    targets = positive_mask(image_ids, text_ids).to(logits.dtype)
    image_to_text = -(targets / targets.sum(1, keepdim=True) * torch.log_softmax(logits, dim=1)).sum(1).mean()
    text_to_image = -(targets / targets.sum(0, keepdim=True) * torch.log_softmax(logits, dim=0)).sum(0).mean()
    return (image_to_text + text_to_image) / 2


def contrastive_loss(name, logits, image_ids, text_ids):
    """The loss ``name`` (one of :data:`LOSSES`) of an images x texts logit matrix (computed in float32)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; use one of {LOSSES}")
    fn = sigmoid_loss if name == "sigmoid" else infonce_loss
    return fn(logits.float(), image_ids, text_ids)
