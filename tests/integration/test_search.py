"""Text-to-person search: indexing, re-query without re-embedding, videos, bad input, export, operators."""

import logging
import os

import numpy as np
import pytest
from PIL import Image

import fiftyone as fo

from person_finder.core import contract, defaults
from person_finder.testing import synthetic
from person_finder.core.search import index_persons, rank_persons, search_persons

QUERY = "red top and blue trousers"


def _add_scenes(dataset, folder, specs_per_scene, seed=0, width=640, height=360):
    """Scene images with their true person boxes in ``ground_truth``."""
    scenes = synthetic.write_scenes(folder, specs_per_scene, width=width, height=height, seed=seed)
    samples = []
    for scene in scenes:
        dets = [fo.Detection(label="person", bounding_box=box) for box in scene.boxes]
        samples.append(fo.Sample(filepath=scene.filepath, ground_truth=fo.Detections(detections=dets)))
    dataset.add_samples(samples)
    return scenes


@pytest.fixture()
def scenes_dataset(dataset, test_root):
    specs = synthetic.random_specs(6, seed=4)
    folder = os.path.join(test_root, "search-scenes", dataset.name)
    return dataset, _add_scenes(dataset, folder, [specs[:3], specs[3:]])


def _encoder_calls(monkeypatch):
    """Count crops that reach the matcher's image tower, and its calls."""
    from person_finder.core.models.matcher import ImageTextMatcher

    calls = {"crops": 0, "calls": 0}
    original = ImageTextMatcher.embed_images

    def counting(self, images, batch_size=None):
        calls["crops"] += len(images)
        calls["calls"] += 1
        return original(self, images, batch_size=batch_size)

    monkeypatch.setattr(ImageTextMatcher, "embed_images", counting)
    return calls


def test_images_index_then_requery_embeds_only_text(scenes_dataset, tiny_siglip, monkeypatch):
    dataset, scenes = scenes_dataset
    calls = _encoder_calls(monkeypatch)
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    assert summary["persons"] == 6 and summary["encoder_crops"] == 6 and calls["crops"] == 6
    view = search_persons(dataset, QUERY, threshold=-1.0)
    first = search_persons(dataset, "a man with a black backpack", threshold=0.0)
    assert calls["crops"] == 6  # the second and third query embedded no crop
    persons = dataset.values("persons.detections")
    sims = [d[contract.SIMILARITY_ATTR] for dets in persons for d in dets]
    probs = [d[contract.PROBABILITY_ATTR] for dets in persons for d in dets]
    assert len(sims) == 6 and all(-1 <= s <= 1 for s in sims) and all(0 < p < 1 for p in probs)
    labels = {d.label for dets in persons for d in dets}
    assert labels <= {contract.MATCH_LABEL, contract.PERSON_LABEL}
    assert all((d.label == contract.MATCH_LABEL) == (d[contract.SIMILARITY_ATTR] >= 0.0)
               for dets in persons for d in dets)
    best = first.values(contract.SAMPLE_SIMILARITY_FIELD)
    assert best == sorted(best, reverse=True)
    for sample in dataset:
        assert sample[contract.SAMPLE_SIMILARITY_FIELD] == pytest.approx(
            max(d[contract.SIMILARITY_ATTR] for d in sample.persons.detections))
    # the user's boxes are untouched and persons mirror them
    assert dataset.count("ground_truth.detections") == 6
    assert all(d.label == "person" for dets in dataset.values("ground_truth.detections") for d in dets)
    assert len(view) == 2

    rows = rank_persons(dataset, QUERY, k=4)
    assert len(rows) == 4
    assert [r["similarity"] for r in rows] == sorted((r["similarity"] for r in rows), reverse=True)
    row = rows[0]
    assert set(row) >= {"sample_id", "frame_number", "label_id", "track_id", "similarity", "probability",
                        "bounding_box", "filepath", "match"}
    import json
    json.dumps(rows)
    assert calls["crops"] == 6


