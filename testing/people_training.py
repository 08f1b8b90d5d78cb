"""Synthetic training data and a fine-tuned tiny SigLIP, for tests, demos and benchmarks.

People are split by their (upper, lower) colour pair along diagonals of the
Market-1501 colour grid, pair ``(upper[i], lower[(i + shift) % 9])``. The
16 held-out test people and 8 of the 16 validation people wear colour pairs
never trained on; training keeps the other 41 pairs, every colour in at
least 4 combinations on each side (what generalising to new pairs needs).

Example::

    from person_finder.testing.people_training import finetune_tiny_siglip, held_out_specs
    folder = finetune_tiny_siglip("/tmp/finetuned-siglip")   # 1-2 minutes on 2 CPU cores
    matcher = load_matcher(folder)            # held_out_specs(): Rank-1 0.875-1.0, chance 1/16
"""

from __future__ import annotations

import dataclasses
import math
import os

from . import synthetic, tiny_models

#: Seed of the people's other attributes (sleeves, trousers or skirt, bag, hat, hair).
SPEC_SEED = 1
#: Diagonals of the colour grid (shifts) worn by the held-out test people and by validation people,
#: one person per pair; no one in training wears these pairs. Each test colour is worn by two test people.
TEST_SHIFTS = (1, 5)
VAL_SHIFTS = (3,)
#: Training people per training colour pair (41 pairs), each with other sleeves, bags, hats...
PEOPLE_PER_PAIR = 12
IMAGES_PER_PERSON = 3
#: Validation also has new people in trained colour pairs on these diagonals: then every validation
#: colour is worn by two people, as in the test, and ranking them needs both colours (with one person
#: per colour, validation saturates early and picks an undertrained epoch).
VAL_SEEN_SHIFTS = (2,)
VAL_IMAGES_PER_PERSON = 4


def colour_pairs(shifts):
    """The (upper, lower) colour pairs on the diagonals ``shifts`` of the grid (same-colour pairs skipped).

    Example::

        colour_pairs((1,))[:2]   # [('black', 'white'), ('white', 'pink')]
    """
    upper, lower = synthetic.MARKET_UPPER_COLORS, synthetic.MARKET_LOWER_COLORS
    return [(u, lower[(i + s) % len(lower)]) for s in shifts for i, u in enumerate(upper)
            if u != lower[(i + s) % len(lower)]]


def dress(pairs, seed):
    """One :class:`~.synthetic.PersonSpec` per colour pair; other attributes from ``random_specs(seed=seed)``."""
    drawn = synthetic.random_specs(len(pairs), seed=seed)
    return [dataclasses.replace(spec, upper_color=u, lower_color=l) for spec, (u, l) in zip(drawn, pairs)]


def held_out_specs():
    """The test people: one per colour pair on ``TEST_SHIFTS``, never seen in training or validation."""
    return dress(colour_pairs(TEST_SHIFTS), SPEC_SEED)


def validation_specs():
    """The people that pick the best epoch: one per colour pair on ``VAL_SHIFTS + VAL_SEEN_SHIFTS``."""
    return dress(colour_pairs(VAL_SHIFTS + VAL_SEEN_SHIFTS), SPEC_SEED + 100)


def training_specs(people_per_pair=PEOPLE_PER_PAIR):
    """The training people: ``people_per_pair`` per colour pair that no test or validation person wears."""
    held = set(colour_pairs(TEST_SHIFTS + VAL_SHIFTS))
    pairs = [(u, l) for u in synthetic.MARKET_UPPER_COLORS for l in synthetic.MARKET_LOWER_COLORS
             if u != l and (u, l) not in held]
    return [spec for k in range(people_per_pair) for spec in dress(pairs, SPEC_SEED + 200 + k)]


def person_texts(spec):
    """Every phrasing of ``describe`` plus the short "red top and blue trousers" caption of its attributes."""
    from ..core.attributes.captions import attribute_captions
    from .fake_gemini import spec_answer

    return [synthetic.describe(spec, v) for v in range(3)] + attribute_captions(spec_answer(spec))[:1]


def person_items(specs, first_id=0, images=4, seed=0):
    """:class:`PersonItem` s with in-memory crops: ``images`` per spec, ids from ``first_id``."""
    from ..core.training.data import PersonItem

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


