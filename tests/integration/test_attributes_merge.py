"""Multi-view merge on hand-made conflicting views, zero-shot attributes, and the Market-1501 audit."""

import os

import pytest

import fiftyone as fo

from person_finder.testing.fake_gemini import DEFAULT_ANSWER, add_people, spec_answer
from person_finder.core import contract
from person_finder.core.attributes.audit import audit_attributes, format_table, to_market_codes
from person_finder.core.attributes.merge import merge_attributes
from person_finder.core.attributes.schema import COLORS, PersonAttributes
from person_finder.core.attributes.store import to_document
from person_finder.core.attributes.zero_shot import zero_shot_attributes
from person_finder.testing import synthetic


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