def test_rerun_reuses_embeddings_and_never_duplicates(scenes_dataset, tiny_siglip, monkeypatch):
    dataset, _ = scenes_dataset
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    search_persons(dataset, QUERY)
    ids_before = dataset.values("persons.detections.id")
    calls = _encoder_calls(monkeypatch)
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    assert calls["crops"] == 0 and summary["processed"] == 0
    assert dataset.values("persons.detections.id") == ids_before
    search_persons(dataset, QUERY)
    assert dataset.count("persons.detections") == 6
    # the index lost: the truth is on the dataset, so the re-run restores it with no detection and no embedding
    dataset.delete_brain_run(contract.PERSON_INDEX_KEY)
    summary = index_persons(dataset, matcher=tiny_siglip, detector="/no/detector/needed.pt")
    assert calls["crops"] == 0 and summary["processed"] == 0 and summary["indexed"] == 6
    assert dataset.values("persons.detections.id") == ids_before
    assert len(rank_persons(dataset, QUERY, k=None)) == 6
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", overwrite=True)
    assert dataset.count("persons.detections") == 6 and summary["processed"] == 2
    assert summary["indexed"] == 6  # the replaced persons' vectors left the index


def _add_video(dataset, folder, specs, num_frames=60, seed=0, width=480, height=270):
    """A synthetic H.264 video with its true boxes as ``frames.ground_truth``."""
    truth = synthetic.write_video(os.path.join(folder, f"walk_{seed}.mp4"), specs, num_frames=num_frames,
                                  width=width, height=height, seed=seed)
    sample = fo.Sample(filepath=truth.filepath)
    for number in range(1, num_frames + 1):
        dets = [fo.Detection(label="person", bounding_box=track[number])
                for track in truth.tracks.values() if number in track]
        sample.frames[number]["ground_truth"] = fo.Detections(detections=dets)
    dataset.add_sample(sample)
    dataset.compute_metadata()
    return truth


def _iou(a, b):
    """IoU of two relative [x, y, w, h] boxes."""
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


@pytest.fixture()
def video_dataset(dataset, test_root):
    folder = os.path.join(test_root, "search-videos", dataset.name)
    truth = _add_video(dataset, folder, synthetic.random_specs(3, seed=2), num_frames=60)
    return dataset, truth


