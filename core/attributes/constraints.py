"""A text query as attribute constraints, and how well a person's attributes satisfy them.

Constraints are a plain, editable dict ``{attribute: value}`` over the
schema's categorical attributes (:func:`constrainable_fields`), e.g.
``{"upper_colors": "white", "upper_type": "t-shirt", "shoulder_bag": "yes",
"shoulder_bag_color": "brown"}``. They come from :func:`parse_query`:
Gemini structured output (:func:`parse_with_gemini`) when a key is set, else
:func:`parse_offline`, a parser over the schema's own vocabulary (colours
attach to the clothing or bag they precede; "without" / "no" negate an
accessory). :func:`format_constraints` / :func:`read_constraints` turn them
into the one-line text a form shows and back, checking every name and value.

:func:`attribute_match` scores a person's (merged) attributes in [-1, 1]:
each constraint counts +confidence when satisfied, -confidence when the
attribute is known and different, 0 when it is ``unknown`` (never a
contradiction).

Example::

    from person_finder.core.attributes.constraints import attribute_match, parse_query
    constraints = parse_query("a woman in a white t-shirt with a brown shoulder bag", parser="offline")
    # {'gender': 'female', 'upper_colors': 'white', 'upper_type': 't-shirt', 'shoulder_bag': 'yes',
    #  'shoulder_bag_color': 'brown'}
    attribute_match(constraints, dataset.first().persons.detections[0].merged_attributes)
"""

from __future__ import annotations

import logging
import re
import typing

from .. import defaults
from .schema import BAG_COLOR_FIELDS, LIST_FIELDS, TEXT_FIELDS, UNKNOWN, PersonAttributes, allowed_values

logger = logging.getLogger(__name__)

#: Words naming a colour of the palette (synonyms included).
COLOR_WORDS = {**{c: c for c in allowed_values(PersonAttributes, "shoe_color") if c != UNKNOWN},
               "grey": "gray", "navy": "blue", "maroon": "red", "violet": "purple", "beige": "brown",
               "tan": "brown", "khaki": "brown", "golden": "yellow", "silver": "gray", "dark": None, "light": None}
#: Clothing words: (part, type value or None). Part "upper" / "lower" / "both" (a dress).
CLOTHING_WORDS = {
    "top": ("upper", None), "shirt": ("upper", "shirt"), "blouse": ("upper", "shirt"), "t-shirt": ("upper", "t-shirt"),
    "tshirt": ("upper", "t-shirt"), "tee": ("upper", "t-shirt"), "sweater": ("upper", "sweater"),
    "jumper": ("upper", "sweater"), "hoodie": ("upper", "sweater"), "sweatshirt": ("upper", "sweater"),
    "jacket": ("upper", "jacket"), "coat": ("upper", "coat"), "vest": ("upper", "vest"),
    "tank": ("upper", "vest"), "dress": ("both", "dress"), "trousers": ("lower", "trousers"),
    "pants": ("lower", "trousers"), "leggings": ("lower", "trousers"), "jeans": ("lower", "jeans"),
    "shorts": ("lower", "shorts"), "skirt": ("lower", "skirt"), "bottoms": ("lower", None),
}
#: Accessories: word -> (attribute, value when present).
ACCESSORY_WORDS = {
    "backpack": ("backpack", "yes"), "rucksack": ("backpack", "yes"), "handbag": ("handbag", "yes"),
    "purse": ("handbag", "yes"), "shoulder bag": ("shoulder_bag", "yes"), "messenger bag": ("shoulder_bag", "yes"),
    "crossbody bag": ("shoulder_bag", "yes"), "hat": ("hat", "yes"), "cap": ("hat", "yes"),
    "beanie": ("hat", "yes"), "sunglasses": ("glasses", "sunglasses"), "glasses": ("glasses", "glasses"),
    "spectacles": ("glasses", "glasses"),
}
SHOE_WORDS = {"sneakers": "sneakers", "trainers": "sneakers", "boots": "boots", "sandals": "sandals",
              "formal shoes": "formal", "shoes": None}
