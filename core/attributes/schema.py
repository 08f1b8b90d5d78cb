"""The attribute schema of one person, as pydantic models.

One :class:`PersonAttributes` describes what is visible of one person in one
view (or, after merging, of one identity). Every categorical field allows
``"unknown"``; colours come from :data:`COLORS`, which covers Market-1501's 8
upper and 9 lower colours plus brown, pink, purple and orange. Sensitive
attributes (ethnicity) exist only in :class:`SensitivePersonAttributes`,
used when the caller opts in.

Example::

    from person_finder.core.attributes.schema import attribute_schema, unknown_attributes
    schema = attribute_schema(include_sensitive=False)
    attrs = unknown_attributes(schema).model_copy(update={"upper_colors": ["white"], "shoulder_bag": "yes"})
    attrs.model_dump()
"""

from __future__ import annotations

import typing
from typing import Literal

from pydantic import BaseModel, Field

UNKNOWN = "unknown"

#: Colour palette (Market-1501 spells grey "gray").
COLORS = ("black", "white", "red", "purple", "yellow", "gray", "blue", "green", "pink", "brown", "orange")

Color = Literal["black", "white", "red", "purple", "yellow", "gray", "blue", "green", "pink", "brown", "orange",
                "unknown"]
YesNo = Literal["yes", "no", "unknown"]


class PersonAttributes(BaseModel):
    """What is visible of one person; ``unknown`` where it cannot be seen."""

    gender: Literal["male", "female", "unknown"] = Field(description="apparent gender presentation")
    age_group: Literal["child", "teenager", "adult", "senior", "unknown"]
    hair_length: Literal["short", "long", "bald", "unknown"]
    upper_type: Literal["t-shirt", "shirt", "sweater", "jacket", "coat", "dress", "vest", "other", "unknown"]
    sleeve_length: Literal["long", "short", "sleeveless", "unknown"]
    upper_colors: list[Color] = Field(description="colours of the upper-body clothing, main colour first")
    lower_type: Literal["trousers", "jeans", "shorts", "skirt", "dress", "other", "unknown"]
    lower_length: Literal["long", "short", "unknown"] = Field(description="long: below the knee")
    lower_colors: list[Color] = Field(description="colours of the lower-body clothing, main colour first")
    shoes: Literal["sneakers", "boots", "sandals", "formal", "other", "unknown"]
    shoe_color: Color
    hat: YesNo
    glasses: Literal["no", "glasses", "sunglasses", "unknown"]
    backpack: YesNo
    backpack_color: Color
    handbag: YesNo = Field(description="a bag carried in the hand")
    handbag_color: Color
    shoulder_bag: YesNo = Field(description="a bag on a strap over the shoulder or across the body")
    shoulder_bag_color: Color
    other_accessories: list[str] = Field(description="other visible items, e.g. umbrella, phone, scarf, suitcase")
    posture: Literal["standing", "sitting", "lying", "crouching", "unknown"]
    action: Literal["walking", "running", "standing still", "cycling", "talking on phone", "carrying something",
                    "other", "unknown"]
    description: str = Field(description="one sentence stating only what is visible, no guesses")


class SensitivePersonAttributes(PersonAttributes):
    """:class:`PersonAttributes` plus sensitive attributes; only used on explicit opt-in."""

    ethnicity: Literal["asian", "black", "hispanic", "middle eastern", "south asian", "white", "other", "unknown"]


#: Attributes that are present or absent; merged with the "seen in enough views" rule.
ACCESSORY_FIELDS = ("hat", "glasses", "backpack", "handbag", "shoulder_bag")
#: The colour belonging to each bag.
BAG_COLOR_FIELDS = {"backpack": "backpack_color", "handbag": "handbag_color", "shoulder_bag": "shoulder_bag_color"}
#: List-valued attributes.
LIST_FIELDS = ("upper_colors", "lower_colors", "other_accessories")
#: Free text, not voted on.
TEXT_FIELDS = ("description",)


def attribute_schema(include_sensitive=False):
    """The pydantic model to request: sensitive fields only when ``include_sensitive``."""
    return SensitivePersonAttributes if include_sensitive else PersonAttributes


def allowed_values(schema, field):
    """The allowed values of a categorical (or list-of-categorical) field, else None.

    Example::

        allowed_values(PersonAttributes, "hat")   # ('yes', 'no', 'unknown')
    """
    annotation = schema.model_fields[field].annotation
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    return None


def categorical_fields(schema):
    """Single-valued categorical fields of ``schema``, in declaration order."""
    return [f for f in schema.model_fields if f not in LIST_FIELDS + TEXT_FIELDS]


def unknown_attributes(schema=PersonAttributes):
    """A record where nothing is known."""
    values = {f: ([] if f in LIST_FIELDS else ("" if f in TEXT_FIELDS else UNKNOWN)) for f in schema.model_fields}
    return schema(**values)
