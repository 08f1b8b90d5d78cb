"""Attributes for indexed persons: generated per embedded crop, merged per track or identity, on the detections."""

import os

import fiftyone as fo
import fiftyone.operators as foo
import pytest
from fiftyone import ViewField as F

from person_finder.core import contract
from person_finder.core.identities import link_identities
from person_finder.core.identities.attributes import attribute_persons, indexed_persons
from person_finder.core.search.crops import crop_files
from person_finder.core.search import index_persons
from person_finder.testing import synthetic
from person_finder.testing.fake_gemini import FAST_CLIENT, image_key, spec_answer


@pytest.fixture()
def scenes(dataset, test_root, tiny_siglip):
    """Two indexed scene images of three people each (true boxes)."""
    specs = synthetic.random_specs(6, seed=1)
    return synthetic.add_indexed_scenes(dataset, os.path.join(test_root, "attr-scenes", dataset.name),
                                        [specs[:3], specs[3:]], tiny_siglip, width=320, height=180, seed=2)


@pytest.fixture()
def walk(dataset, test_root, tiny_siglip):
    """One indexed video of three people walking (true boxes, so tracks are the true people)."""
    truth = synthetic.write_video(os.path.join(test_root, "attr-video", dataset.name + ".mp4"),
                                  synthetic.random_specs(3, seed=4), num_frames=40, width=320, height=180, seed=1)
    dataset.add_sample(truth.to_sample())
    dataset.compute_metadata()
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", refresh_frames=10)
    return truth


def _true_spec(truth, person):
    """The spec of the true person whose box at this frame is ``person``'s box."""
    for index, frames in truth.tracks.items():
        box = frames.get(person["frame_number"])
        if box is not None and max(abs(a - b) for a, b in zip(box, person["box"])) < 1e-6:
            return truth.specs[index]
    raise AssertionError(f"no true person at {person['frame_number']}")


def test_zero_shot_from_stored_embeddings_resumes_and_is_filterable(dataset, scenes):
    out = attribute_persons(dataset, provider="zero-shot", min_confidence=0.0)
    assert out["persons"] == out["attributed"] == 6 and out["groups"] == 6 and out["failed"] == 0
    persons = indexed_persons(dataset)
    assert all(p["attributes"]["provider"] == "zero-shot" for p in persons)
    # an image person is its own group: the consensus is its own view
    for sample in dataset:
        for det in sample.persons.detections:
            merged, own = det[contract.MERGED_ATTRIBUTES_FIELD], det[contract.VIEW_ATTRIBUTES_ATTR]
            assert merged["upper_colors"] == own["upper_colors"]
            assert det[contract.MERGED_ATTRIBUTES_FIELD]["num_views"] == 1
    # declared, so the App sidebar filters on it
    assert dataset.has_field(f"persons.detections.{contract.MERGED_ATTRIBUTES_FIELD}.hat")
    hats = dataset.count_values(f"persons.detections.{contract.MERGED_ATTRIBUTES_FIELD}.hat")
    some = next(iter(hats))
    view = dataset.filter_labels("persons", F(f"{contract.MERGED_ATTRIBUTES_FIELD}.hat") == some)
    assert view.count("persons.detections") == hats[some]

    assert attribute_persons(dataset, provider="zero-shot", min_confidence=0.0)["todo"] == 0  # nothing left
    label_id = persons[0]["label_id"]
    dataset.set_label_values(f"persons.detections.{contract.VIEW_ATTRIBUTES_ATTR}", {label_id: None})
    again = attribute_persons(dataset, provider="zero-shot", min_confidence=0.0)
    assert again["todo"] == again["attributed"] == 1
    assert dataset.get_run_info(contract.PERSON_ATTRIBUTES_RUN_KEY).config.provider == "zero-shot"


