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


def training_specs():
    """The people the fixture model trains on: the first ``TRAIN_IDENTITIES`` specs plus as many
    others (other bags, sleeves, hats) whose colour pair is not one of the held-out people's."""
    specs = synthetic.random_specs(64, seed=SPEC_SEED)
    held_out = {(s.upper_color, s.lower_color) for s in specs[TRAIN_IDENTITIES:]}
    extra = [s for s in synthetic.random_specs(65, seed=SPEC_SEED + 1) if (s.upper_color, s.lower_color) not in held_out]
    return specs[:TRAIN_IDENTITIES] + extra[:TRAIN_IDENTITIES]


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


def finetune_tiny_siglip(folder, epochs=40, images_per_person=4, learning_rate=1e-3, hidden_size=64, on_progress=None):
    """Fine-tune a tiny random SigLIP on synthetic people; returns ``folder`` (a matcher checkpoint).

    Trained on :func:`training_specs`; the last 16 of
    ``random_specs(64, seed=SPEC_SEED)`` are never seen, not even their
    colour pairs (8 validate, 8 stay for tests).
    """
    from ..training import TrainConfig, train_matcher

    if os.path.exists(os.path.join(folder, "training_metrics.json")):
        return folder
    base = siglip_paper_init(tiny_models.make_tiny_siglip(folder + "-base", hidden_size=hidden_size))
    specs = synthetic.random_specs(64, seed=SPEC_SEED)
    train = person_items(training_specs(), 0, images_per_person)
    val = person_items(specs[TRAIN_IDENTITIES:TRAIN_IDENTITIES + 8], 1000, 2, seed=1)
    config = TrainConfig(base_model=base, epochs=epochs, batch_size=64, learning_rate=learning_rate, warmup_fraction=0.05,
                         patience=epochs, device="cpu")
    train_matcher(train, val, folder, config, on_progress=on_progress)
    return folder


def write_people_dataset(name, root, specs, images=3, first_id=1, seed=0):
    """A dataset of synthetic crops: the first half of the people ``train``, the rest ``query`` (1 image)
    and ``gallery``, with ``person_id``, ``description`` and Market-style ``merged_attributes``.

    Example::

        ds = write_people_dataset("people", "/tmp/people", random_specs(16, seed=5), images=4)
    """
    os.makedirs(root, exist_ok=True)
    import fiftyone as fo

    ds = fo.Dataset(name)
    samples = []
    n_train = len(specs) // 2
    for i, spec in enumerate(specs):
        pid = first_id + i
        for k in range(images):
            path = os.path.join(root, f"{pid:04d}_{k}.jpg")
            synthetic.render_crop(spec, seed=seed * 7919 + pid * 31 + k).save(path, quality=95)
            tag = "train" if i < n_train else ("query" if k == 0 else "gallery")
            samples.append(fo.Sample(filepath=path, tags=[tag], person_id=pid,
                                     description=synthetic.describe(spec, variant=k),
                                     merged_attributes=synthetic.market_attributes(spec)))
    ds.add_samples(samples)
    return ds
