"""Each stage consumes what the previous one wrote: generate -> merge -> captions -> training data, and reruns."""

import os

from person_finder.core import contract
from person_finder.core.attributes.gemini import generate_attributes
from person_finder.core.attributes.merge import merge_attributes
from person_finder.core.training.data import items_from_samples
from person_finder.testing import synthetic
from person_finder.testing.fake_gemini import FAST_CLIENT, add_people, spec_answer


def test_training_captions_come_from_the_merged_attributes_gemini_wrote(dataset, fake, test_root):
    specs = [synthetic.PersonSpec("red", "blue", bag="backpack", bag_color="black"),
             synthetic.PersonSpec("white", "black", bag="shoulder bag", bag_color="brown", skirt=True)]
    keys = add_people(dataset, os.path.join(test_root, "joints", dataset.name), specs, views=3)
    fake.answers.update({k: spec_answer(s) for k, s in keys.items()})
    generate_attributes(dataset, base_url=fake.base_url, **FAST_CLIENT)
    merge_attributes(dataset)
    texts = {it.person_id: it.texts for it in items_from_samples(dataset)}
    assert "red top and blue trousers" in texts[0] and "a person carrying a black backpack" in texts[0]
    assert "white top and black skirt" in texts[1] and "a person carrying a brown shoulder bag" in texts[1]


def test_merge_keeps_a_users_description_and_reruns_identically(dataset, test_root):
    from person_finder.core.attributes.store import to_document

    specs = synthetic.random_specs(2, seed=4)
    add_people(dataset, os.path.join(test_root, "joints-desc", dataset.name), specs, views=2)
    dataset.set_values(contract.ATTRIBUTES_FIELD,
                       [to_document(spec_answer(specs[p])) for p in dataset.values("person_id")], dynamic=True)
    mine = dataset.match({"person_id": 0}).first()
    mine[contract.DESCRIPTION_FIELD] = "my own words"
    mine.save()
    first = merge_attributes(dataset)
    assert dataset[mine.id][contract.DESCRIPTION_FIELD] == "my own words"
    others = dataset.match({"_id": {"$ne": mine._id}}).values(contract.DESCRIPTION_FIELD)
    assert all(specs[0].upper_color in t or specs[1].upper_color in t for t in others)
    assert first["descriptions_kept"] == 1 and first["descriptions_written"] == 3
    before = dataset.values([contract.DESCRIPTION_FIELD, contract.AGREEMENT_FIELD])
    second = merge_attributes(dataset)  # its own texts are rewritten, the user's still kept
    assert dataset.values([contract.DESCRIPTION_FIELD, contract.AGREEMENT_FIELD]) == before
    assert {k: v for k, v in second.items()} == first
    merge_attributes(dataset, overwrite_descriptions=True)
    assert dataset[mine.id][contract.DESCRIPTION_FIELD] != "my own words"


def test_a_prototype_dataset_loaded_from_a_hub_folder_converts_once_and_flows(test_root):
    import fiftyone as fo

    from person_finder.core.attributes.audit import audit_attributes
    from person_finder.core.curation.hub import load_hub_dataset
    from person_finder.core.curation.prototype import convert_prototype_dataset
    from person_finder.testing.prototype import prototype_attributes, write_prototype_hub_folder

    specs = [synthetic.PersonSpec("red", "blue", bag="backpack", bag_color="black"),
             synthetic.PersonSpec("white", "black", bag="shoulder bag", bag_color="brown", skirt=True),
             synthetic.PersonSpec("green", "gray", hat=True), synthetic.PersonSpec("yellow", "black")]
    folder, truth = write_prototype_hub_folder(os.path.join(test_root, "proto-joints"), specs, images=2)
    ds = load_hub_dataset(folder, name=f"proto-joints-{os.getpid()}")
    try:
        assert isinstance(ds.get_field("attributes"), fo.DictField) and ds.first()["person_id"] == "p0001"
        originals = ds.values("attributes")
        import pytest

        for stage in (merge_attributes, lambda d: generate_attributes(d, api_key="k", overwrite=True)):
            with pytest.raises(ValueError, match="convert_prototype_dataset"):  # before the conversion: clear
                stage(ds)
        assert ds.values("attributes") == originals and not ds.list_runs()
        out = convert_prototype_dataset(ds)
        assert out["attributes_converted"] == 8 and out["identities"] == 4 and not out["already_converted"]
        assert ds.values("prototype_attributes") == originals  # lossless
        assert ds.values("source_person_id")[:2] == ["p0001", "p0001"] and sorted(ds.distinct("person_id")) == [1, 2, 3, 4]
        assert ds.distinct("camera_id") == [1, 2]
        before = ds.values(["person_id", "attributes", "tags"])
        assert convert_prototype_dataset(ds)["already_converted"] and ds.values(["person_id", "attributes", "tags"]) == before
        merge_attributes(ds)
        assert ds.values("description") == [synthetic.describe(s, k) for s in specs for k in range(2)]  # kept
        texts = {it.person_id: it.texts for it in items_from_samples(ds)}
        assert "red top and blue trousers" in texts[1] and "a person carrying a black backpack" in texts[1]
        assert "a person carrying a brown shoulder bag" in texts[2] and "a person wearing a hat" in texts[3]
        report = audit_attributes(ds, field=contract.MERGED_ATTRIBUTES_FIELD, gt_field="prototype_attributes")
        assert report["mean_accuracy"] == 1.0 and report["samples"] == 8
        assert prototype_attributes(specs[0])["clothing"]["upper_body"].startswith("Red")
    finally:
        ds.delete()


