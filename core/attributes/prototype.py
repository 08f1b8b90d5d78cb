"""The reference prototype's attribute records, read into the plugin's schema.

The prototype's datasets (on the Hugging Face hub) hold ``attributes`` as a
plain nested dict with Title-case free-text values, e.g.::

    {"gender": "Female", "age": "Adult", "ethnicity": "Unknown",
     "appearance": {"hair": "Long black hair"},
     "clothing": {"upper_body": "White short-sleeved t-shirt", "lower_body": "Blue jeans", "footwear": "White sneakers"},
     "accessories": {"bag": "Brown shoulder bag", "hat": "None"},
     "posture": {"pose": "Standing"}, "actions": {"activity": "Walking"}}

:func:`from_prototype` reads colours, garments, sleeves, bags (kind and
colour), hat, glasses, posture and action from that text into a
:class:`~.schema.PersonAttributes` dict; what it cannot read stays
``unknown``. Ethnicity is read only with ``include_sensitive``.

Example::

    from person_finder.core.attributes.prototype import from_prototype
    from_prototype({"clothing": {"upper_body": "Red jacket"}})["upper_colors"]   # ['red']
"""

from __future__ import annotations

import re

from .schema import COLORS, UNKNOWN, attribute_schema, unknown_attributes

#: Colour words of free text mapped to the palette (words not listed there and not here are ignored).
_COLOR_ALIASES = {"grey": "gray", "navy": "blue", "beige": "brown", "tan": "brown", "khaki": "brown",
                  "maroon": "red", "burgundy": "red", "violet": "purple", "cream": "white", "silver": "gray"}
_ABSENT = {"", "none", "no", "unknown", "n/a", "not visible", "nothing", "null"}
#: (schema field, {value: words that name it}), first match wins; matched as whole words.
_UPPER_TYPES = {"t-shirt": ("t-shirt", "tshirt", "tee"), "jacket": ("jacket", "hoodie", "blazer"), "coat": ("coat",),
                "sweater": ("sweater", "jumper", "cardigan", "pullover"), "vest": ("vest", "tank top"),
                "dress": ("dress",), "shirt": ("shirt", "blouse", "polo", "top")}
_LOWER_TYPES = {"jeans": ("jeans", "denim"), "shorts": ("shorts", "bermuda"), "skirt": ("skirt",),
                "dress": ("dress",), "trousers": ("trousers", "pants", "slacks", "leggings", "joggers", "chinos")}
_SHOES = {"sneakers": ("sneakers", "trainers", "running shoes"), "boots": ("boots",), "sandals": ("sandals", "flip-flops"),
          "formal": ("formal shoes", "dress shoes", "loafers", "heels", "oxfords")}
_BAGS = {"backpack": ("backpack", "rucksack"), "handbag": ("handbag", "hand bag", "purse", "clutch"),
         "shoulder_bag": ("shoulder bag", "messenger bag", "crossbody", "cross-body", "tote", "satchel", "bag")}
_POSTURES = {"sitting": ("sitting", "seated"), "lying": ("lying",), "crouching": ("crouching", "squatting"),
             "standing": ("standing", "upright", "walking")}
_ACTIONS = {"running": ("running", "jogging"), "cycling": ("cycling", "riding a bicycle", "biking"),
            "talking on phone": ("phone",), "carrying something": ("carrying",), "walking": ("walking",),
            "standing still": ("standing",)}
_AGES = {"child": ("child", "kid"), "teenager": ("teen", "teenager", "adolescent"),
         "senior": ("senior", "elderly", "old"), "adult": ("adult", "middle-aged", "young adult")}
_ETHNICITIES = ("asian", "black", "hispanic", "middle eastern", "south asian", "white")


def _text(value):
    """Every string inside ``value`` (nested dicts and lists), lower-cased, "key: value" for dict entries."""
    if isinstance(value, dict):
        return " ; ".join(f"{k.replace('_', ' ')}: {_text(v)}" for k, v in value.items() if _text(v))
    if isinstance(value, (list, tuple)):
        return " ; ".join(t for t in (_text(v) for v in value) if t)
    text = str(value or "").strip().lower()
    return "" if text in _ABSENT else text


def _has(text, word):
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def _first(text, table):
    return next((value for value, words in table.items() if any(_has(text, w) for w in words)), UNKNOWN)


def _colors(text):
    found = []
    for word in re.findall(r"[a-z]+", text):
        color = _COLOR_ALIASES.get(word, word)
        if color in COLORS and color not in found:
            found.append(color)
    return found


def _parts(clothing, *keys):
    """The text of the clothing entries whose key mentions one of ``keys``."""
    if not isinstance(clothing, dict):
        return ""
    return " ; ".join(_text(v) for k, v in clothing.items() if any(key in k.lower() for key in keys))


