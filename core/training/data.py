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

from .. import defaults

#: Market-1501 style colour flags (``upred`` = 2 means "red top").
_COLOR_WORDS = ("black", "white", "red", "purple", "yellow", "gray", "grey", "blue", "green", "pink", "brown",
                "orange", "beige", "navy", "dark", "light")


@dataclasses.dataclass
class PersonItem:
    """One image (a path or a PIL image) of ``person_id`` and the texts that describe it."""

    image: object
    person_id: int
    texts: list

    def load(self):
        if isinstance(self.image, Image.Image):
            return self.image.convert("RGB")
        with Image.open(self.image) as im:
            return im.convert("RGB")


def _plain(value):
    """An attribute value as a plain Python value (embedded documents, ``{"value": ...}`` votes)."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not str(k).startswith("_")}
    return value


def _yes(value):
    """True for Market's "2 = yes", booleans and yes-like strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 2 if value in (1, 2) else value > 0
    return str(value).strip().lower() in ("yes", "true", "y")


def _find(attrs, *names):
    for name in names:
        value = attrs.get(name)
        if value not in (None, "", "unknown", "none"):
            return value
    return None


def _color_flag(attrs, prefix):
    colors = [k[len(prefix):] for k, v in attrs.items()
              if k.startswith(prefix) and k[len(prefix):] in _COLOR_WORDS and _yes(v)]
    return colors[0] if colors else None


def attribute_captions(attributes):
    """Short templated captions from a merged-attributes value (dict-like; unknown keys ignored).

    Understands both named attributes (``upper_color``, ``lower_color``,
    ``lower_type``, ``sleeve_length``, ``bag``, ``bag_color``, ``hat``) and
    Market-1501's 27 flags (``upred`` = 2, ``down`` = 1 long, ``backpack`` = 2,
    ...). Sensitive attributes (gender, age, ethnicity) are never rendered.

    Example::

        attribute_captions({"upper_color": "red", "lower_color": "blue"})
        # ['red top and blue trousers', 'a person wearing a red top', 'blue trousers']
    """
    if attributes is None:
        return []
    attrs = {str(k).lower(): v for k, v in (_plain(attributes) or {}).items()}
    upper = _find(attrs, "upper_color", "upper_colour", "upper_body_color", "top_color") or _color_flag(attrs, "up")
    lower = _find(attrs, "lower_color", "lower_colour", "lower_body_color", "bottom_color") or _color_flag(attrs, "down")
    lower_type = _find(attrs, "lower_type", "lower_body_type", "lower_clothing", "bottom_type")
    if lower_type is None and ("clothes" in attrs or "down" in attrs):
        if attrs.get("clothes") == 1:
            lower_type = "dress"
        else:
            lower_type = "shorts" if attrs.get("down") == 2 else "trousers"
    lower_type = str(lower_type or "trousers")
    sleeves = _find(attrs, "sleeve_length", "sleeves", "upper_length")
    if sleeves is None and attrs.get("up") in (1, 2):
        sleeves = "long" if attrs["up"] == 1 else "short"
    bag = _find(attrs, "bag", "bag_type", "carrying")
    if bag is None or isinstance(bag, (int, float, bool)):
        bag = next((name.replace("_", " ") for name in ("backpack", "handbag", "shoulder_bag") if _yes(attrs.get(name, 1))),
                   "shoulder bag" if _yes(attrs.get("bag", 1)) else None)
    bag_color = _find(attrs, "bag_color", "bag_colour")
    hat = attrs.get("hat")

    top = f"{upper} {str(sleeves).split('-')[0]}-sleeved top" if upper and sleeves else (f"{upper} top" if upper else None)
    bottom = f"{lower} {lower_type}" if lower else None
    captions = []
    if top and bottom:
        captions.append(f"{upper} top and {bottom}")
    if top:
        captions.append(f"a person wearing a {top}")
    if bottom:
        captions.append(bottom)
    if bag and str(bag).lower() not in ("no", "none", "false"):
        captions.append(f"a person carrying a {bag_color + ' ' if bag_color else ''}{bag}")
    if hat is not None and _yes(hat):
        captions.append("a person wearing a hat")
    return captions


def items_from_samples(samples, description_field=defaults.DESCRIPTION_FIELD,
                       attributes_field=defaults.MERGED_ATTRIBUTES_FIELD,
                       person_id_field=defaults.PERSON_ID_FIELD):
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
    paths, ids = samples.values("filepath"), samples.values(person_id_field)
    descriptions = samples.values(description_field) if description_field in schema else [None] * len(paths)
    attributes = samples.values(attributes_field) if attributes_field in schema else [None] * len(paths)
    items = []
    for path, pid, desc, attrs in zip(paths, ids, descriptions, attributes):
        texts = ([desc.strip()] if isinstance(desc, str) and desc.strip() else []) + attribute_captions(attrs)
        if pid is not None and pid >= 0 and texts:
            items.append(PersonItem(image=path, person_id=int(pid), texts=texts))
    if not items:
        raise ValueError(
            f"none of the {len(paths)} samples has a non-empty {description_field!r} (or {attributes_field!r}) "
            f"and a {person_id_field!r} >= 0; generate descriptions first"
        )
    return items


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
