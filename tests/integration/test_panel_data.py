"""What the person-search panel shows: indexes, ranked crops, histogram, recent queries, result views."""

import base64
import io
import os

import numpy as np
import pytest
from PIL import Image

import fiftyone as fo

from person_finder.core import contract, defaults

from person_finder.core.search import panel_data
from person_finder.testing import synthetic
from person_finder.core.search import index_persons, rank_persons

QUERY = "red top and blue trousers"


def _decode(url):
    assert url.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


@pytest.fixture()
def image_dataset(dataset, test_root, tiny_siglip):
    specs = synthetic.random_specs(5, seed=7)
    synthetic.add_indexed_scenes(dataset, os.path.join(test_root, "panel-scenes", dataset.name), [specs[:3], specs[3:]],
                                 tiny_siglip, width=480, height=270, seed=1)
    return dataset


def test_only_prompt_capable_patch_indexes_are_offered(image_dataset):
    import fiftyone.brain as fob

    from person_finder.core.search.index import build_text_index

    fob.compute_similarity(image_dataset, embeddings=np.random.rand(len(image_dataset), 8), brain_key="plain")
    matcher = image_dataset.get_brain_info(contract.PERSON_INDEX_KEY).config.model_kwargs["name_or_path"]
    build_text_index(image_dataset, "patches", matcher=matcher, patches_field="ground_truth")  # prompts, not persons
    indexes = panel_data.text_indexes(image_dataset)
    assert [i["key"] for i in indexes] == [contract.PERSON_INDEX_KEY]
    assert indexes[0]["patches_field"] == contract.PERSONS_FIELD


def test_run_query_ranks_like_core_with_crops_and_histogram(image_dataset):
    expected = rank_persons(image_dataset, QUERY, k=None)
    threshold = float(np.median([r["similarity"] for r in expected]))
    result = panel_data.run_query(image_dataset, QUERY, contract.PERSON_INDEX_KEY, k=3, threshold=threshold)
    rows = result["rows"]
    assert [r["label_id"] for r in rows] == [r["label_id"] for r in expected[:3]]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert all(r["match"] == (r["similarity"] >= threshold) for r in rows)
    assert result["total"] == 5 == sum(result["histogram"]["counts"])
    assert result["above"] == sum(r["similarity"] >= threshold for r in expected)
    # the crop is the person box, not the whole 480x270 scene
    crop = _decode(rows[0]["crop"])
    x, y, w, h = rows[0]["bounding_box"]
    assert crop.height == defaults.PANEL_CROP_HEIGHT
    assert crop.width / crop.height == pytest.approx((w * 480) / (h * 270), rel=0.1)
    with pytest.raises(ValueError, match="k must be"):
        panel_data.run_query(image_dataset, QUERY, contract.PERSON_INDEX_KEY, k=0)
    with pytest.raises(ValueError, match="non-empty"):
        panel_data.run_query(image_dataset, "  ", contract.PERSON_INDEX_KEY)


def test_recent_queries_survive_a_new_process(dataset, run_python):
    dataset.persistent = True
    panel_data.remember_query(dataset, "first")
    panel_data.remember_query(dataset, "second")
    assert panel_data.remember_query(dataset, " first ") == ["first", "second"]
    for i in range(defaults.PANEL_RECENT_QUERIES + 2):
        panel_data.remember_query(dataset, f"q{i}")
    out = run_python(f"import fiftyone as fo\nfrom person_finder.core.search import panel_data\n"
                     f"print(panel_data.recent_queries(fo.load_dataset({dataset.name!r})))")
    recent = eval(out.strip().splitlines()[-1])
    assert len(recent) == defaults.PANEL_RECENT_QUERIES and recent[0] == f"q{defaults.PANEL_RECENT_QUERIES + 1}"
    assert panel_data.recent_queries(fo.Dataset()) == []


def test_image_result_views(image_dataset):
    rows = panel_data.run_query(image_dataset, QUERY, contract.PERSON_INDEX_KEY, k=4, threshold=0.0)["rows"]
    one = panel_data.result_view(image_dataset, rows[0], contract.PERSONS_FIELD)
    assert one.values("id") == [rows[0]["sample_id"]]
    patches = panel_data.results_view(image_dataset, rows, contract.PERSONS_FIELD)
    assert patches._is_patches
    assert patches.values("id") == [r["label_id"] for r in rows]  # in rank order


