"""Synthetic training data and a fine-tuned tiny SigLIP, for tests, demos and benchmarks.

Example::

    from person_finder.core.kit.people_training import finetune_tiny_siglip
    folder = finetune_tiny_siglip("/tmp/finetuned-siglip")   # about a minute on 2 CPU cores
    matcher = load_matcher(folder)
"""

from __future__ import annotations

import math
import os

from . import synthetic, tiny_models

#: Specs drawn with this seed; the first ``TRAIN_IDENTITIES`` train, the rest are held out.
SPEC_SEED = 1
TRAIN_IDENTITIES = 48


def person_texts(spec):
    """Every phrasing of ``describe`` plus the short "red top and blue trousers" caption."""
    from ..training.data import attribute_captions

    return [synthetic.describe(spec, v) for v in range(3)] + attribute_captions(synthetic.market_attributes(spec))[:1]


def person_items(specs, first_id=0, images=4, seed=0):
    """:class:`PersonItem` s with in-memory crops: ``images`` per spec, ids from ``first_id``."""
    from ..training.data import PersonItem

    return [PersonItem(synthetic.render_crop(spec, seed=seed * 100003 + 1000 * (first_id + i) + k), first_id + i,
                       person_texts(spec))
            for i, spec in enumerate(specs) for k in range(images)]


def siglip_paper_init(folder, scale=10.0, bias=-5.0):
    """Set a random SigLIP's logit scale and bias to a trainable start (SigLIP paper: 10 and -10)."""
    import torch
    from transformers import SiglipModel

    model = SiglipModel.from_pretrained(folder)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(scale))
        model.logit_bias.fill_(bias)
    model.save_pretrained(folder)
    return folder


def finetune_tiny_siglip(folder, epochs=40, images_per_person=8, learning_rate=1e-3, hidden_size=64, on_progress=None):
    """Fine-tune a tiny random SigLIP on synthetic people; returns ``folder`` (a matcher checkpoint).

    Trained on ``random_specs(64, seed=SPEC_SEED)[:TRAIN_IDENTITIES]``; the
    other 16 specs are never seen (8 validate, 8 stay for tests).
    """
    from ..training import TrainConfig, train_matcher

    if os.path.exists(os.path.join(folder, "training_metrics.json")):
        return folder
    base = siglip_paper_init(tiny_models.make_tiny_siglip(folder + "-base", hidden_size=hidden_size))
    specs = synthetic.random_specs(64, seed=SPEC_SEED)
    train = person_items(specs[:TRAIN_IDENTITIES], 0, images_per_person)
    val = person_items(specs[TRAIN_IDENTITIES:TRAIN_IDENTITIES + 8], 1000, 2, seed=1)
    config = TrainConfig(base_model=base, epochs=epochs, batch_size=64, learning_rate=learning_rate, warmup_fraction=0.05,
                         patience=epochs, device="cpu")
    train_matcher(train, val, folder, config, on_progress=on_progress)
    return folder