#: Single words that set one attribute.
WORD_VALUES = {
    "woman": ("gender", "female"), "women": ("gender", "female"), "lady": ("gender", "female"),
    "female": ("gender", "female"), "girl": ("gender", "female"), "man": ("gender", "male"),
    "men": ("gender", "male"), "guy": ("gender", "male"), "male": ("gender", "male"), "boy": ("gender", "male"),
    "child": ("age_group", "child"), "kid": ("age_group", "child"), "teenager": ("age_group", "teenager"),
    "teen": ("age_group", "teenager"), "adult": ("age_group", "adult"), "elderly": ("age_group", "senior"),
    "senior": ("age_group", "senior"), "bald": ("hair_length", "bald"), "sleeveless": ("sleeve_length", "sleeveless"),
    "short-sleeved": ("sleeve_length", "short"), "long-sleeved": ("sleeve_length", "long"),
    "running": ("action", "running"), "walking": ("action", "walking"), "cycling": ("action", "cycling"),
    "sitting": ("posture", "sitting"), "crouching": ("posture", "crouching"), "lying": ("posture", "lying"),
    "standing": ("posture", "standing"),
}
#: Two-word phrases that set one attribute.
PHRASE_VALUES = {
    "long hair": ("hair_length", "long"), "short hair": ("hair_length", "short"),
    "short sleeves": ("sleeve_length", "short"), "short sleeve": ("sleeve_length", "short"),
    "long sleeves": ("sleeve_length", "long"), "long sleeve": ("sleeve_length", "long"),
    "no sleeves": ("sleeve_length", "sleeveless"), "on phone": ("action", "talking on phone"),
    "the phone": ("action", "talking on phone"), "standing still": ("action", "standing still"),
    "old man": ("age_group", "senior"), "old woman": ("age_group", "senior"),
    "carrying something": ("action", "carrying something"),
}
NEGATIONS = ("without", "no", "not", "none")
#: Words a colour may skip on its way to the thing it colours ("red and white long-sleeved top").
COLOR_BRIDGE = {"and", "or", "long", "short", "long-sleeved", "short-sleeved", "sleeveless", "dark", "light",
                "coloured", "colored", "/", "-", "bright", "pale", "tank", "leather", "denim", "cotton"}


def constrainable_fields(schema=PersonAttributes):
    """The attributes a query can constrain: every categorical one (never free text or sensitive ones).

    Example::

        constrainable_fields()[:3]   # ['gender', 'age_group', 'hair_length']
    """
    return [f for f in PersonAttributes.model_fields if f in schema.model_fields
            and f not in TEXT_FIELDS + ("other_accessories",)]


def _tokens(text):
    text = text.lower().replace("t shirt", "t-shirt").replace("short sleeved", "short-sleeved")
    text = text.replace("long sleeved", "long-sleeved")
    return re.findall(r"[a-z]+(?:-[a-z]+)*", text)


def _phrase(tokens, i):
    """The accessory / shoe / clothing key starting at token ``i`` (two words first) and its length."""
    for table in (ACCESSORY_WORDS, SHOE_WORDS):
        if i + 1 < len(tokens) and f"{tokens[i]} {tokens[i + 1]}" in table:
            return f"{tokens[i]} {tokens[i + 1]}", 2
    return tokens[i], 1


