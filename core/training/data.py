"""Training data for the matcher: people, their images, and texts that describe them.

A :class:`PersonItem` is one image of one person with every text that may
describe it: the sample's description plus short captions rendered from the
identity's merged attributes (extra positives). Splits are made by
identity, seeded, so no person is in two splits. Augmentations keep colours
and whole bodies (colour is what queries ask about).

Example::

    items = items_from_samples(dataset.match_tags("train"))
    train, val = split_by_identity(items, val_fraction=0.2, seed=0)
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageEnhance

from .. import contract
from ..attributes.captions import attribute_captions
from ..models.images import open_rgb


@dataclasses.dataclass
class PersonItem:
    """One image (a path or a PIL image) of ``person_id`` and the texts that describe it."""

    image: object
    person_id: int
    texts: list
    sample_id: str = None  # the FiftyOne sample it came from, if any

    def load(self):
        return open_rgb(self.image)


def items_from_samples(samples, description_field=contract.DESCRIPTION_FIELD,
                       attributes_field=contract.MERGED_ATTRIBUTES_FIELD,
                       person_id_field=contract.PERSON_ID_FIELD):
    """One :class:`PersonItem` per sample with a description (and/or merged attributes).

    Raises ``ValueError`` naming the fields when no sample has any text.

    Example::

        items = items_from_samples(dataset.match_tags("train"))
    """
    schema = samples.get_field_schema()
    if person_id_field not in schema:
        raise ValueError(f"the samples have no {person_id_field!r} field; training needs a person id per sample")
    fields = [f for f in (description_field, attributes_field) if f and f in schema]
    if not fields:
        raise ValueError(
            f"the samples have neither a {description_field!r} nor a {attributes_field!r} field: generate "
            "descriptions (or merged attributes) first, training needs a text per image"
        )
    sample_ids, paths, ids = samples.values("id"), samples.values("filepath"), samples.values(person_id_field)
    check_person_ids(ids, person_id_field)
    descriptions = samples.values(description_field) if description_field in schema else [None] * len(paths)
    attributes = samples.values(attributes_field) if attributes_field in schema else [None] * len(paths)
    items = []
    for sample_id, path, pid, desc, attrs in zip(sample_ids, paths, ids, descriptions, attributes):
        texts = ([desc.strip()] if isinstance(desc, str) and desc.strip() else []) + attribute_captions(attrs)
        if pid is not None and pid >= 0 and texts:
            items.append(PersonItem(image=path, person_id=int(pid), texts=texts, sample_id=sample_id))
    if not items:
        raise ValueError(
            f"none of the {len(paths)} samples has a non-empty {description_field!r} (or {attributes_field!r}) "
            f"and a {person_id_field!r} >= 0; generate descriptions first"
        )
    return items


def check_person_ids(ids, person_id_field=contract.PERSON_ID_FIELD):
    """Raise ``ValueError`` unless every person id is an integer (or None); training and evaluation need them.

    Example::

        check_person_ids([1, 2, None])        # fine
        check_person_ids(["0001", "0002"])    # ValueError: convert_prototype_dataset maps them to integers
    """
    bad = next((i for i in ids if i is not None and (isinstance(i, bool) or not isinstance(i, (int, np.integer)))),
               None)
    if bad is not None:
        raise ValueError(f"{person_id_field!r} holds {type(bad).__name__} values such as {bad!r}; training and "
                         "evaluation need integer person ids. Convert the dataset once with the "
                         "convert_prototype_dataset operator (core.curation.prototype), which maps them to "
                         "integers and keeps the originals")


def split_by_identity(items, val_fraction, seed=0, min_identities=2):
    """Split items into (train, val) by person, seeded; each side keeps >= ``min_identities``.

    Example::

        train, val = split_by_identity(items, 0.2, seed=0)
    """
    ids = sorted({it.person_id for it in items})
    n_val = int(round(len(ids) * val_fraction))
    if val_fraction > 0:
        n_val = max(n_val, min_identities)
    if len(ids) - n_val < min_identities or (val_fraction > 0 and n_val < min_identities):
        raise ValueError(
            f"{len(ids)} identities are too few for a validation fraction of {val_fraction}: training and "
            f"validation need at least {min_identities} identities each; add people or lower val_fraction"
        )
    val_ids = set(np.random.default_rng(seed).permutation(ids)[:n_val].tolist())
    return ([it for it in items if it.person_id not in val_ids], [it for it in items if it.person_id in val_ids])


def augment(image, rng, flip=True, max_shift=0.06, scale=(0.9, 1.05), light=0.15):
    """Colour-preserving, whole-body augmentation driven by ``rng`` (reproducible per sample).

    A mirror flip, a small zoom and shift (the body stays in frame) and a
    mild brightness / contrast change; never hue, saturation or grayscale.
    """
    image = image.convert("RGB")
    w, h = image.size
    if flip and rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    s = rng.uniform(*scale)
    dx, dy = rng.uniform(-max_shift, max_shift, size=2) * (w, h)
    # inverse affine: output (x, y) samples input ((x - cx - dx) / s + cx, ...)
    cx, cy = w / 2, h / 2
    coeffs = (1 / s, 0, cx - (cx + dx) / s, 0, 1 / s, cy - (cy + dy) / s)
    fill = tuple(int(v) for v in np.asarray(image)[[0, -1]].reshape(-1, 3).mean(0))
    image = image.transform((w, h), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR, fillcolor=fill)
    image = ImageEnhance.Brightness(image).enhance(1 + rng.uniform(-light, light))
    return ImageEnhance.Contrast(image).enhance(1 + rng.uniform(-light, light))


class PairDataset:
    """A map-style dataset of (augmented image, one of its texts, person id), reproducible by epoch.

    The randomness of item ``i`` in epoch ``e`` comes from ``(seed, e, i)``
    only, so a resumed run and any number of DDP processes see the same data.
    """

    def __init__(self, items, seed=0, train=True):
        self.items = list(items)
        self.seed = int(seed)
        self.train = train
        self.epoch = 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        item = self.items[index]
        image = item.load()
        if not self.train:
            return image, item.texts[0], item.person_id
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return augment(image, rng), item.texts[int(rng.integers(len(item.texts)))], item.person_id


class Collator:
    """Batches :class:`PairDataset` entries into model inputs with the matcher's processor."""

    def __init__(self, matcher):
        self.matcher = matcher

    def __call__(self, batch):
        import torch

        images, texts, ids = zip(*batch)
        pixels = self.matcher.image_inputs(list(images))["pixel_values"]
        return dict(pixel_values=pixels, **self.matcher.text_inputs(list(texts)), person_ids=torch.tensor(ids))