def test_gemini_per_keyframe_merged_per_track_with_faults_and_resume(dataset, walk, fake, test_root):
    folder = os.path.join(test_root, "attr-crops", dataset.name)
    keyframes = [p for p in indexed_persons(dataset) if p["embedding"] is not None]
    paths = crop_files(keyframes, folder)  # the crops the run will send (it reuses the cached files)
    assert len(paths) == len(keyframes) > 3  # tracks were re-embedded: several views per track
    key_of = {}
    for person in keyframes:
        with open(paths[person["label_id"]], "rb") as f:
            key_of[person["label_id"]] = image_key(f.read())
        fake.answers[key_of[person["label_id"]]] = spec_answer(_true_spec(walk, person))
    odd = keyframes[0]
    fake.answers[key_of[odd["label_id"]]] = {**spec_answer(_true_spec(walk, odd)), "upper_colors": ["orange"]}
    failing = keyframes[-1]
    fake.faults[key_of[failing["label_id"]]] = ["500", "500", "500"]

    out = attribute_persons(dataset, provider="gemini", crop_folder=folder, base_url=fake.base_url, **FAST_CLIENT)
    assert out["attributed"] == len(keyframes) - 1 and out["failed"] == 1
    errors = dataset.values(f"frames.persons.detections.{contract.ATTRIBUTES_ERROR_FIELD}", unwind=True)
    assert sum(e is not None for e in errors) == 1 and "500" in next(e for e in errors if e)
    # every detection of a track (keyframes or not) carries its track's consensus: the true clothing
    for person in indexed_persons(dataset):
        sample = dataset[person["sample_id"]]
        det = next(d for d in sample.frames[person["frame_number"]].persons.detections if d.id == person["label_id"])
        spec = _true_spec(walk, person)
        assert det[contract.MERGED_ATTRIBUTES_FIELD]["upper_colors"][0] == spec.upper_color  # outvoted the odd view
        assert det[contract.MERGED_ATTRIBUTES_FIELD]["lower_colors"] == [spec.lower_color]
    assert out["groups"] == 3 and out["groups_with_conflicts"] >= 1
    assert dataset.load_run_results(contract.PERSON_ATTRIBUTES_RUN_KEY).calls == len(keyframes)

    before = fake.count()
    again = attribute_persons(dataset, provider="gemini", crop_folder=folder, base_url=fake.base_url, **FAST_CLIENT)
    assert fake.count() - before == 1 and again["todo"] == again["attributed"] == 1  # only the failed one


def test_merge_per_identity_after_linking(dataset, walk):
    link_identities(dataset, threshold=-1.0)  # random tiny matcher: one threshold that links whatever it may
    out = attribute_persons(dataset, provider="zero-shot", group_by="identity", min_confidence=0.0)
    persons = indexed_persons(dataset)
    identities = {p["identity"] for p in persons}
    assert out["groups"] == len(identities)
    docs = {}
    for sample in dataset:
        for frame in sample.frames.values():
            for det in frame.persons.detections:
                merged = det[contract.MERGED_ATTRIBUTES_FIELD]
                docs.setdefault(det.identity, set()).add((merged["num_views"], tuple(merged["upper_colors"])))
    assert all(len(seen) == 1 for seen in docs.values())  # one consensus per identity
    views = {ident: sum(1 for p in persons if p["identity"] == ident and p["embedding"] is not None)
             for ident in identities}
    assert {ident: next(iter(seen))[0] for ident, seen in docs.items()} == views


def test_bad_input_is_refused_before_anything_is_written(dataset, walk, monkeypatch):
    monkeypatch.delenv(contract.GEMINI_SECRET, raising=False)
    with pytest.raises(ValueError, match="run link_identities first"):
        attribute_persons(dataset, provider="zero-shot", group_by="identity")
    with pytest.raises(ValueError, match="group_by='person'; use one of"):
        attribute_persons(dataset, provider="zero-shot", group_by="person")
    with pytest.raises(ValueError, match="GEMINI_API_KEY"):
        attribute_persons(dataset, provider="gemini")
    dry = attribute_persons(dataset, provider="gemini", dry_run=True)  # no key needed to estimate
    assert dry["todo"] == dry["calls"] > 0 and dry["estimated_input_tokens"] > 258 * dry["calls"]
    assert not dataset.has_frame_field(f"persons.detections.{contract.ATTRIBUTES_ERROR_FIELD}")
    assert not dataset.has_frame_field(f"persons.detections.{contract.MERGED_ATTRIBUTES_FIELD}")
    empty = fo.Dataset()
    empty.add_sample(fo.Sample(filepath=walk.filepath))
    try:
        with pytest.raises(ValueError, match="run index_persons first"):
            attribute_persons(empty, provider="zero-shot")
    finally:
        empty.delete()


def test_operator_attributes_indexed_images(dataset, scenes):
    result = foo.execute_operator(f"{contract.PLUGIN_NAME}/attribute_indexed_persons", ctx=dict(
        view=dataset.view(), params={"delegate": False, "provider": "zero-shot", "min_confidence": 0.0})).result
    assert result["attributed"] == 6 and "merged into 6 persons" in result["message"]
    assert len(dataset.exists(f"persons.detections.{contract.MERGED_ATTRIBUTES_FIELD}")) == 2


def test_fused_video_search_uses_each_tracks_consensus(dataset, walk, fake, test_root):
    from person_finder.core.search import rank_persons, search_persons

    folder = os.path.join(test_root, "attr-crops-search", dataset.name)
    keyframes = [p for p in indexed_persons(dataset) if p["embedding"] is not None]
    for person in keyframes:
        with open(crop_files([person], folder)[person["label_id"]], "rb") as f:
            fake.answers[image_key(f.read())] = spec_answer(_true_spec(walk, person))
    attribute_persons(dataset, provider="gemini", crop_folder=folder, base_url=fake.base_url, **FAST_CLIENT)
    target = walk.specs[2]
    constraints = {"upper_colors": target.upper_color, "lower_colors": target.lower_color}
    rows = rank_persons(dataset, "someone", k=None, constraints=constraints)
    assert len(rows) == 3 and rows[0]["attribute_score"] == 1.0
    first, last = walk.visible_frames(2)
    assert first <= rows[0]["frame_number"] <= last
    search_persons(dataset, "someone", threshold=-1.0, constraints=constraints, hard=True)
    spans = dataset.first()[contract.VIDEO_MATCHES_FIELD].detections
    assert [s.index for s in spans] == [rows[0]["track_id"]]  # the other tracks contradict a hard constraint
    scores = dataset.values(f"frames.persons.detections.{contract.FUSED_SCORE_ATTR}", unwind=True)
    assert all(s is not None for s in scores)


