"""Short captions rendered from a person's attributes: the texts fine-tuning pairs with each crop.

They read the plugin's own schema (:class:`~.schema.PersonAttributes`),
which is what generation writes to ``attributes`` and the merge writes to
``merged_attributes``: ``upper_colors``, ``lower_colors``, ``upper_type``,
``sleeve_length``, ``lower_type``, ``lower_length``, the three bags with
their colours, ``hat`` and ``glasses``. Sensitive attributes (gender, age,
ethnicity) are never rendered.

Example::

    from person_finder.core.attributes.captions import attribute_captions
    attribute_captions({"upper_colors": ["red"], "lower_colors": ["blue"], "lower_type": "jeans"})
    # ['red top and blue jeans', 'a person wearing a red top', 'blue jeans']
"""

from __future__ import annotations

from .schema import BAG_COLOR_FIELDS, UNKNOWN

_SLEEVES = {"long": "long-sleeved", "short": "short-sleeved", "sleeveless": "sleeveless"}


def _plain(value):
    """An attribute record (embedded document or dict) as a plain dict."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    return {k: v for k, v in value.items() if not str(k).startswith("_")} if isinstance(value, dict) else {}


def _known(value):
    return value if isinstance(value, str) and value and value not in (UNKNOWN, "other") else None


def _first_color(values):
    return next((c for c in values or [] if _known(c)), None) if isinstance(values, (list, tuple)) else None


def attribute_captions(attributes):
    """Short templated captions of a per-view or merged attributes record (dict or document; None -> []).

    Example::

        attribute_captions({"upper_colors": ["white"], "sleeve_length": "short", "lower_colors": ["black"],
                            "lower_type": "skirt", "shoulder_bag": "yes", "shoulder_bag_color": "brown"})
        # ['white top and black skirt', 'a person wearing a white short-sleeved top', 'black skirt',
        #  'a person carrying a brown shoulder bag']
    """
    attrs = _plain(attributes)
    upper, lower = _first_color(attrs.get("upper_colors")), _first_color(attrs.get("lower_colors"))
    lower_type = _known(attrs.get("lower_type")) or ("shorts" if attrs.get("lower_length") == "short" else "trousers")
    sleeves = _SLEEVES.get(attrs.get("sleeve_length"))
    top = f"{upper} {sleeves + ' ' if sleeves else ''}{_known(attrs.get('upper_type')) or 'top'}" if upper else None
    bottom = f"{lower} {lower_type}" if lower else None
    captions = []
    if upper and bottom:
        captions.append(f"{upper} top and {bottom}")
    if top:
        captions.append(f"a person wearing a {top}")
    if bottom:
        captions.append(bottom)
    for bag, color_field in BAG_COLOR_FIELDS.items():
        if attrs.get(bag) == "yes":
            color = _known(attrs.get(color_field))
            captions.append(f"a person carrying a {color + ' ' if color else ''}{bag.replace('_', ' ')}")
    if attrs.get("hat") == "yes":
        captions.append("a person wearing a hat")
    if attrs.get("glasses") in ("glasses", "sunglasses"):
        captions.append(f"a person wearing {attrs['glasses']}")
    return captions
