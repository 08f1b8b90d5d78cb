"""What every embedder shares: unit vectors from a model output, computed a batch at a time.

Example::

    from person_finder.core.models.embedding import in_batches, unit_vectors
    vectors = in_batches(crops, 32, lambda batch: unit_vectors(model(batch)), dim=768)   # (len(crops), 768)
"""

from __future__ import annotations

import numpy as np


def pooled(output):
    """The embedding of a model output: transformers 5 returns an object whose ``pooler_output`` it is."""
    return output.pooler_output if hasattr(output, "pooler_output") else output


def unit_tensor(output):
    """A model output's embeddings, L2-normalised, float32, as a torch tensor (what exported towers return)."""
    import torch

    return torch.nn.functional.normalize(pooled(output).float(), dim=-1)


def unit_vectors(output):
    """A model output's embeddings as L2-normalised float32 numpy rows."""
    return unit_tensor(output).cpu().numpy()


def in_batches(items, batch_size, forward, dim):
    """``forward(batch)`` over ``items``, ``batch_size`` at a time, stacked as float32 rows; ``(0, dim)`` if empty."""
    out = [forward(items[start:start + batch_size]) for start in range(0, len(items), int(batch_size))]
    if not out:
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)
