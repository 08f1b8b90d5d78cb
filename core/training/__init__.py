"""Fine-tuning the image-text matcher on people (see :mod:`.train`, :mod:`.data`, :mod:`.loss`).

Example::

    from person_finder.core.training import TrainConfig, train_matcher
"""

from .data import PersonItem, items_from_samples, split_by_identity
from .train import TrainConfig, TrainResult, train_matcher

__all__ = ["PersonItem", "TrainConfig", "TrainResult", "items_from_samples",
           "split_by_identity", "train_matcher"]