def test_converting_a_dataset_that_is_not_in_the_prototype_format_changes_nothing(dataset, test_root):
    import pytest

    from person_finder.core.curation.prototype import convert_prototype_dataset

    add_people(dataset, os.path.join(test_root, "not-proto", dataset.name), synthetic.random_specs(1, seed=2), views=1)
    with pytest.raises(ValueError, match="not a plain dict field"):
        convert_prototype_dataset(dataset)
    assert "prototype_attributes" not in dataset.get_field_schema() and not dataset.info


def test_merging_by_track_id_keeps_videos_apart(dataset, test_root):
    import pytest

    from person_finder.core.attributes.store import to_document

    specs = [synthetic.PersonSpec("red", "blue"), synthetic.PersonSpec("white", "black")]
    add_people(dataset, os.path.join(test_root, "joints-tracks", dataset.name), specs, views=2)
    pids = dataset.values("person_id")
    dataset.set_values("track_id", [1] * len(pids))  # each video's tracker starts at 1
    dataset.set_values("video_id", [f"video-{p}" for p in pids])
    dataset.set_values(contract.ATTRIBUTES_FIELD, [to_document(spec_answer(specs[p])) for p in pids], dynamic=True)
    with pytest.raises(ValueError, match="scope_field"):
        merge_attributes(dataset, group_field="track_id")
    assert not dataset.has_field(contract.MERGED_ATTRIBUTES_FIELD)
    out = merge_attributes(dataset, group_field="track_id", scope_field="video_id")
    assert out["identities"] == 2 and out["identities_with_conflicts"] == 0
    assert dataset.values("merged_attributes.upper_colors") == [[specs[p].upper_color] for p in pids]
    assert merge_attributes(dataset, group_field="track_id", scope_field=False)["identities"] == 1  # told: global


def test_run_records_of_a_patches_view_land_on_the_dataset(dataset, test_root):
    import fiftyone as fo

    from person_finder.core.attributes.store import save_run

    add_people(dataset, os.path.join(test_root, "joints-patches", dataset.name), synthetic.random_specs(1), views=1)
    sample = dataset.first()
    sample["persons"] = fo.Detections(detections=[fo.Detection(label="person", bounding_box=[0, 0, 1, 1])])
    sample.save()
    patches = dataset.to_patches("persons")
    save_run(patches, "on_patches", {"field": "attributes"}, {"done": 1})
    assert dataset.has_run("on_patches") and dataset.load_run_results("on_patches").done == 1


def test_evaluating_one_model_from_the_sdk_keeps_the_stored_comparison(tiny_siglip, test_root):
    import fiftyone.operators as foo

    from person_finder.core.training.evaluation import load_evaluation
    from person_finder.testing.people_training import write_people_dataset

    people = write_people_dataset(f"joints-eval-{os.getpid()}", os.path.join(test_root, "joints-eval"),
                                  synthetic.random_specs(8, seed=6), images=2)
    try:
        def evaluate(**params):
            return foo.execute_operator(contract.PLUGIN_NAME + "/evaluate_matchers", ctx=dict(
                view=people.view(), params=params)).result

        both = evaluate(zero_shot=tiny_siglip, finetuned=tiny_siglip)
        assert [r["model"] for r in both["rows"]] == ["zero-shot", "fine-tuned"]
        again = evaluate(finetuned=tiny_siglip, zero_shot="")  # only the new model
        assert [r["model"] for r in again["rows"]] == ["zero-shot", "fine-tuned"]
        assert [r["model"] for r in load_evaluation(people)] == ["zero-shot", "fine-tuned"]
        assert again["rows"][0] == both["rows"][0]
        assert "target_reached" in again["rows"][1] and len(again["pr_curve"]) == 2
    finally:
        people.delete()


def test_a_zero_shot_run_with_nothing_to_do_keeps_the_gemini_record(dataset, fake, test_root, matcher):
    from person_finder.core.attributes.zero_shot import zero_shot_attributes

    keys = add_people(dataset, os.path.join(test_root, "joints-noop", dataset.name), synthetic.random_specs(2), views=1)
    fake.answers.update({k: spec_answer(s) for k, s in keys.items()})
    generate_attributes(dataset, base_url=fake.base_url, **FAST_CLIENT)
    record = dataset.get_run_info(contract.ATTRIBUTES_RUN_KEY).config.serialize()
    assert zero_shot_attributes(dataset, matcher=matcher)["todo"] == 0
    assert generate_attributes(dataset, base_url=fake.base_url, **FAST_CLIENT)["todo"] == 0
    assert dataset.get_run_info(contract.ATTRIBUTES_RUN_KEY).config.serialize() == record
    assert record["provider"] == "gemini" and fake.count() == 2
