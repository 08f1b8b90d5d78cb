"""Identities across camera videos: linked from what index_persons wrote, never two people seen at once."""

import os

import numpy as np
import pytest

from person_finder.core import contract
from person_finder.core.identities import identity_summary, link_identities
from person_finder.core.search import index_persons
from person_finder.testing import people_training, synthetic

CAMERAS = 3
NUM_FRAMES = 24


def _camera_videos(dataset, folder, specs):
    """Three camera videos of ``specs`` (each person in two of them), added with their true boxes."""
    videos = synthetic.write_camera_videos(folder, specs, cameras=CAMERAS, num_frames=NUM_FRAMES)
    for camera, truth in enumerate(truth for truth, _ in videos.values()):
        sample = truth.to_sample()
        sample["camera_id"] = camera
        dataset.add_sample(sample)
    dataset.compute_metadata()
    return videos


_true_person = synthetic.true_person


def _linked(dataset, truths):
    """(true person, identity, sample id, frame) of every person detection."""
    rows = []
    for sample_id, filepath, numbers, boxes, identities in zip(*dataset.values(
            ["id", "filepath", "frames.frame_number", "frames.persons.detections.bounding_box",
             "frames.persons.detections.identity"])):
        for number, frame_boxes, frame_ids in zip(numbers, boxes, identities):
            for box, identity in zip(frame_boxes or [], frame_ids or []):
                rows.append((_true_person(truths, filepath, number, box), identity, sample_id, number))
    return rows


@pytest.fixture()
def cameras(dataset, test_root, finetuned_siglip):
    specs = people_training.held_out_specs()[:4]
    truths = _camera_videos(dataset, os.path.join(test_root, "identities", dataset.name), specs)
    index_persons(dataset, matcher=finetuned_siglip, detections_field="ground_truth")
    return truths


def test_tracks_of_one_person_in_several_cameras_become_one_identity(dataset, cameras):
    summary = link_identities(dataset)
    rows = _linked(dataset, cameras)
    assert all(identity is not None for _, identity, _, _ in rows)
    truth_of = {}
    for person, identity, _, _ in rows:
        truth_of.setdefault(identity, set()).add(person)
    assert all(len(people) == 1 for people in truth_of.values())  # no identity mixes two people
    identities_of = {}
    for person, identity, _, _ in rows:
        identities_of.setdefault(person, set()).add(identity)
    assert all(len(ids) == 1 for ids in identities_of.values())  # each person is one identity
    assert summary["identities"] == 4 and summary["linked_tracks"] == 8
    seen_together = {}
    for _, identity, sample_id, number in rows:
        key = (sample_id, number, identity)
        assert key not in seen_together, "one identity twice in one frame"
        seen_together[key] = True

    people = identity_summary(dataset)
    assert sorted(len({a["filepath"] for a in p["appearances"]}) for p in people) == [2, 2, 2, 2]
    first = people[0]["appearances"][0]
    assert set(first) >= {"sample_id", "filepath", "track_id", "first_frame", "last_frame", "confidence"}
    assert 1 <= first["first_frame"] <= first["last_frame"] <= NUM_FRAMES


def test_relinking_is_idempotent_and_a_strict_threshold_splits(dataset, cameras):
    link_identities(dataset)
    before = dataset.values("frames.persons.detections.identity")
    link_identities(dataset)
    assert dataset.values("frames.persons.detections.identity") == before
    strict = link_identities(dataset, threshold=0.9999)
    assert strict["identities"] == 8  # every track alone
    assert dataset.get_field_schema(flat=True) is not None
    assert dataset.has_frame_field(f"persons.detections.{contract.IDENTITY_CONFIDENCE_ATTR}")


def test_linking_before_indexing_is_a_clear_error(dataset):
    dataset.add_sample(synthetic.write_video(os.path.join("/tmp", f"{dataset.name}.mp4"), [], num_frames=4,
                                             width=64, height=64).to_sample())
    with pytest.raises(ValueError, match="run index_persons first"):
        link_identities(dataset)
    assert contract.IDENTITY_RUN_KEY not in dataset.list_runs()


def test_index_then_link_through_operators(dataset, test_root, finetuned_siglip):
    import fiftyone.operators as foo

    uri = f"{contract.PLUGIN_NAME}/"
    _camera_videos(dataset, os.path.join(test_root, "identities-ops", dataset.name),
                   people_training.held_out_specs()[4:8])
    foo.execute_operator(uri + "index_persons", ctx=dict(view=dataset.view(), params={
        "matcher": finetuned_siglip, "detections_field": "ground_truth"}))
    result = foo.execute_operator(uri + "link_identities", ctx=dict(view=dataset.view(), params={})).result
    assert result["identities"] == 4 and "8 tracks linked into 4 identities" in result["message"]
    assert len(dataset.distinct("frames.persons.detections.identity")) == 4

    label_id, sample_id = dataset.values("frames.persons.detections.id", unwind=True)[0], dataset.first().id
    found = foo.execute_operator(uri + "find_person_elsewhere", ctx=dict(
        view=dataset.view(), selected_labels=[{"label_id": label_id, "sample_id": sample_id,
                                               "field": "frames.persons"}], params={"k": 3})).result
    assert found["results"] == 3 and "most alike first" in found["message"]
    with pytest.raises(Exception, match="needs both its video sample id and its track id"):
        foo.execute_operator(uri + "find_person_elsewhere", ctx=dict(view=dataset.view(),
                                                                     params={"track_id": 1})).raise_exceptions()


def _row_person(truths, row):
    return _true_person(truths, row["filepath"], row["frame_number"], row["bounding_box"])


