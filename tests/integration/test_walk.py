"""The whole pipeline through foo.execute_operator, with no glue code: from a Market-1501 folder and from a
dataset in the reference prototype's format loaded from a hub folder; every stage re-run is idempotent.

import -> dedupe -> leakage -> attributes (fake Gemini) -> merge -> audit -> stage and load -> fine-tune ->
evaluate (zero-shot and fine-tuned) -> index with the fine-tuned model -> search at the calibrated threshold.
"""

import hashlib
import os
import time

import fiftyone as fo
import fiftyone.operators as foo
import pytest

from person_finder.core import contract, defaults
from person_finder.core.models.matcher import matcher_info, matcher_threshold
from person_finder.core.training.data import items_from_samples
from person_finder.testing import synthetic
from person_finder.testing.fake_gemini import FakeGemini, spec_answer

URI = contract.PLUGIN_NAME + "/"
THRESHOLD = 0.002  # the tiny DINOv2's planted duplicates sit under it (see test_dedupe.py)


def run(name, dataset, **params):
    result = foo.execute_operator(URI + name, ctx=dict(view=dataset.view(), dataset=dataset.name,
                                                       params={"delegate": False, **params}))
    result.raise_exceptions()
    return result.result


@pytest.fixture()
def gemini(monkeypatch):
    with FakeGemini() as fake:
        monkeypatch.setenv(contract.GEMINI_SECRET, "AIzaTEST-walk-key")
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
        yield fake


def _answer_every_image(fake, paths_to_specs):
    for path, spec in paths_to_specs.items():
        with open(path, "rb") as f:
            fake.answers[hashlib.sha1(f.read()).hexdigest()] = spec_answer(spec)


_WHEN = ("finished", "timestamp", "version")


def _records(ds):
    """Every run record's config and results, without the times they were written."""
    def strip(d):
        return {k: v for k, v in d.items() if k not in _WHEN}

    return {key: (strip(ds.get_run_info(key).config.serialize()), strip(ds.load_run_results(key).serialize()))
            for key in ds.list_runs()}


def _state(ds):
    return (len(ds), ds.count_sample_tags(), sorted(ds.values("filepath")),
            ds.values([contract.MERGED_ATTRIBUTES_FIELD, contract.DESCRIPTION_FIELD]), _records(ds))


def _walk_from_curation(ds, gt_field, tiny_dinov2, tiny_siglip, tmp_path, specs, rerun_first=None):
    """dedupe -> leakage -> generate -> merge -> audit -> stage + load -> fine-tune -> evaluate -> index -> search."""
    timings = {}

    def stage(name, **params):
        started = time.time()
        out = run(name, ds, **params)
        timings[name] = round(time.time() - started, 2)
        return out

    dedupe = dict(threshold=THRESHOLD, model=tiny_dinov2, scope="identity")
    found = stage("find_near_duplicates", **dedupe)
    removed = stage("remove_near_duplicates", **dedupe)
    assert removed["num_removed"] == found["num_duplicates"] > 0
    leaks = stage("check_split_leakage", threshold=THRESHOLD, model=tiny_dinov2)
    assert leaks["num_in_several_splits"] == 0
    curated = (len(ds), ds.count_sample_tags())
    assert run("find_near_duplicates", ds, **dedupe)["num_duplicates"] == 0  # re-runs: nothing left to remove
    assert run("remove_near_duplicates", ds, **dedupe)["num_removed"] == 0
    assert run("check_split_leakage", ds, threshold=THRESHOLD, model=tiny_dinov2) == leaks
    assert (len(ds), ds.count_sample_tags()) == curated
    generated = stage("generate_person_attributes", overwrite=True)
    assert generated["failed"] == 0 and generated["attributed"] == len(ds)
    merged = stage("merge_person_attributes")
    assert merged["identities"] == len(ds.distinct(contract.PERSON_ID_FIELD))
    audit = stage("audit_person_attributes", field=contract.MERGED_ATTRIBUTES_FIELD, gt_field=gt_field)
    assert audit["mean_accuracy"] >= 0.9, audit

    staged = stage("publish_to_hub", repo_name="walk", staging_dir=str(tmp_path / "staged"))
    loaded = stage("load_from_hub", source=staged["staged"], dataset_name=ds.name + "-loaded")
    people = fo.load_dataset(loaded["dataset"])
    try:
        return _walk_from_training(people, tiny_siglip, tmp_path, specs, timings)
    finally:
        people.delete()


