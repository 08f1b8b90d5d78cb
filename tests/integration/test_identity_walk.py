"""The user's own footage as training data, through foo.execute_operator with no glue code.

Three camera videos -> index -> link identities -> export the re-identification dataset -> attributes (fake
Gemini) -> merge per identity -> fine-tune -> evaluate -> re-index with the fine-tuned matcher -> text search and
query by example both rank the target identity first.
"""

import hashlib
import os

import fiftyone as fo
import fiftyone.operators as foo
import pytest

from person_finder.core import contract
from person_finder.core.search import rank_persons
from person_finder.testing import people_training, synthetic
from person_finder.testing.fake_gemini import FakeGemini, spec_answer

URI = contract.PLUGIN_NAME + "/"


def run(name, dataset, **params):
    result = foo.execute_operator(URI + name, ctx=dict(view=dataset.view(), dataset=dataset.name,
                                                       params={"delegate": False, **params}))
    result.raise_exceptions()
    return result.result


@pytest.fixture()
def gemini(monkeypatch):
    with FakeGemini() as fake:
        monkeypatch.setenv(contract.GEMINI_SECRET, "AIzaTEST-identity-walk")
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
        yield fake


def _who(videos, dataset):
    """label id -> true person, for every person detection of the camera videos."""
    out = {}
    for filepath, numbers, boxes, ids in zip(*dataset.values(["filepath", "frames.frame_number",
                                                               "frames.persons.detections.bounding_box",
                                                               "frames.persons.detections.id"])):
        for number, frame_boxes, frame_ids in zip(numbers, boxes, ids):
            for box, label_id in zip(frame_boxes or [], frame_ids or []):
                out[label_id] = synthetic.true_person(videos, filepath, number, box)
    return out


def test_own_footage_to_a_finetuned_matcher_and_back_to_search(dataset, gemini, finetuned_siglip, test_root,
                                                                tmp_path):
    specs = people_training.held_out_specs()[:6]
    videos = synthetic.write_camera_videos(str(tmp_path / "cameras"), specs, num_frames=60)
    for camera, (truth, _) in enumerate(videos.values()):
        sample = truth.to_sample()
        sample["camera_id"] = camera
        dataset.add_sample(sample)
    dataset.compute_metadata()

    indexed = run("index_persons", dataset, matcher=finetuned_siglip, detections_field="ground_truth")
    linked = run("link_identities", dataset)
    print(indexed, linked)
    assert linked["identities"] == 6 and linked["linked_tracks"] == indexed["tracks"] >= 12
    exported = run("export_reid_dataset", dataset, dataset_name=f"{dataset.name}-reid",
                   folder=str(tmp_path / "reid"), test_fraction=0.34)
    crops = fo.load_dataset(exported["dataset"])
    try:
        who = _who(videos, dataset)
        for path, label_id in zip(crops.values("filepath"), crops.values("source_label_id")):
            with open(path, "rb") as f:
                gemini.answers[hashlib.sha1(f.read()).hexdigest()] = spec_answer(specs[who[label_id]])
        assert exported["identities"] == 6 and set(exported["tags"]) == {"train", "query", "gallery"}
        assert run("generate_person_attributes", crops)["failed"] == 0
        assert run("merge_person_attributes", crops)["identities"] == 6
        out = str(tmp_path / "model")
        tuned = run("finetune_matcher", crops, output_dir=out, base_model=finetuned_siglip, epochs=2, batch_size=4,
                    learning_rate=1e-5)
        assert tuned["epochs_run"] == 2
        evaluated = run("evaluate_matchers", crops, zero_shot=finetuned_siglip, finetuned=out)
        assert {r["model"] for r in evaluated["rows"]} == {"zero-shot", "fine-tuned"}
        # the export is idempotent: the same crops and splits again
        again = run("export_reid_dataset", dataset, dataset_name=crops.name, folder=str(tmp_path / "reid"),
                    test_fraction=0.34)
        assert again["crops"] == exported["crops"] and again["tags"] == crops.count_sample_tags()
    finally:
        crops.delete()

    assert run("index_persons", dataset, matcher=out, detections_field="ground_truth", overwrite=True)["tracks"] == \
        indexed["tracks"]
    assert run("link_identities", dataset)["identities"] == 6
    who = _who(videos, dataset)
    target = 0
    spec = specs[target]
    rows = rank_persons(dataset, f"{spec.upper_color} top and {spec.lower_color} trousers", k=2)
    assert {who[r["label_id"]] for r in rows} == {target}  # both of the target's tracks, first
    example = next(label_id for label_id, person in who.items() if person == target)
    found = run("find_person_elsewhere", dataset, label_id=example, k=1)
    assert found["results"] == 1
    from person_finder.core.identities.examples import rank_like

    assert who[rank_like(dataset, label_id=example, k=1)[0]["label_id"]] == target