def test_find_this_person_elsewhere_from_a_person_a_track_an_identity_and_an_image(dataset, cameras, test_root):
    from person_finder.core.identities.examples import rank_like

    tracks = {}  # (video id, track id) -> true person
    for sample_id, filepath, numbers, boxes, track_ids, label_ids in zip(*dataset.values(
            ["id", "filepath", "frames.frame_number", "frames.persons.detections.bounding_box",
             "frames.persons.detections.index", "frames.persons.detections.id"])):
        for number, frame_boxes, frame_tracks, frame_labels in zip(numbers, boxes, track_ids, label_ids):
            for box, track, label in zip(frame_boxes or [], frame_tracks or [], frame_labels or []):
                tracks.setdefault((sample_id, track), (_true_person(cameras, filepath, number, box), label))
    hits = 0
    for (sample_id, track), (person, label) in tracks.items():
        rows = rank_like(dataset, track=(sample_id, track), k=3)
        assert all((r["sample_id"], r["track_id"]) != (sample_id, track) for r in rows)  # not itself
        assert rows == sorted(rows, key=lambda r: -r["similarity"]) and rows[0]["probability"] is None
        hits += _row_person(cameras, rows[0]) == person
        by_label = rank_like(dataset, label_id=label, k=1)
        assert (by_label[0]["sample_id"], by_label[0]["track_id"]) != (sample_id, track)
    assert hits / len(tracks) >= 0.9  # the same person's other track first

    link_identities(dataset)
    person, _ = next(iter(tracks.values()))
    identity = next(i for p, i, _, _ in _linked(dataset, cameras) if p == person)
    rows = rank_like(dataset, identity=identity, k=3)
    assert {_row_person(cameras, r) for r in rows[:2]} == {person}  # each person is in two videos

    spec = people_training.held_out_specs()[person]
    crop = os.path.join(test_root, f"{dataset.name}-example.png")
    synthetic.render_crop(spec, seed=5).save(crop)
    assert _row_person(cameras, rank_like(dataset, image=crop, k=1)[0]) == person


def test_a_bad_example_is_a_clear_error(dataset, cameras):
    from person_finder.core.identities.examples import rank_like

    with pytest.raises(ValueError, match="exactly one example"):
        rank_like(dataset)
    with pytest.raises(ValueError, match="exactly one example"):
        rank_like(dataset, label_id="x", identity=1)
    with pytest.raises(ValueError, match="no person '0123456789abcdef01234567'"):
        rank_like(dataset, label_id="0123456789abcdef01234567")
    with pytest.raises(ValueError, match="run link_identities first"):
        rank_like(dataset, identity=99)


def test_footage_becomes_a_reid_dataset_split_by_identity(dataset, cameras, test_root):
    import fiftyone as fo

    from person_finder.core.identities import export_reid_dataset

    with pytest.raises(ValueError, match="run link_identities first"):
        export_reid_dataset(dataset, f"{dataset.name}-reid", os.path.join(test_root, "reid-none"))
    assert not fo.dataset_exists(f"{dataset.name}-reid")
    link_identities(dataset)
    folder = os.path.join(test_root, "reid", dataset.name)
    crops = export_reid_dataset(dataset, f"{dataset.name}-reid", folder)
    try:
        embedded = len([v for v in dataset.values("frames.persons.detections.embedding", unwind=True)
                        if v is not None])
        assert len(crops) == embedded and len(os.listdir(folder)) == embedded
        assert len(crops.distinct(contract.PERSON_ID_FIELD)) == 4
        people = {tag: set(crops.match_tags(tag).distinct(contract.PERSON_ID_FIELD)) for tag in
                  ("train", "query", "gallery")}
        assert len(people["train"]) == 2 and people["query"] == people["gallery"] and \
            not people["train"] & people["query"]  # splits by identity, half of them test
        for person in people["query"]:  # one query crop; the gallery holds the person in another camera
            of_person = crops.match(fo.ViewField(contract.PERSON_ID_FIELD) == person)
            query_camera, = of_person.match_tags("query").values(contract.CAMERA_ID_FIELD)
            assert set(of_person.match_tags("gallery").values(contract.CAMERA_ID_FIELD)) - {query_camera}
        sample = crops.first()
        assert sample.metadata.width > 0 and sample["track_id"] is not None and sample["frame_number"] >= 1
        assert sample["source_filepath"] in cameras

        tags = dict(zip(crops.values("source_label_id"), crops.values("tags")))
        again = export_reid_dataset(dataset, f"{dataset.name}-reid", folder)  # nothing duplicated, same splits
        assert len(again) == embedded and dict(zip(again.values("source_label_id"), again.values("tags"))) == tags
    finally:
        crops.delete()


def test_switching_matcher_needs_the_whole_dataset(dataset, cameras, tiny_siglip):
    before = dataset.values("frames.persons.detections.embedding_id")
    with pytest.raises(ValueError, match="re-index the whole dataset with overwrite=True"):
        index_persons(dataset.limit(1), matcher=tiny_siglip, detections_field="ground_truth", overwrite=True)
    assert dataset.values("frames.persons.detections.embedding_id") == before  # nothing touched
    with pytest.raises(ValueError, match="was built with matcher"):
        index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")  # not without overwrite
    switched = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", overwrite=True)
    assert switched["indexed"] == switched["encoder_crops"]  # only the new matcher's vectors
    assert dataset.get_brain_info(contract.PERSON_INDEX_KEY).config.model_kwargs["name_or_path"] == str(tiny_siglip)
