"""Queries with known attribute constraints, for the offline parser's tests and the attribute-search benchmark.

Example::

    from person_finder.testing.attribute_queries import value_queries
    value_queries()[0]     # ('gender', 'male', 'a man walking by')
"""

from __future__ import annotations

#: How a plain query says each value; ``{}`` is the value (or its word from VALUE_WORDS).
FIELD_PHRASES = {
    "gender": "a {} walking by", "age_group": "{}", "hair_length": "a person with {}", "upper_type": "someone in a {}",
    "sleeve_length": "a person with {}", "upper_colors": "a {} top", "lower_type": "someone wearing {}",
    "lower_length": "a person in {}", "lower_colors": "{} trousers", "shoes": "a person in {}",
    "shoe_color": "{} shoes", "hat": "a person {} a hat", "glasses": "a person {}",
    "backpack": "a person {} a backpack",
    "backpack_color": "a {} backpack", "handbag": "a person {} a handbag", "handbag_color": "a {} handbag",
    "shoulder_bag": "a person {} a shoulder bag", "shoulder_bag_color": "a {} shoulder bag",
    "posture": "a person {}", "action": "a person {}",
}
VALUE_WORDS = {
    "gender": {"male": "man", "female": "woman"},
    "age_group": {"child": "a child", "teenager": "a teenager", "adult": "an adult", "senior": "an elderly person"},
    "hair_length": {"short": "short hair", "long": "long hair", "bald": "a bald head"},
    "sleeve_length": {"long": "long sleeves", "short": "short sleeves", "sleeveless": "no sleeves"},
    "lower_type": {"skirt": "a skirt", "dress": "a dress"},
    "lower_length": {"long": "long trousers", "short": "shorts"},
    "shoes": {"formal": "formal shoes"},
    "hat": {"yes": "wearing", "no": "without"},
    "glasses": {"no": "without glasses", "glasses": "wearing glasses", "sunglasses": "wearing sunglasses"},
    "backpack": {"yes": "carrying", "no": "without"}, "handbag": {"yes": "carrying", "no": "without"},
    "shoulder_bag": {"yes": "carrying", "no": "without"},
    "posture": {"lying": "lying down"},
    "action": {"talking on phone": "talking on the phone"},
}
#: Values no plain phrase names ("other").
SKIPPED_VALUES = ("other", "unknown")


def value_queries():
    """``[(attribute, value, query)]``: one query per value of every constrainable attribute."""
    from ..core.attributes.constraints import constrainable_fields
    from ..core.attributes.schema import PersonAttributes, allowed_values

    out = []
    for field in constrainable_fields():
        for value in allowed_values(PersonAttributes, field):
            if value not in SKIPPED_VALUES:
                word = VALUE_WORDS.get(field, {}).get(value, value)
                out.append((field, value, FIELD_PHRASES[field].format(word)))
    return out