def test_video_rows_get_frame_crops_and_track_clips(dataset, test_root, tiny_siglip):
    folder = os.path.join(test_root, "panel-video", dataset.name)
    truth = synthetic.write_video(os.path.join(folder, "walk.mp4"), synthetic.random_specs(2, seed=3),
                                  num_frames=30, width=320, height=180, seed=0)
    dataset.add_sample(truth.to_sample())
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    result = panel_data.run_query(dataset, QUERY, contract.PERSON_INDEX_KEY, k=5, threshold=0.0)
    rows = result["rows"]
    assert rows and all(r["frame_number"] is not None and r["track_id"] is not None for r in rows)
    assert all(_decode(r["crop"]).height == defaults.PANEL_CROP_HEIGHT for r in rows)
    clip = panel_data.result_view(dataset, rows[0], contract.PERSONS_FIELD)
    assert clip._is_clips and len(clip) == 1
    first, last = clip.values("support")[0]
    numbers, indexes = dataset.values(["frames.frame_number", "frames.persons.detections.index"])
    track_frames = [n for n, found in zip(numbers[0], indexes[0]) if rows[0]["track_id"] in (found or [])]
    assert [first, last] == [min(track_frames), max(track_frames)]
    assert first <= rows[0]["frame_number"] <= last
    clips = panel_data.results_view(dataset, rows, contract.PERSONS_FIELD)
    assert clips._is_clips and len(clips) == len({r["track_id"] for r in rows})


def test_more_like_this_ranks_that_persons_other_images_first_and_relabels(dataset, test_root, finetuned_siglip):
    from person_finder.core.identities.examples import run_example
    from person_finder.core.search import last_search
    from person_finder.testing.people_training import held_out_specs

    scenes = synthetic.write_recurring_scenes(os.path.join(test_root, "panel-like", dataset.name), held_out_specs())
    dataset.add_samples([scene.to_sample() for scene in scenes])
    index_persons(dataset, matcher=finetuned_siglip, detections_field="ground_truth")
    panel_data.run_query(dataset, QUERY, contract.PERSON_INDEX_KEY, k=3, threshold=0.1, label=True)
    who = synthetic.scene_people(dataset, scenes)
    example = next(r for r in rank_persons(dataset, QUERY, k=None) if who[r["label_id"]] == 0)

    result = run_example(dataset, example, k=4, label=True)
    rows = result["rows"]
    assert example["label_id"] not in [r["label_id"] for r in rows]  # not itself
    assert [who[r["label_id"]] for r in rows[:2]] == [0, 0]  # that person's two other images first
    assert [r["rank"] for r in rows] == [1, 2, 3, 4] and all(_decode(r["crop"]) for r in rows)
    assert all(r["probability"] is None and r["match"] == (r["similarity"] >= 0.7) for r in rows)
    assert result["total"] == len(who) - 1 and result["histogram"]["threshold"] == defaults.IDENTITY_LINK_THRESHOLD
    assert result["query"] == f"more like the person of {os.path.basename(example['filepath'])}"
    # the grid's labels are now this example's, recorded under its name; the text's probabilities are gone
    record = last_search(dataset)
    assert record["query"] == result["query"] and record["by_example"]
    assert record["matches"] == result["above"] + 1  # the example itself is a match too
    labels = dataset.values("persons.detections.label", unwind=True)
    assert labels.count(contract.MATCH_LABEL) == record["matches"]
    assert set(dataset.values("persons.detections.probability", unwind=True)) == {None}
    with pytest.raises(ValueError, match="k must be"):
        run_example(dataset, example, k=0)


def test_more_like_this_in_videos_ranks_tracks_and_names_the_track(dataset, test_root, finetuned_siglip):
    from person_finder.core.identities.examples import run_example
    from person_finder.testing.people_training import held_out_specs

    videos = synthetic.write_camera_videos(os.path.join(test_root, "panel-like-videos", dataset.name),
                                           held_out_specs()[:3], cameras=3, num_frames=24)
    dataset.add_samples([truth.to_sample() for truth, _ in videos.values()])
    index_persons(dataset, matcher=finetuned_siglip, detections_field="ground_truth")
    rows = rank_persons(dataset, QUERY, k=None)

    def person(row):
        return synthetic.true_person(videos, row["filepath"], row["frame_number"], row["bounding_box"])

    example = rows[0]
    result = run_example(dataset, example, contract.PERSON_INDEX_KEY, k=5)
    liked = result["rows"]
    assert result["query"] == f"more like track {example['track_id']} of {os.path.basename(example['filepath'])}"
    tracks = [(r["sample_id"], r["track_id"]) for r in liked]
    assert len(tracks) == len(set(tracks)) == len(rows) - 1  # one row per track, the example's own left out
    assert (example["sample_id"], example["track_id"]) not in tracks
    assert person(liked[0]) == person(example)  # each person is in two of the videos: the other one first
    assert all(r["frame_number"] is not None and _decode(r["crop"]) for r in liked)
