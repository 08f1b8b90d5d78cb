"""Search quality with a tiny matcher fine-tuned on synthetic people (fixture ``finetuned_siglip``).

The people come with their true boxes (the "existing detections field"
path), so these tests measure the matcher, tracking and ranking rather
than a random detector.
"""

import os

import fiftyone as fo
import pytest

from person_finder.core import contract
from person_finder.testing import synthetic
from person_finder.core.search import index_persons, rank_persons, search_persons

QUERY = "red top and blue trousers"
TARGET = synthetic.PersonSpec("red", "blue", long_sleeves=True, long_lower=True)


def _others(count, seed):
    """People sharing neither the red top nor the blue trousers of the target."""
    specs = [s for s in synthetic.random_specs(60, seed=seed) if s.upper_color != "red" and s.lower_color != "blue"]
    return specs[:count]


def _iou(a, b):
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


@pytest.mark.slow
def test_images_rank_the_described_person_first(dataset, test_root, finetuned_siglip):
    others = _others(8, seed=21)
    per_scene = [others[0:3], [others[3], TARGET, others[4]], others[5:8]]
    scenes = synthetic.write_scenes(os.path.join(test_root, "quality-scenes", dataset.name), per_scene,
                                    width=640, height=360, seed=5)
    dataset.add_samples([
        fo.Sample(filepath=s.filepath, ground_truth=fo.Detections(
            detections=[fo.Detection(label="person", bounding_box=b) for b in s.boxes])) for s in scenes])
    index_persons(dataset, matcher=finetuned_siglip, detections_field="ground_truth")

    best = rank_persons(dataset, QUERY, k=1)[0]
    assert best["filepath"] == scenes[1].filepath
    assert _iou(best["bounding_box"], scenes[1].boxes[1]) > 0.9
    view = search_persons(dataset, QUERY, threshold=best["similarity"])
    assert view.first().filepath == scenes[1].filepath
    matched = [d for dets in dataset.values("persons.detections") for d in dets if d.label == contract.MATCH_LABEL]
    assert len(matched) == 1 and _iou(matched[0].bounding_box, scenes[1].boxes[1]) > 0.9


@pytest.mark.slow
def test_video_span_covers_the_described_person(dataset, test_root, finetuned_siglip):
    specs = _others(3, seed=22)
    specs.insert(1, TARGET)
    truth = synthetic.write_video(os.path.join(test_root, "quality-video", dataset.name + ".mp4"), specs,
                                  num_frames=60, width=480, height=270, seed=3)
    sample = fo.Sample(filepath=truth.filepath)
    for number in range(1, truth.num_frames + 1):
        sample.frames[number]["ground_truth"] = fo.Detections(detections=[
            fo.Detection(label="person", bounding_box=track[number])
            for track in truth.tracks.values() if number in track])
    dataset.add_sample(sample)
    index_persons(dataset, matcher=finetuned_siglip, detections_field="ground_truth")

    best = rank_persons(dataset, QUERY, k=1)[0]
    first, last = truth.visible_frames(1)
    assert first <= best["frame_number"] <= last
    assert _iou(best["bounding_box"], truth.tracks[1][best["frame_number"]]) > 0.8
    search_persons(dataset, QUERY, threshold=best["similarity"])
    spans = dataset.first()[contract.VIDEO_MATCHES_FIELD].detections
    assert [s.index for s in spans] == [best["track_id"]]
    start, end = spans[0].support
    assert start <= first and end >= last
