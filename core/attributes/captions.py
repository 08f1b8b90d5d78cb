"""Short captions rendered from a person's attributes: the texts fine-tuning pairs with each crop.

Example::

    from person_finder.core.attributes.captions import attribute_captions
    attribute_captions({"upper_color": "red", "lower_color": "blue"})
    # ['red top and blue trousers', 'a person wearing a red top', 'blue trousers']
"""

from __future__ import annotations

#: Market-1501 style colour flags (``upred`` = 2 means "red top").
_COLOR_WORDS = ("black", "white", "red", "purple", "yellow", "gray", "grey", "blue", "green", "pink", "brown",
                "orange", "beige", "navy", "dark", "light")


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