def _walk_from_training(people, tiny_siglip, tmp_path, specs, timings):
    def stage(name, **params):
        started = time.time()
        out = run(name, people, **params)
        timings[name] = round(time.time() - started, 2)
        return out

    bags = 0
    for item in items_from_samples(people.match_tags(["train", contract.VAL_TAG])):  # what fine-tuning reads
        spec = specs[item.person_id]
        assert f"{spec.upper_color} top and {spec.lower_color} " in " | ".join(item.texts)  # merged colours
        if spec.bag != "none":
            assert f"a person carrying a {spec.bag_color} {spec.bag}" in item.texts  # merged bags
            bags += 1
    assert bags
    out = str(tmp_path / "model")
    tuned = stage("finetune_matcher", output_dir=out, base_model=tiny_siglip, epochs=2, batch_size=4,
                  learning_rate=1e-3)
    assert tuned["run_key"] == contract.TRAIN_RUN_KEY and tuned["epochs_run"] == 2
    evaluated = stage("evaluate_matchers", zero_shot=tiny_siglip, finetuned=out)
    rows = {r["model"]: r for r in evaluated["rows"]}
    assert set(rows) == {"zero-shot", "fine-tuned"} and isinstance(rows["fine-tuned"]["target_reached"], bool)
    assert matcher_threshold(out) == rows["fine-tuned"]["threshold"]
    card = open(os.path.join(out, "README.md")).read()
    assert f"{rows['fine-tuned']['threshold']:.4f}" in card and "| rank1 |" in card.replace("| model | rank1", "| rank1")
    assert f"{rows['fine-tuned']['mAP']:.4f}" in card and people.name in card
    query_field = f"{contract.EVAL_RUN_KEY}_fine_tuned"
    assert people.match_tags("query").exists(query_field).count() == len(people.match_tags("query"))
    assert len(evaluated["pr_curve"]) == 2
    # the zero-shot attribute reliability, measured on the val split's merged attributes when it has enough of them
    val_images = len(people.match_tags(contract.VAL_TAG))
    measured = matcher_info(out).get(contract.ATTRIBUTE_RELIABILITY_KEY)
    if val_images >= defaults.ZERO_SHOT_RELIABILITY_MIN_LABELLED:
        assert measured["measured_on"] == f"{val_images} val images" and f"Measured on {val_images} val" in card
        assert "upper_colors" in measured["attributes"]
        assert all(0 <= v <= 1 for v in measured["attributes"].values())
    else:  # too few to measure: nothing recorded, zero-shot confidences stay as the matcher gives them
        assert measured is None and "Not measured yet" in card
    reliability = (measured or {}).get("attributes", {})

    before = _state(people)  # every stage again: nothing changes
    for name, params in (("merge_person_attributes", {}), ("generate_person_attributes", {}),
                         ("finetune_matcher", dict(output_dir=out, base_model=tiny_siglip, epochs=2, batch_size=4,
                                                   learning_rate=1e-3)),
                         ("evaluate_matchers", dict(zero_shot=tiny_siglip, finetuned=out))):
        run(name, people, **params)
    assert _state(people) == before or _diff(before, _state(people))
    assert matcher_info(out)["calibration"]["threshold"] == rows["fine-tuned"]["threshold"]

    scenes = fo.Dataset()
    try:
        people_specs = [specs[p] for p in sorted(specs)]
        found = synthetic.write_scenes(str(tmp_path / "scenes"), [people_specs[:3], people_specs[3:6]], width=640,
                                       height=360)
        scenes.add_samples([fo.Sample(filepath=s.filepath, ground_truth=fo.Detections(detections=[
            fo.Detection(label="person", bounding_box=b) for b in s.boxes])) for s in found])
        indexed = run("index_persons", scenes, matcher=out, detections_field="ground_truth")
        assert indexed["persons"] == 6
        # zero-shot attributes of the indexed persons weigh each attribute by the reliability evaluation stored
        run("attribute_indexed_persons", scenes, provider="zero-shot")
        used = scenes.get_run_info(contract.PERSON_ATTRIBUTES_RUN_KEY).config.reliability or {}
        assert used == reliability
        for det in [d for dets in scenes.values("persons.detections") for d in dets]:
            view = det[contract.VIEW_ATTRIBUTES_ATTR]
            confidence = (view.to_dict() if hasattr(view, "to_dict") else view)["confidence"]
            assert all(confidence[f] <= r + 1e-6 for f, r in used.items() if f in confidence)
        spec = people_specs[0]
        searched = run("search_persons", scenes, query=f"{spec.upper_color} top and {spec.lower_color} trousers")
        from person_finder.core.search import last_search

        assert last_search(scenes)["threshold"] == pytest.approx(rows["fine-tuned"]["threshold"])
        assert searched["samples"] == 2
    finally:
        scenes.delete()
    return timings, rows