def parse_offline(query):
    """Constraints from the schema's own vocabulary, without a network call.

    Example::

        parse_offline("red top and blue trousers, no backpack")
        # {'upper_colors': 'red', 'lower_colors': 'blue', 'lower_type': 'trousers', 'backpack': 'no'}
    """
    tokens = _tokens(query)
    out, colors, negated_at = {}, [], -10

    def put(field, value):
        out.setdefault(field, value)

    i = 0
    while i < len(tokens):
        word = tokens[i]
        pair = f"{word} {tokens[i + 1]}" if i + 1 < len(tokens) else None
        key, length = _phrase(tokens, i)
        if word in NEGATIONS:
            negated_at = i
        if pair in PHRASE_VALUES:
            put(*PHRASE_VALUES[pair])
            i += 1 if tokens[i + 1] in WORD_VALUES else 2  # "old man": the man is a man too
            continue
        if word in COLOR_WORDS:
            if COLOR_WORDS[word]:
                colors.append(COLOR_WORDS[word])
        elif key in ACCESSORY_WORDS:
            field, value = ACCESSORY_WORDS[key]
            negative = i - negated_at <= 3
            put(field, "no" if negative else value)
            if colors and not negative and field in BAG_COLOR_FIELDS:
                put(BAG_COLOR_FIELDS[field], colors[0])
            colors, negated_at = [], -10
        elif key in SHOE_WORDS:
            if SHOE_WORDS[key]:
                put("shoes", SHOE_WORDS[key])
            if colors:
                put("shoe_color", colors[0])
            colors = []
        elif word in CLOTHING_WORDS:
            part, kind = CLOTHING_WORDS[word]
            for side in (("upper", "lower") if part == "both" else (part,)):
                if kind:
                    put(f"{side}_type", kind)
                if colors:
                    put(f"{side}_colors", colors[0])
            if word == "shorts":
                put("lower_length", "short")
            elif i and tokens[i - 1] in ("long", "short") and part == "lower":
                put("lower_length", tokens[i - 1])
            colors = []
        elif word in WORD_VALUES:
            put(*WORD_VALUES[word])
        elif word not in COLOR_BRIDGE:
            if colors:  # a colour followed by nothing it could colour: "dressed in white" -> the top
                put("upper_colors", colors[0])
            colors = []
        i += length
    if colors:
        put("upper_colors", colors[0])
    return {f: out[f] for f in constrainable_fields() if f in out}


def query_schema():
    """The pydantic model Gemini fills: every constrainable attribute, optional (null = not asked)."""
    from pydantic import create_model

    fields = {}
    for field in constrainable_fields():
        values = tuple(v for v in allowed_values(PersonAttributes, field) if v != UNKNOWN)
        fields[field] = (typing.Optional[typing.Literal[values]], None)
    return create_model("QueryConstraints", **fields)


PARSE_PROMPT = """A user searches surveillance footage for a person with this description:
"{query}"
Fill in only the attributes the description states; leave every other field null. Colours come from the
palette (the main colour of that garment or bag). A bag or accessory the description says is absent is "no"."""


def parse_with_gemini(query, api_key=None, model=defaults.GEMINI_MODEL, base_url=None, **caller_kwargs):
    """Constraints from Gemini structured output (retries and rate limits of :mod:`.gemini`).

    Example::

        parse_with_gemini("a man with a black backpack and sunglasses")
    """
    from .gemini import GeminiCaller, resolve_api_key

    caller = GeminiCaller(resolve_api_key(api_key), model=model, base_url=base_url, **caller_kwargs)
    answer = caller.generate([PARSE_PROMPT.format(query=query.replace('"', "'"))], query_schema())
    return {f: v for f, v in answer.model_dump().items() if v is not None}


def parse_query(query, parser=defaults.QUERY_PARSER, api_key=None, **gemini_kwargs):
    """``query`` as constraints: ``parser`` "offline", "gemini", or "auto" (Gemini when a key is set, else offline).

    With "auto", a Gemini failure (after its retries) falls back to the
    offline parse and is logged; with "gemini" it is raised.

    Example::

        parse_query("red top and blue trousers")                # offline without GEMINI_API_KEY
        parse_query("red top and blue trousers", parser="gemini", api_key="...")
    """
    import os

    from .. import contract

    if parser not in defaults.QUERY_PARSERS:
        raise ValueError(f"parser={parser!r}; use one of {defaults.QUERY_PARSERS}")
    if not isinstance(query, str) or not query.strip():
        raise ValueError("the query is empty: describe the person, e.g. 'red top and blue trousers'")
    if parser == "offline" or (parser == "auto" and not (api_key or os.environ.get(contract.GEMINI_SECRET))):
        return parse_offline(query)
    if parser == "gemini":
        return parse_with_gemini(query, api_key=api_key, **gemini_kwargs)
    try:
        return parse_with_gemini(query, api_key=api_key, **gemini_kwargs)
    except Exception as exc:  # noqa: BLE001 - auto mode: the offline parse is still a useful answer
        logger.warning("Gemini query parse failed (%s); using the offline parse", type(exc).__name__)
        return parse_offline(query)