def _items(accessories):
    """One text per accessory entry (dict values, list items, or ``,`` / ``and``-separated text)."""
    if isinstance(accessories, dict):
        values = [f"{k.replace('_', ' ')} {_text(v)}" if _text(v) and _text(v) not in ("yes", "true")
                  else (k.replace("_", " ") if _text(v) else "") for k, v in accessories.items()]
    elif isinstance(accessories, (list, tuple)):
        values = [_text(v) for v in accessories]
    else:
        values = re.split(r",|\band\b|;", _text(accessories))
    return [v.strip() for v in values if v and v.strip()]


def from_prototype(attributes, include_sensitive=False):
    """A prototype ``attributes`` dict as a dict of the plugin's schema (``unknown`` where not stated).

    Example::

        values = from_prototype({"gender": "Female", "clothing": {"upper_body": "White t-shirt",
                                 "lower_body": "Black skirt"}, "accessories": {"bag": "Brown shoulder bag"}})
        values["upper_colors"], values["lower_type"], values["shoulder_bag_color"]   # ['white'], 'skirt', 'brown'
    """
    schema = attribute_schema(include_sensitive)
    values = unknown_attributes(schema).model_dump()
    attrs = {str(k).lower(): v for k, v in (attributes or {}).items()}
    gender = _text(attrs.get("gender"))
    values["gender"] = "female" if _has(gender, "female") or _has(gender, "woman") else (
        "male" if _has(gender, "male") or _has(gender, "man") else UNKNOWN)
    values["age_group"] = _first(_text(attrs.get("age")), _AGES)
    hair = _text(attrs.get("appearance"))
    values["hair_length"] = "bald" if _has(hair, "bald") else (
        "long" if re.search(r"long\w*\s[\w\s-]*hair|hair[\w\s:-]*\blong", hair) else (
            "short" if re.search(r"short\w*\s[\w\s-]*hair|hair[\w\s:-]*\bshort", hair) else UNKNOWN))
    clothing = attrs.get("clothing")
    upper = _parts(clothing, "upper", "top", "shirt", "jacket", "outer") or (
        _text(clothing) if not isinstance(clothing, dict) else "")
    lower = _parts(clothing, "lower", "bottom", "pant", "trouser", "leg")
    shoes = _parts(clothing, "foot", "shoe")
    values["upper_type"] = _first(upper, _UPPER_TYPES)
    values["sleeve_length"] = ("sleeveless" if _has(upper, "sleeveless") else
                               "short" if re.search(r"short[\s-]sleeve", upper) or values["upper_type"] == "t-shirt"
                               else "long" if re.search(r"long[\s-]sleeve", upper) else UNKNOWN)
    values["upper_colors"] = _colors(upper)
    values["lower_type"] = _first(lower, _LOWER_TYPES)
    values["lower_length"] = ("short" if values["lower_type"] == "shorts" or _has(lower, "short") else
                              "long" if values["lower_type"] in ("jeans", "trousers") or _has(lower, "long") else UNKNOWN)
    values["lower_colors"] = _colors(lower)
    values["shoes"] = _first(shoes, _SHOES) if shoes else UNKNOWN
    values["shoe_color"] = (_colors(shoes) or [UNKNOWN])[0]
    items = _items(attrs.get("accessories"))
    others = []
    for bag in _BAGS:
        values[bag] = "no" if items or attrs.get("accessories") is not None else UNKNOWN
    for item in items:
        kind = _first(item, _BAGS)
        if kind != UNKNOWN and values[kind] != "yes":
            values[kind], values[f"{kind}_color"] = "yes", (_colors(item) or [UNKNOWN])[0]
        elif _has(item, "hat") or _has(item, "cap") or _has(item, "beanie"):
            values["hat"] = "yes"
        elif _has(item, "sunglasses"):
            values["glasses"] = "sunglasses"
        elif _has(item, "glasses"):
            values["glasses"] = "glasses"
        elif kind == UNKNOWN:
            others.append(item)
    if items or attrs.get("accessories") is not None:
        values["hat"] = values["hat"] if values["hat"] == "yes" else "no"
        values["glasses"] = values["glasses"] if values["glasses"] != UNKNOWN else "no"
    values["other_accessories"] = others
    values["posture"] = _first(_text(attrs.get("posture")), _POSTURES)
    values["action"] = _first(_text(attrs.get("actions")), _ACTIONS)
    values["description"] = str(attrs.get("description") or "")
    if include_sensitive:
        ethnicity = _text(attrs.get("ethnicity"))
        values["ethnicity"] = next((e for e in sorted(_ETHNICITIES, key=len, reverse=True) if _has(ethnicity, e)),
                                   UNKNOWN)
    return schema(**values).model_dump()