def _diff(a, b):
    names = ("len", "tags", "filepaths", "merged/description", "records")
    changed = [n for n, x, y in zip(names, a, b) if x != y]
    keys = [k for k in a[-1] if a[-1][k] != b[-1].get(k)]
    detail = {k: [(x, y) for x, y in zip(a[-1][k], b[-1][k]) if x != y] for k in keys}
    raise AssertionError(f"a re-run changed {changed}: {detail}")


def test_walk_from_a_market_folder(market_folder, market_attribute_file, dataset, gemini, tiny_dinov2,
                                   tiny_siglip, tmp_path):
    started = time.time()
    params = dict(market_dir=market_folder.root, dataset_name=dataset.name,
                  attributes_path=market_attribute_file, val_fraction=0.34, seed=0)
    imported = run("import_market1501", dataset, **params)
    assert imported["val_identities"] == 2
    _answer_every_image(gemini, {os.path.join(market_folder.root, rel): market_folder.specs[info["person_id"]]
                                 for rel, info in market_folder.files.items() if info["person_id"] > 0})
    timings, rows = _walk_from_curation(dataset, contract.MARKET_ATTRIBUTES_FIELD, tiny_dinov2, tiny_siglip,
                                        tmp_path, market_folder.specs)
    before = (len(dataset), dataset.count_sample_tags(), _records(dataset))
    again = run("import_market1501", dataset, **params)  # the import undoes no curation
    assert again["added"] == 0 and again["previously_removed"] > 0
    assert (len(dataset), dataset.count_sample_tags(), _records(dataset)) == before
    print(f"market walk: {time.time() - started:.1f}s {timings} {rows}")


def test_walk_from_a_prototype_dataset_loaded_from_a_hub_folder(dataset, gemini, tiny_dinov2, tiny_siglip, tmp_path):
    from person_finder.testing.prototype import write_prototype_hub_folder

    started = time.time()
    specs = synthetic.random_specs(8, seed=21)
    folder, truth = write_prototype_hub_folder(str(tmp_path / "proto"), specs, images=4)
    loaded = run("load_from_hub", dataset, source=folder, dataset_name=f"proto-walk-{os.getpid()}")
    ds = fo.load_dataset(loaded["dataset"])
    try:
        # two planted near-duplicates, as the prototype's published data had
        first = ds.match_tags("train").first()
        ds.add_sample(fo.Sample(filepath=first.filepath.replace(".jpg", "-copy.jpg"), tags=["train"],
                                person_id=first["person_id"], camera_id=first["camera_id"],
                                attributes=first["attributes"], description=first["description"]))
        import shutil

        shutil.copy(first.filepath, first.filepath.replace(".jpg", "-copy.jpg"))
        converted = run("convert_prototype_dataset", ds)
        assert converted["identities"] == 8 and converted["renamed_id_fields"]["person_id"] == "source_person_id"
        assert run("convert_prototype_dataset", ds)["already_converted"]
        _answer_every_image(gemini, {p: truth[pid] for p, pid in zip(*ds.values(["filepath", "source_person_id"]))})
        spec_of = {n: truth[pid] for n, pid in enumerate(sorted(truth), start=1)}  # the conversion's id map
        timings, rows = _walk_from_curation(ds, "prototype_attributes", tiny_dinov2, tiny_siglip, tmp_path, spec_of)
        print(f"prototype walk: {time.time() - started:.1f}s {timings} {rows}")
    finally:
        ds.delete()
