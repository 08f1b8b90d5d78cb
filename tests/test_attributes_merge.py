"""Multi-view merge on hand-made conflicting views, zero-shot attributes, and the Market-1501 audit."""

import os

import pytest

import fiftyone as fo

from fake_gemini import DEFAULT_ANSWER, add_people, spec_answer
from person_finder.core import contract
from person_finder.core.attributes.audit import audit_attributes, format_table, to_market_codes
from person_finder.core.attributes.merge import merge_attributes, merge_views, template_description
from person_finder.core.attributes.schema import COLORS, PersonAttributes, unknown_attributes
from person_finder.core.attributes.store import to_document
from person_finder.core.attributes.zero_shot import zero_shot_attributes
from person_finder.testing import synthetic


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


def test_merge_attributes_writes_merged_fields_to_every_view_and_keeps_per_view(dataset, test_root):
    specs = synthetic.random_specs(2, seed=1)
    add_people(dataset, os.path.join(test_root, "merge", dataset.name), specs, views=3)
    answers = []
    for sample in dataset:
        answer = spec_answer(specs[sample["person_id"]])
        if sample["person_id"] == 0 and sample["camera_id"] == 1:
            answer = {**answer, "upper_colors": ["orange"], "gender": "unknown"}  # one disagreeing view
        answers.append(to_document(answer, provider="test"))
    dataset.set_values("attributes", answers, dynamic=True)
    loner = dataset.add_sample(fo.Sample(filepath=dataset.first().filepath))  # no person_id: left alone
    out = merge_attributes(dataset)
    assert dataset[loner]["merged_attributes"] is None
    assert out["identities"] == 2 and out["views"] == 6 and out["identities_with_conflicts"] == 1
    person0 = dataset.match({"person_id": 0})
    assert person0.values("merged_attributes.upper_colors") == [[specs[0].upper_color]] * 3
    assert person0.values("attributes.upper_colors")[0] == ["orange"]  # per-view attributes kept
    conflicts = person0.first()["merged_attributes"][contract.CONFLICTS_ATTR]
    assert set(conflicts) == {"upper_colors"}
    assert conflicts["upper_colors"]["orange"] == [person0.match({"camera_id": 1}).first().id]
    assert len(set(person0.values("attribute_agreement"))) == 1 and person0.first()["attribute_agreement"] < 1.0
    assert dataset.match({"person_id": 1}).values("attribute_agreement") == [1.0] * 3
    assert person0.first()["description"] == person0.first()["merged_attributes"]["description"]
    assert specs[0].upper_color in person0.first()["description"]
    assert dataset.load_run_results(contract.MERGE_RUN_KEY).identities == 2
    with pytest.raises(ValueError, match="track_id"):
        merge_attributes(dataset, group_field="track_id")


def test_audit_against_market_ground_truth(dataset, test_root):
    specs = synthetic.random_specs(3, seed=2)
    add_people(dataset, os.path.join(test_root, "audit", dataset.name), specs, views=2)
    answers = [to_document(spec_answer(specs[pid])) for pid in dataset.values("person_id")]
    dataset.set_values("attributes", answers, dynamic=True)
    report = audit_attributes(dataset)
    rows = {r["attribute"]: r for r in report["rows"]}
    assert set(rows) == set(synthetic.market_attributes(specs[0]))  # all 27 Market attributes
    assert report["mean_accuracy"] == 1.0 and rows["upblack"]["compared"] == 6
    wrong = [to_document({**spec_answer(specs[pid]), "gender": "male" if specs[pid].gender == "female" else "female",
                          "hat": "unknown"}) for pid in dataset.values("person_id")]
    dataset.set_values("attributes", wrong, dynamic=True)
    rows = {r["attribute"]: r for r in audit_attributes(dataset)["rows"]}
    assert rows["gender"]["accuracy"] == 0.0
    assert rows["hat"]["unknown"] == 6 and rows["hat"]["accuracy"] is None
    assert "gender" in format_table(audit_attributes(dataset))
    assert to_market_codes(DEFAULT_ANSWER)["downblack"] == 2
    with pytest.raises(ValueError, match="market_attributes"):
        audit_attributes(dataset, gt_field="market_attributes_missing")


def test_zero_shot_attributes_follow_the_schema_with_confidences(dataset, test_root, matcher):
    add_people(dataset, os.path.join(test_root, "zero-shot", dataset.name), synthetic.random_specs(2, seed=3), views=2)
    out = zero_shot_attributes(dataset, matcher=matcher, batch_size=3)
    assert out["attributed"] == 4 and out["failed"] == 0
    for sample in dataset:
        values = {f: sample["attributes"][f] for f in PersonAttributes.model_fields}
        PersonAttributes(**values)  # valid against the same schema
        assert set(values["upper_colors"]) <= set(COLORS)
        assert 0.0 <= sample["attributes"]["confidence"]["gender"] <= 1.0
        assert sample["attributes"]["provider"] == "zero-shot"
    assert zero_shot_attributes(dataset, matcher=matcher)["todo"] == 0  # resumable: nothing left
    assert merge_attributes(dataset)["identities"] == 2  # the merge accepts zero-shot records