def recipe_items(people_per_pair=PEOPLE_PER_PAIR, images_per_person=IMAGES_PER_PERSON):
    """(train, validation) :class:`PersonItem` lists of the synthetic recipe (ids 0... and 1000...)."""
    return person_items(training_specs(people_per_pair), 0, images_per_person), validation_items()


def validation_items():
    """The :func:`validation_specs` people's :class:`PersonItem` s (ids 1000..., ``VAL_IMAGES_PER_PERSON`` each)."""
    return person_items(validation_specs(), 1000, VAL_IMAGES_PER_PERSON, seed=1)


def finetune_tiny_siglip(folder, epochs=30, people_per_pair=PEOPLE_PER_PAIR, images_per_person=IMAGES_PER_PERSON,
                         learning_rate=2e-3, batch_size=32, hidden_size=64, device="cpu", mixed_precision="no",
                         on_progress=None):
    """Fine-tune a tiny random SigLIP on synthetic people; returns ``folder`` (a matcher checkpoint).

    Trained on :func:`training_specs` (492 people, 1476 images), the best
    epoch picked on :func:`validation_specs`; :func:`held_out_specs` stay
    unseen, not even their colour pairs: Rank-1 0.875-1.0 on them (chance
    1/16). Its zero-shot attribute reliability is then measured on the
    validation people (as ``evaluate_matchers`` does on a ``val`` split). On CPU it trains on one thread, about 2 minutes: a second thread
    gains only ~15% on idle cores, makes these small steps several times
    slower when other processes share the cores, and would make the result
    depend on the core count. An existing result is reused.

    Example::

        folder = finetune_tiny_siglip("/tmp/finetuned-siglip")
    """
    import torch

    from ..core.training import TrainConfig, train_matcher

    if os.path.exists(os.path.join(folder, "training_metrics.json")):
        return _with_attribute_reliability(folder)
    base = siglip_paper_init(tiny_models.make_tiny_siglip(folder + "-base", hidden_size=hidden_size))
    train, val = recipe_items(people_per_pair, images_per_person)
    config = TrainConfig(base_model=base, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                         warmup_fraction=0.05, patience=epochs, device=device, mixed_precision=mixed_precision)
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if device == "cpu" else threads)
    try:
        train_matcher(train, val, folder, config, on_progress=on_progress)
    finally:
        torch.set_num_threads(threads)
    return _with_attribute_reliability(folder)


def _with_attribute_reliability(folder):
    """Measure and store the zero-shot attribute reliability of the matcher in ``folder`` on the validation people."""
    from ..core import contract
    from ..core.attributes.zero_shot import attribute_reliability
    from ..core.models.matcher import load_matcher, matcher_info
    from ..core.training.card import record_attribute_reliability
    from .fake_gemini import spec_answer

    if contract.ATTRIBUTE_RELIABILITY_KEY in matcher_info(folder):
        return folder
    items, specs = validation_items(), validation_specs()
    matcher = load_matcher(folder, device="cpu")
    reliability = attribute_reliability(matcher, matcher.embed_images([it.image for it in items]),
                                        [spec_answer(specs[it.person_id - 1000]) for it in items])
    record_attribute_reliability(folder, reliability, f"{len(items)} images of the kit's validation people")
    return folder


def write_people_dataset(name, root, specs, images=3, first_id=1, seed=0):
    """A dataset of synthetic crops: the first half of the people ``train``, the rest ``query`` (1 image)
    and ``gallery``, with ``person_id``, ``description``, per-view ``attributes`` (what a perfect Gemini
    answers) and ``merged_attributes`` written by the product's own merge.

    Example::

        ds = write_people_dataset("people", "/tmp/people", random_specs(16, seed=5), images=4)
    """
    os.makedirs(root, exist_ok=True)
    import fiftyone as fo

    from ..core.attributes.merge import merge_attributes
    from ..core.attributes.store import to_document
    from .fake_gemini import spec_answer

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
                                     attributes=to_document(spec_answer(spec), provider="test")))
    ds.add_samples(samples)
    merge_attributes(ds)
    return ds