def test_video_tracks_one_embedding_per_track_and_spans(video_dataset, tiny_siglip, monkeypatch):
    dataset, truth = video_dataset
    calls = _encoder_calls(monkeypatch)
    monkeypatch.setattr(defaults, "VIDEO_FRAMES_PER_WRITE", 7)  # frames are written in several bulk writes
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", refresh_frames=30)
    naive = sum(len(t) for t in truth.tracks.values())
    assert summary["tracks"] == 3 and summary["persons"] == naive
    assert calls["crops"] == summary["encoder_crops"] < naive / 8
    # one vector per distinct crop embedding, stored on the detection it was cut from
    assert summary["indexed"] == summary["encoder_crops"] == dataset.count("frames.persons.detections.embedding")
    # crops of all frames share encoder batches: one forward pass here (naive per-frame: one per frame)
    assert calls["calls"] == summary["encoder_calls"] == -(-summary["encoder_crops"] // defaults.MATCHER_BATCH_SIZE)
    sample = dataset.first()
    assert sample[contract.PERSON_TRACKS_FIELD] == 3
    # every true person is one track, present on each frame where the person is visible
    for person, track in truth.tracks.items():
        ids = [d.index for n in track for d in sample.frames[n].persons.detections
               if _iou(d.bounding_box, track[n]) > 0.8]
        assert len(ids) == len(track) and len(set(ids)) == 1, (person, ids)
    search_persons(dataset, QUERY, threshold=-1.0)
    sample = dataset.first()
    spans = sample[contract.VIDEO_MATCHES_FIELD].detections
    assert len(spans) == 3
    frames_by_track = {}
    for number, frame in sample.frames.items():
        for d in frame.persons.detections:
            assert d[contract.SIMILARITY_ATTR] is not None and d.label == contract.MATCH_LABEL
            frames_by_track.setdefault(d.index, []).append(number)
    for span in spans:
        assert span.support == [min(frames_by_track[span.index]), max(frames_by_track[span.index])]
    assert sample[contract.SAMPLE_SIMILARITY_FIELD] == pytest.approx(max(s.confidence for s in spans))
    for span in spans:  # a track's score is the mean over its frames
        sims = [d[contract.SIMILARITY_ATTR] for f in sample.frames.values() for d in f.persons.detections
                if d.index == span.index]
        assert span.confidence == pytest.approx(np.mean(sims), abs=1e-5)
    assert len(dataset.to_clips(contract.VIDEO_MATCHES_FIELD)) == 3
    rows = rank_persons(dataset, QUERY, k=None)
    assert sorted(r["track_id"] for r in rows) == sorted(frames_by_track)
    assert all(r["frame_number"] >= 1 for r in rows)
    # a strict threshold drops spans but keeps the detections, re-run does not duplicate
    search_persons(dataset, QUERY, threshold=1.0)
    sample = dataset.first()
    assert sample[contract.VIDEO_MATCHES_FIELD].detections == []
    assert dataset.count("frames.persons.detections") == summary["persons"]
    assert calls["crops"] == summary["encoder_crops"]
    # what the App's similarity search does on the frames' person patches
    patches = dataset.to_frames(sample_frames="dynamic").to_patches(contract.PERSONS_FIELD)
    top = patches.sort_by_similarity(QUERY, k=2, brain_key=contract.PERSON_INDEX_KEY)
    best = max(d[contract.SIMILARITY_ATTR] for dets in dataset.values("frames.persons.detections")[0]
               for d in dets or [])
    assert len(top) == 2 and top.first()[contract.PERSONS_FIELD][contract.SIMILARITY_ATTR] == pytest.approx(best)
    # overwrite replaces the persons of every frame, it never adds to them
    again = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", overwrite=True)
    assert again["persons"] == summary["persons"] == dataset.count("frames.persons.detections")
    assert dataset.count("frames.persons.detections.similarity") == 0  # the old scores went with the old persons


def test_video_export_after_botsort_tracking(video_dataset, tiny_siglip, test_root):
    from person_finder.core.search.export import export_results

    dataset, truth = video_dataset
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", tracker="botsort")
    assert dataset.first()[contract.PERSON_TRACKS_FIELD] == 3
    search_persons(dataset, QUERY)
    (path,) = export_results(dataset, os.path.join(test_root, "export-video", dataset.name))
    import cv2

    capture = cv2.VideoCapture(path)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == truth.num_frames
    capture.release()


def test_export_draws_matches_red_on_copies(scenes_dataset, tiny_siglip, test_root):
    from person_finder.core.search.export import export_results

    dataset, scenes = scenes_dataset
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    search_persons(dataset, QUERY, threshold=1.0)  # nobody matches
    sample = dataset.first()
    best = max(sample.persons.detections, key=lambda d: d.similarity)
    dataset.set_label_values("persons.detections.label", {best.id: contract.MATCH_LABEL})
    before = open(sample.filepath, "rb").read()
    out = os.path.join(test_root, "export", dataset.name)
    paths = export_results(dataset, out)
    assert len(paths) == 2 and all(p.startswith(out) for p in paths)
    assert open(sample.filepath, "rb").read() == before
    drawn = np.asarray(Image.open(paths[0]).convert("RGB")).astype(int)
    width, height = drawn.shape[1], drawn.shape[0]

    def outline(det):
        x, y, w, h = det.bounding_box
        x0 = int(x * width)
        y0, y1 = int(y * height), int((y + h) * height)
        return drawn[max(y0 + 2, 0):y1 - 2, max(x0 - 1, 0):x0 + 2].reshape(-1, 3)

    def redness(det):
        r, g, b = outline(det).mean(axis=0)
        return r - (g + b) / 2

    assert redness(best) > 100
    for det in sample.persons.detections:
        if det.id != best.id:
            assert redness(det) < 40


# --------------------------------------------------------------------------- operators

URI = contract.PLUGIN_NAME + "/"


def _run_operator(name, view, **params):
    import fiftyone.operators as foo

    result = foo.execute_operator(URI + name, ctx=dict(view=view, dataset=view._root_dataset.name,
                                                       params={"delegate": False, **params}))
    return result.result


def _form(name, dataset, **params):
    import fiftyone.operators as foo
    from fiftyone.operators.executor import ExecutionContext

    ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": params}, operator_uri=URI + name)
    return foo.get_operator(URI + name).resolve_input(ctx).to_json()["type"]["properties"]


def test_operators_index_and_search(scenes_dataset, tiny_siglip):
    dataset, _ = scenes_dataset
    form = _form("index_persons", dataset)
    assert form["delegate"]["default"] is False  # stock App: cannot schedule and form["matcher"]["default"] == defaults.MATCHER_MODEL
    assert "ground_truth" in str(form["detections_field"])
    search_form = _form("search_persons", dataset, query="  ")
    assert search_form["query"].get("invalid") is True
    assert _form("search_persons", dataset, threshold_type="probability")["threshold"].get("default") is None  # calibrated

    out = _run_operator("index_persons", dataset.view(), matcher=tiny_siglip, detections_field="ground_truth")
    assert out["persons"] == 6 and out["brain_key"] == contract.PERSON_INDEX_KEY
    out = _run_operator("search_persons", dataset.view(), query=QUERY, threshold=0.5,
                        threshold_type="probability", k=1)
    assert out["samples"] == 1
    assert out["best_similarity"] == pytest.approx(max(dataset.values(contract.SAMPLE_SIMILARITY_FIELD)))


def test_delegated_index_reports_progress(scenes_dataset, tiny_siglip):
    import fiftyone.operators as foo
    from fiftyone.operators.delegated import DelegatedOperationService
    from fiftyone.operators.executor import ExecutionRunState

    dataset, _ = scenes_dataset
    queued = foo.execute_operator(URI + "index_persons", ctx=dict(
        view=dataset.view(), request_delegation=True,
        params={"delegate": True, "matcher": tiny_siglip, "detections_field": "ground_truth"}))
    service = DelegatedOperationService()
    service.execute_queued_operations(operator=URI + "index_persons", dataset_name=dataset.name)
    doc = service.get(queued.result["id"])
    assert doc.run_state == ExecutionRunState.COMPLETED, doc.result.error
    assert doc.status.progress == 1.0 and doc.result.result["persons"] == 6


# --------------------------------------------------------------------------- a new process, like the App


def test_index_answers_text_in_a_new_process(scenes_dataset, tiny_siglip, run_python):
    dataset, _ = scenes_dataset
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    dataset.persistent = True
    out = run_python(f"""
import fiftyone as fo
from person_finder.core.search import rank_persons
ds = fo.load_dataset({dataset.name!r})
# what the App's similarity search does on the patches view
patches = ds.to_patches("persons").sort_by_similarity({QUERY!r}, k=3, brain_key={contract.PERSON_INDEX_KEY!r})
print("RESULT", len(patches), patches.first().id)
rows = rank_persons(ds, {QUERY!r}, k=1)
print("RESULT", rows[0]["label_id"])
""")
    lines = [line.split()[1:] for line in out.splitlines() if line.startswith("RESULT")]
    (count, app_first), (ours_first,) = lines
    assert count == "3" and app_first == ours_first


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_are_refused_before_touching_the_dataset(scenes_dataset, tiny_siglip):
    dataset, _ = scenes_dataset
    with pytest.raises(ValueError, match=r"'no_such_field' does not exist.*\['ground_truth'\]"):
        index_persons(dataset, matcher=tiny_siglip, detections_field="no_such_field")
    with pytest.raises(ValueError, match="not a Detections field"):
        index_persons(dataset, matcher=tiny_siglip, detections_field="filepath")
    with pytest.raises(ValueError, match="tracker must be one of"):
        index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", tracker="sort")
    assert not dataset.has_field(contract.PERSONS_FIELD)
    with pytest.raises(ValueError, match="no person index"):
        search_persons(dataset, QUERY)
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    before = dataset.values("persons.detections.label")
    for query in ("", "   ", None):
        with pytest.raises(ValueError, match="non-empty"):
            search_persons(dataset, query)
        with pytest.raises(ValueError, match="non-empty"):
            rank_persons(dataset, query)
    for threshold, kind, message in ((1.5, "cosine", r"\[-1, 1\]"), (-2, "cosine", r"\[-1, 1\]"),
                                     (0.0, "probability", r"\(0, 1\)"), (1.2, "probability", r"\(0, 1\)"),
                                     ("high", "cosine", r"\[-1, 1\]"), (0.5, "logit", "threshold_type")):
        with pytest.raises(ValueError, match=message):
            search_persons(dataset, QUERY, threshold=threshold, threshold_type=kind)
    with pytest.raises(ValueError, match="k must be"):
        rank_persons(dataset, QUERY, k=0)
    assert dataset.values("persons.detections.label") == before
    assert not dataset.has_field(contract.SAMPLE_SIMILARITY_FIELD)


def test_long_query_is_truncated_with_a_warning(scenes_dataset, tiny_siglip, caplog):
    dataset, _ = scenes_dataset
    index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    with caplog.at_level(logging.WARNING):
        rows = rank_persons(dataset, QUERY + " and " + "a very long description " * 40, k=2)
    assert len(rows) == 2 and "truncated" in caplog.text


def test_odd_images_and_boxes(dataset, test_root, tiny_siglip):
    folder = os.path.join(test_root, "odd-images", dataset.name)
    os.makedirs(folder, exist_ok=True)
    scene = np.asarray(synthetic.write_scenes(folder, [synthetic.random_specs(2, seed=9)], width=320,
                                              height=240)[0].filepath and Image.open(
        os.path.join(folder, "scene_0000.jpg")).convert("RGB"))
    images = {
        "gray.png": Image.fromarray(scene).convert("L"),
        "rgba.png": Image.fromarray(scene).convert("RGBA"),
        "deep.png": Image.fromarray((scene[..., 0].astype(np.uint16) * 257)),
    }
    boxes = [
        fo.Detection(label="person", bounding_box=[0.1, 0.1, 0.3, 0.6]),
        fo.Detection(label="person", bounding_box=[0.8, 0.5, 0.5, 0.8]),   # runs off the frame: clipped
        fo.Detection(label="person", bounding_box=[0.5, 0.5, 0.0, 0.2]),   # zero area: dropped
        fo.Detection(label="person", bounding_box=[1.2, 1.1, 0.2, 0.2]),   # outside: dropped
    ]
    samples = []
    for name, image in images.items():
        image.save(os.path.join(folder, name))
        samples.append(fo.Sample(filepath=os.path.join(folder, name), ground_truth=fo.Detections(detections=boxes)))
    with open(os.path.join(folder, "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 not really a jpeg")
    samples.append(fo.Sample(filepath=os.path.join(folder, "broken.jpg"), ground_truth=fo.Detections(detections=boxes)))
    samples.append(fo.Sample(filepath=os.path.join(folder, "missing.jpg")))
    dataset.add_samples(samples)
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    assert summary["errors"] == 2 and summary["processed"] == 3 and summary["persons"] == 6
    errors = dict(zip(dataset.values("filepath"), dataset.values(contract.PERSON_ERROR_FIELD)))
    assert "cannot read image" in errors[os.path.join(folder, "broken.jpg")]
    assert "cannot read image" in errors[os.path.join(folder, "missing.jpg")]
    assert errors[os.path.join(folder, "gray.png")] is None
    for dets in dataset.exists(contract.PERSONS_FIELD).values("persons.detections"):
        assert len(dets) == 2
        x, y, w, h = dets[1].bounding_box
        assert x + w <= 1.0 + 1e-6 and y + h <= 1.0 + 1e-6 and w > 0 and h > 0
    view = search_persons(dataset, QUERY)
    assert view.first()[contract.SAMPLE_SIMILARITY_FIELD] is not None
    assert view.last()[contract.SAMPLE_SIMILARITY_FIELD] is None  # unreadable ones sort last


@pytest.mark.slow
def test_videos_without_people_and_corrupt_videos(dataset, test_root, tiny_siglip):
    folder = os.path.join(test_root, "odd-videos", dataset.name)
    _add_video(dataset, folder, synthetic.random_specs(2, seed=5), num_frames=30, seed=1)
    _add_video(dataset, folder, [], num_frames=30, seed=2)
    broken = os.path.join(folder, "broken.mp4")
    with open(broken, "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42 broken")
    dataset.add_sample(fo.Sample(filepath=broken))
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    assert summary["processed"] == 2 and summary["errors"] == 1 and summary["tracks"] == 2
    assert dataset.values(contract.PERSON_TRACKS_FIELD) == [2, 0, None]
    assert "cannot read video" in dataset.values(contract.PERSON_ERROR_FIELD)[2]
    search_persons(dataset, QUERY, threshold=-1.0)
    matches = dataset.values(contract.VIDEO_MATCHES_FIELD)
    assert len(matches[0].detections) == 2 and matches[1].detections == []
    assert dataset.values(contract.SAMPLE_SIMILARITY_FIELD)[1:] == [None, None]
    again = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    assert again["processed"] == 0 and again["errors"] == 1  # done videos (even empty) are skipped


def test_yolo_path_detects_then_embeds(dataset, test_root, tiny_siglip, tiny_yolo):
    from person_finder.core.models.detector import load_detector

    folder = os.path.join(test_root, "yolo-scenes", dataset.name)
    scenes = _add_scenes(dataset, folder, [synthetic.random_specs(2, seed=1)], width=320, height=256)
    summary = index_persons(dataset, matcher=tiny_siglip, detector=tiny_yolo, confidence=0.0)
    image = np.asarray(Image.open(scenes[0].filepath).convert("RGB"))
    expected = load_detector(tiny_yolo, confidence=0.0).detect([image])[0]
    kept = sum(1 for b in expected if (b[2] - b[0]) >= 1 and (b[3] - b[1]) >= 1)
    assert summary["persons"] == dataset.count("persons.detections") > 0
    assert abs(summary["persons"] - kept) <= 2  # rounding to whole pixels may drop sliver boxes


def test_indexing_a_view_keeps_the_rest_of_the_index(scenes_dataset, tiny_siglip, monkeypatch):
    dataset, _ = scenes_dataset
    first, second = dataset.values("id")
    index_persons(dataset.select(first), matcher=tiny_siglip, detections_field="ground_truth")
    calls = _encoder_calls(monkeypatch)
    index_persons(dataset.select(second), matcher=tiny_siglip, detections_field="ground_truth")
    assert calls["crops"] == 3  # only the second image's people
    rows = rank_persons(dataset, QUERY, k=None)
    assert len(rows) == 6 and {r["sample_id"] for r in rows} == {first, second}
    assert len(rank_persons(dataset.select(second), QUERY, k=None)) == 3


def test_interrupted_runs_resume_where_they_stopped(dataset, test_root, tiny_siglip, monkeypatch):
    """A killed job keeps the index of what it finished: the re-run processes only the rest."""
    import person_finder.core.search.tracking as video

    folder = os.path.join(test_root, "interrupted", dataset.name)
    for seed in (5, 6, 7):
        _add_video(dataset, folder, synthetic.random_specs(2, seed=seed), num_frames=20, seed=seed)
    ids, paths = dataset.values(["id", "filepath"])
    real_track_video, tracked = video.track_video, []

    def killed_at_third_video(path, *args, **kwargs):
        if len(tracked) == 2:
            raise KeyboardInterrupt("the delegated job was killed")
        tracked.append(path)
        return real_track_video(path, *args, **kwargs)

    monkeypatch.setattr(video, "track_video", killed_at_third_video)
    with pytest.raises(KeyboardInterrupt):
        index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    assert {r["sample_id"] for r in rank_persons(dataset, QUERY, k=None)} == set(ids[:2])
    tracked.clear()
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    assert tracked == paths[2:] and summary["processed"] == 1
    assert summary["tracks"] == sum(dataset.values(contract.PERSON_TRACKS_FIELD)) >= 6
    assert {r["sample_id"] for r in rank_persons(dataset, QUERY, k=None)} == set(ids)


def test_interrupted_image_run_keeps_the_batches_it_finished(scenes_dataset, tiny_siglip, monkeypatch):
    from person_finder.core.models.matcher import ImageTextMatcher

    dataset, _ = scenes_dataset
    real_embed = ImageTextMatcher.embed_images

    def killed_at_second_batch(self, images, batch_size=None):
        if killed_at_second_batch.calls == 1:
            raise KeyboardInterrupt("the delegated job was killed")
        killed_at_second_batch.calls += 1
        return real_embed(self, images, batch_size=batch_size)

    killed_at_second_batch.calls = 0
    monkeypatch.setattr(ImageTextMatcher, "embed_images", killed_at_second_batch)
    with pytest.raises(KeyboardInterrupt):  # one image per batch: the first image is finished
        index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth", detector_batch_size=1)
    first, second = dataset.values("id")
    assert {r["sample_id"] for r in rank_persons(dataset, QUERY, k=None)} == {first}
    monkeypatch.setattr(ImageTextMatcher, "embed_images", real_embed)
    calls = _encoder_calls(monkeypatch)
    summary = index_persons(dataset, matcher=tiny_siglip, detections_field="ground_truth")
    assert calls["crops"] == 3 and summary["processed"] == 1  # only the second image's 3 people
    assert {r["sample_id"] for r in rank_persons(dataset, QUERY, k=None)} == {first, second}