def format_constraints(constraints):
    """The one-line text of constraints that a form shows and a user edits.

    Example::

        format_constraints({"upper_colors": "red", "backpack": "no"})   # 'upper_colors=red, backpack=no'
    """
    return ", ".join(f"{field}={value}" for field, value in (constraints or {}).items())


def read_constraints(constraints, schema=PersonAttributes):
    """Checked constraints from a dict or from :func:`format_constraints` text; a clear error on bad names or values.

    Example::

        read_constraints("upper_colors=red, hat=no")   # {'upper_colors': 'red', 'hat': 'no'}
    """
    if constraints is None:
        return {}
    if isinstance(constraints, str):
        pairs = [p.strip() for p in re.split(r"[,;\n]", constraints) if p.strip()]
        parsed = {}
        for pair in pairs:
            if "=" not in pair:
                raise ValueError(f"constraint {pair!r} is not attribute=value, e.g. 'upper_colors=red'")
            field, value = (part.strip() for part in pair.split("=", 1))
            parsed[field] = value
        constraints = parsed
    fields = constrainable_fields(schema)
    out = {}
    for field, value in dict(constraints).items():
        if field not in fields:
            raise ValueError(f"unknown attribute {field!r} in the constraints; use one of {fields}")
        allowed = [v for v in allowed_values(schema, field) if v != UNKNOWN]
        if value not in allowed:
            raise ValueError(f"{field}={value!r} is not allowed; use one of {allowed}")
        out[field] = value
    return out


def _known(value):
    return value not in (None, "", UNKNOWN)


def constraint_scores(constraints, attributes):
    """``{attribute: score}`` per constraint: +confidence satisfied, -confidence contradicted, 0 unknown.

    ``attributes`` is a stored attributes document (or its dict) with an
    optional ``confidence`` sub-document; None scores every constraint 0.

    Example::

        constraint_scores({"hat": "yes"}, {"hat": "no", "confidence": {"hat": 0.8}})   # {'hat': -0.8}
    """
    if attributes is None:
        return {field: 0.0 for field in constraints}
    doc = attributes if isinstance(attributes, dict) else attributes.to_dict()
    confidence = doc.get("confidence") or {}
    scores = {}
    for field, wanted in constraints.items():
        value = doc.get(field)
        weight = float(confidence.get(field) if confidence.get(field) is not None else 1.0)
        if field in LIST_FIELDS:
            known = [v for v in value or [] if _known(v)]
            scores[field] = 0.0 if not known else (weight if wanted in known else -weight)
        else:
            scores[field] = 0.0 if not _known(value) else (weight if value == wanted else -weight)
    return scores


def attribute_match(constraints, attributes):
    """Mean of :func:`constraint_scores` in [-1, 1] (0 without constraints or attributes).

    Example::

        attribute_match({"upper_colors": "red", "hat": "yes"}, {"upper_colors": ["red"], "hat": "unknown"})   # 0.5
    """
    scores = constraint_scores(constraints, attributes)
    return sum(scores.values()) / len(scores) if scores else 0.0


def contradicted(constraints, attributes, hard):
    """The attributes of ``hard`` (names, or True for all) that ``attributes`` contradicts; unknown never does.

    Example::

        contradicted({"hat": "yes"}, {"hat": "no"}, hard=True)   # ['hat']
    """
    fields = list(constraints) if hard is True else list(hard or [])
    scores = constraint_scores({f: constraints[f] for f in fields if f in constraints}, attributes)
    return [f for f, score in scores.items() if score < 0]
