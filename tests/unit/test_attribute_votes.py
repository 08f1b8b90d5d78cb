"""Multi-view merge rules on hand-made views: confidence-weighted votes, accessories, colours, the template."""

import pytest
from person_finder.core.attributes.merge import merge_views, template_description
from person_finder.core.attributes.schema import unknown_attributes


def view(**values):
    return {**unknown_attributes().model_dump(), **values}


def test_vote_is_confidence_weighted_and_ignores_unknown():
    views = [view(gender="male"), view(gender="female"), view(gender="female"), view(gender="unknown")]
    assert merge_views(views).values["gender"] == "female"
    conf = [{"gender": 0.95}, {"gender": 0.3}, {"gender": 0.3}, {"gender": 1.0}]
    merged = merge_views(views, conf)
    assert merged.values["gender"] == "male"
    assert merged.confidence["gender"] == pytest.approx(0.95 / 1.55, abs=1e-3)
    assert merged.conflicts["gender"] == {"male": [0], "female": [1, 2]}  # the unknown view is not a conflict
    assert merge_views([view(), view()]).values["gender"] == "unknown"


def test_accessories_need_enough_views_and_bag_colour_comes_from_the_views_that_see_it():
    front = view(backpack="no", backpack_color="unknown")
    back = view(backpack="yes", backpack_color="red")
    back_dark = view(backpack="yes", backpack_color="black")
    merged = merge_views([front, front, front, back, back_dark, back])
    assert merged.values["backpack"] == "yes"  # 3 of 6 views see it: more than the 2 needed
    assert merged.values["backpack_color"] == "red"
    assert merged.conflicts["backpack"] == {"yes": [3, 4, 5], "no": [0, 1, 2]}
    assert merge_views([front, front, back]).values["backpack"] == "no"  # one glimpse is not enough
    assert merge_views([front, front, back], accessory_min_views=1).values["backpack"] == "yes"
    assert merge_views([back]).values["backpack"] == "yes"  # a single view needs only itself
    assert merge_views([front, back]).values["backpack_color"] == "unknown"  # not present -> no colour
    items = merge_views([view(other_accessories=["Umbrella"]), view(other_accessories=["umbrella", "phone"])])
    assert items.values["other_accessories"] == ["umbrella"]


def test_colours_primary_vote_plus_colours_seen_by_half_the_views_and_agreement():
    views = [view(upper_colors=["white", "black"]), view(upper_colors=["white"]), view(upper_colors=["blue", "black"]),
             view(upper_colors=["unknown"])]
    merged = merge_views(views)
    assert merged.values["upper_colors"] == ["white", "black"]
    assert merged.conflicts["upper_colors"] == {"white": [0, 1], "blue": [2]}
    same = [view(gender="male", upper_colors=["red"]) for _ in range(3)]
    assert merge_views(same).agreement == 1.0 and merge_views(same).conflicts == {}
    assert merge_views(views).agreement < 1.0


def test_template_description_states_the_merged_facts():
    text = template_description(view(gender="female", upper_colors=["white"], upper_type="t-shirt",
                                     sleeve_length="short", lower_colors=["black"], lower_type="skirt",
                                     shoulder_bag="yes", shoulder_bag_color="brown", hat="yes"))
    assert text == ("a woman in a white short-sleeved t-shirt and a black skirt, carrying a brown shoulder bag, "
                    "wearing a hat")
    assert template_description(view()) == "a person"


def test_group_confidence_can_carry_the_views_own_confidence():
    from person_finder.core.attributes.merge import merge_groups
    from person_finder.core.attributes.store import to_document

    unsure = to_document({"upper_colors": ["red"], "hat": "yes"}, {"upper_colors": 0.4, "hat": 0.9})
    sure = to_document({"upper_colors": ["red"], "hat": "no"}, {"upper_colors": 0.8, "hat": 0.9})
    plain = merge_groups({"a": [("v1", unsure)]})["a"]
    scaled = merge_groups({"a": [("v1", unsure)]}, view_confidence=True)["a"]
    assert plain.confidence["upper_colors"] == 1.0 and scaled.confidence["upper_colors"] == 0.4
    both = merge_groups({"a": [("v1", unsure), ("v2", sure)]}, view_confidence=True)["a"]
    assert both.confidence["upper_colors"] == pytest.approx(1.0 * (0.4 + 0.8) / 2)
    assert both.values["hat"] == "no" and both.confidence["hat"] == pytest.approx(0.5 * 0.9)