@pytest.fixture()
def own_matcher_scenes(dataset, test_root, tiny_siglip):
    """The two scenes indexed with this test's own copy of the tiny SigLIP (so its folder can record reliability)."""
    import shutil

    folder = os.path.join(test_root, "reliability", dataset.name, "matcher")
    shutil.copytree(tiny_siglip, folder)
    specs = synthetic.random_specs(6, seed=1)
    synthetic.add_indexed_scenes(dataset, os.path.join(test_root, "reliability", dataset.name, "scenes"),
                                 [specs[:3], specs[3:]], folder, width=320, height=180, seed=2)
    return folder


def _view_attributes(dataset):
    docs = dataset.values(f"persons.detections.{contract.VIEW_ATTRIBUTES_ATTR}", unwind=True)
    return [d.to_dict() if hasattr(d, "to_dict") else d for d in docs]


def test_zero_shot_weighs_each_attribute_by_the_reliability_stored_with_the_matcher(dataset, own_matcher_scenes):
    from person_finder.core.attributes.zero_shot import stored_reliability
    from person_finder.core.training.card import record_attribute_reliability

    attribute_persons(dataset, provider="zero-shot", min_confidence=0.0)
    raw = _view_attributes(dataset)
    assert any(v["hat"] != "unknown" for v in raw)  # the uncalibrated guesses
    record_attribute_reliability(own_matcher_scenes, {"hat": 0.0, "upper_colors": 1.0, "gender": 0.5}, "test labels")
    assert stored_reliability(own_matcher_scenes) == {"hat": 0.0, "upper_colors": 1.0, "gender": 0.5}
    assert "hat 0.00" in open(os.path.join(own_matcher_scenes, "README.md")).read()  # the model card says it

    out = attribute_persons(dataset, provider="zero-shot", overwrite=True, min_confidence=0.3)
    assert out["reliability"] == {"hat": 0.0, "upper_colors": 1.0, "gender": 0.5}
    calibrated = _view_attributes(dataset)
    for before, after in zip(raw, calibrated):
        assert after["hat"] == "unknown" and after["confidence"]["hat"] == 0.0  # blind: never a contradiction
        assert after["confidence"]["upper_colors"] == pytest.approx(before["confidence"]["upper_colors"])
        assert after["upper_colors"] == (before["upper_colors"] if before["confidence"]["upper_colors"] >= 0.3
                                         else [])
        assert after["confidence"]["gender"] == pytest.approx(0.5 * before["confidence"]["gender"])
        assert after["confidence"]["backpack"] == pytest.approx(before["confidence"]["backpack"])  # not measured
    assert dataset.get_run_info(contract.PERSON_ATTRIBUTES_RUN_KEY).config.reliability["hat"] == 0.0

    attribute_persons(dataset, provider="zero-shot", overwrite=True, min_confidence=0.0, calibrated=False)
    assert [v["hat"] for v in _view_attributes(dataset)] == [v["hat"] for v in raw]  # the guesses, on request


def test_reliability_is_agreement_beyond_chance_on_known_attributes(own_matcher_scenes):
    import numpy as np

    from person_finder.core.attributes.schema import PersonAttributes
    from person_finder.core.attributes.zero_shot import attribute_reliability, attributes_from_embeddings
    from person_finder.core.models.matcher import load_matcher

    matcher = load_matcher(own_matcher_scenes)
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(40, matcher.embed_texts(["x"]).shape[1])).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    own = [values for values, _ in attributes_from_embeddings(matcher, embeddings, PersonAttributes, 0.0)]
    varied = [f for f in ("upper_colors", "hat", "posture") if len({str(v[f]) for v in own}) >= 2]
    assert varied
    agree = attribute_reliability(matcher, embeddings, own)  # labels = its own guesses: perfect agreement
    assert all(agree[f] == pytest.approx(1.0) for f in varied)
    shuffled = attribute_reliability(matcher, embeddings, [own[i] for i in rng.permutation(len(own))])
    assert all(shuffled[f] < 0.5 for f in varied)
    unknown = [{**v, "hat": "unknown"} for v in own]  # never known: not measured, not 0
    assert "hat" not in attribute_reliability(matcher, embeddings, unknown)
    few = attribute_reliability(matcher, embeddings[:5], own[:5])
    assert few == {}  # fewer than ZERO_SHOT_RELIABILITY_MIN_LABELLED known: nothing measured
