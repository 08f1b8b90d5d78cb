"""Live streams served by ffmpeg on 127.0.0.1: segments indexed as they arrive, tracks across cuts, a drop and a
reconnect, watchlist alerts with webhooks, kill -9 and resume, and the operators."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.operators as foo
from PIL import Image

from person_finder.core import contract, defaults
from person_finder.core.live import add_watchlist, list_alerts, live_status, run_live
from person_finder.core.live.watchlists import live_store
from person_finder.core.search import rank_persons, store
from person_finder.testing import synthetic
from person_finder.testing.mongo import free_port
from person_finder.testing.streams import ForegroundDetector, WebhookReceiver, serve_http

URI = contract.PLUGIN_NAME + "/"
QUERY = "red top and blue trousers"
TARGET = synthetic.PersonSpec("red", "blue", long_sleeves=True, long_lower=True)
OTHER = synthetic.PersonSpec("white", "black", long_sleeves=False, long_lower=True)
FAST = dict(stall_seconds=1.0, backoff_initial=0.2, backoff_max=1.0, give_up_seconds=2.5)


@pytest.fixture(scope="module")
def walk(test_root):
    """6 s of two people walking (320x180, 30 fps), and a detector that finds them (no weights)."""
    truth = synthetic.write_video(os.path.join(test_root, "live", "walk.mp4"), [OTHER, TARGET], num_frames=180,
                                  width=320, height=180, seed=7)
    return truth, ForegroundDetector.from_video(truth.filepath)


@pytest.fixture()
def serve():
    """``serve_http`` whose ffmpeg servers are all killed after the test, whatever happened."""
    started = []

    def start(*args, **kwargs):
        server, url = serve_http(*args, **kwargs)
        started.append(server)
        return server, url

    yield start
    for server in started:
        server.kill()
        server.wait()


def _segments(dataset):
    return sorted(dataset.values(contract.LIVE_SEGMENT_FIELD))


def _assert_index_matches_dataset(dataset):
    assert store.sync_index(dataset, contract.PERSON_INDEX_KEY, contract.PERSONS_FIELD) == (0, 0)


def test_a_stream_that_drops_is_reconnected_and_indexed_segment_by_segment(dataset, test_root, walk, tiny_siglip,
                                                                         serve):
    truth, detector = walk
    port = free_port()
    first, _ = serve(truth.filepath, port=port, duration=3.0)

    def come_back():  # the server dies after 3 s; a new one serves the rest on the same port a second later
        first.wait()
        time.sleep(1.0)
        come_back.server = serve(truth.filepath, port=port, start_seconds=3.0)[0]

    threading.Thread(target=come_back, daemon=True).start()
    add_watchlist(dataset, "everyone", QUERY, threshold=-1.0)
    dead_hook = f"http://127.0.0.1:{free_port()}/alerts"  # nothing listens there
    started = time.time()
    summary = run_live(dataset, f"http://127.0.0.1:{port}/live.ts", os.path.join(test_root, "live", dataset.name),
                       matcher=tiny_siglip, detector=detector, segment_seconds=1.0, webhook_url=dead_hook, **FAST)
    come_back.server.wait(timeout=10)

    assert summary["gaps"] == 1 and summary["reason"].startswith("no frame for 2.5 s")
    (gap,) = live_store(dataset).get(contract.LIVE_GAPS_KEY)
    assert gap["reconnects"] >= 1 and 0.8 < gap["seconds"] < 5, gap
    numbers = _segments(dataset)
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 6
    after_gap = dataset.match(fo.ViewField(contract.LIVE_GAP_FIELD) > 0)
    assert after_gap.values(contract.LIVE_SEGMENT_FIELD) == [gap["before_segment"]]
    assert sum(dataset.values("metadata.total_frame_count")) >= 170  # 180 sent, a few lost in the drop at most
    assert set(dataset.values("metadata.encoding_str")) == {"avc1"}  # H.264, what the App plays
    assert None not in dataset.values(contract.PERSON_TRACKS_FIELD)
    # a walker crossing a segment cut keeps their track id
    tracks_by_segment = {n: set(ids) for n, ids in zip(dataset.values(contract.LIVE_SEGMENT_FIELD),
                                                       dataset.values("frames.persons.detections.index"))
                         for ids in [[i for frame in ids for i in (frame or [])]]}
    assert any(tracks_by_segment[n] & tracks_by_segment[n + 1] for n in numbers[:-1] if n + 1 in tracks_by_segment)
    # every segment is in the person index: a text query ranks each (segment, track)
    rows = rank_persons(dataset, QUERY, k=None)
    assert {(r["sample_id"], r["track_id"]) for r in rows} == {
        (sid, t) for sid, ids in zip(dataset.values("id"), dataset.values("frames.persons.detections.index"))
        for t in {i for frame in ids for i in (frame or [])}}
    _assert_index_matches_dataset(dataset)
    # the webhook is unreachable: every alert is still recorded, indexing was not held up
    assert summary["alerts"] >= 2 and summary["webhook"]["failed"] == summary["alerts"]
    assert time.time() - started < 60
    assert live_status(dataset)["state"] == "stopped"


@pytest.mark.slow
def test_a_watchlist_alerts_when_the_described_person_appears(dataset, test_root, walk, finetuned_siglip, serve):
    import cv2

    from person_finder.core.search.gallery import shared_matcher

    truth, detector = walk
    matcher = shared_matcher(finetuned_siglip)
    frame_number = max(set(truth.tracks[0]) & set(truth.tracks[1]), key=lambda n: truth.tracks[1][n][2])
    capture = cv2.VideoCapture(truth.filepath)
    capture.set(cv2.CAP_PROP_POS_FRAMES, frame_number - 1)
    frame = capture.read()[1][..., ::-1]
    width, height = truth.frame_size
    crops = [frame[int(y * height):int((y + h) * height), int(x * width):int((x + w) * width)]
             for x, y, w, h in (truth.tracks[p][frame_number] for p in (0, 1))]
    other, target = matcher.embed_images(crops) @ matcher.embed_texts([QUERY])[0]
    assert target > other
    add_watchlist(dataset, "red-blue", QUERY, threshold=float((target + other) / 2))
    add_watchlist(dataset, "nobody", "a person in a yellow dress", threshold=0.99)
    server, url = serve(truth.filepath)
    with WebhookReceiver() as hook:
        summary = run_live(dataset, url, os.path.join(test_root, "live", dataset.name), matcher=finetuned_siglip,
                           detector=detector, segment_seconds=2.0, webhook_url=hook.url, **FAST)
    server.wait(timeout=10)

    alerts = list_alerts(dataset)
    assert summary["alerts"] == len(alerts) >= 1 and {a["watchlist"] for a in alerts} == {"red-blue"}
    assert len({a["track_id"] for a in alerts}) == len(alerts)  # one alert per track and watchlist
    alert = alerts[-1]
    assert alert["latency_s"] < 2.0, alert
    _assert_red_over_blue(alert["crop_path"])
    assert sorted(r["track_id"] for r in hook.records) == sorted(a["track_id"] for a in alerts)
    segment = dataset[alert["sample_id"]]
    assert segment[contract.LIVE_SEGMENT_FIELD] == alert["segment"]
    (span,) = [d for d in segment[contract.LIVE_ALERTS_FIELD].detections if d.index == alert["track_id"]]
    assert span.label == "red-blue" and span.support[0] <= alert["frame_number"] <= span.support[1]
    view = dataset.load_saved_view(contract.LIVE_ALERTS_VIEW)
    assert set(view.values("id")) == {a["sample_id"] for a in alerts}


def _assert_red_over_blue(path):
    """The alert's crop shows the red top and blue trousers (the target walker)."""
    import cv2

    crop = cv2.imread(path)[..., ::-1].astype(float)
    third = len(crop) // 3
    top, legs = crop[third:2 * third].reshape(-1, 3).mean(0), crop[2 * third:].reshape(-1, 3).mean(0)
    assert top[0] > top[2] + 25 and legs[2] > legs[0] + 25, (top, legs)


def _track_vectors(archive, truth):
    """``{person of the truth: (sample id, track id, [its embeddings])}`` of the indexed walk video."""
    (sample_id,), (frames,) = archive.values("id"), archive.values("frames.persons.detections")
    out = {}
    for number, people in enumerate(frames, start=1):
        for person in people or []:
            x, y, w, h = person.bounding_box
            there = [p for p in truth.tracks if number in truth.tracks[p]]  # the truth skips half-visible people
            if not there:
                continue
            who = min(there, key=lambda p: abs(truth.tracks[p][number][0] + truth.tracks[p][number][2] / 2 - x - w / 2))
            _, _, vectors = out.setdefault(who, (sample_id, person.index, []))
            vector = getattr(person, contract.EMBEDDING_ATTR, None)
            if vector is not None and person.index == out[who][1]:
                vectors.append(np.asarray(vector))
    return out


def test_an_example_watchlist_alerts_when_the_same_person_enters_the_stream(dataset, test_root, walk, tiny_siglip,
                                                                           serve):
    from person_finder.core.identities.examples import example_vector
    from person_finder.core.search import index_persons

    truth, detector = walk
    archive = fo.Dataset()  # an indexed recording of the same walkers: the example comes from there
    try:
        archive.add_sample(fo.Sample(filepath=truth.filepath))
        index_persons(archive, matcher=tiny_siglip, detector=detector)
        tracks = _track_vectors(archive, truth)
        sample_id, track_id, _ = tracks[1]  # the person in a red top and blue trousers
        example = example_vector(archive, track=(sample_id, track_id))[0]
        target, other = (np.stack(tracks[p][2]) @ example for p in (1, 0))
        assert target.min() > other.max(), (target, other)
        threshold = float((target.min() + other.max()) / 2)
        with pytest.raises(ValueError, match="cosine"):
            add_watchlist(dataset, "bad", track=(sample_id, track_id), examples_from=archive,
                          threshold_type="probability")
        with pytest.raises(ValueError, match="either a text query or one example"):
            add_watchlist(dataset, "bad", QUERY, track=(sample_id, track_id), examples_from=archive)
        (saved,) = add_watchlist(dataset, "like-target", track=(sample_id, track_id), examples_from=archive,
                                 threshold=threshold)
        assert saved["example"] == {"track": [sample_id, track_id]} and len(saved["vector"]) == len(example)
        server, url = serve(truth.filepath)
        summary = run_live(dataset, url, os.path.join(test_root, "live", dataset.name), matcher=tiny_siglip,
                           detector=detector, segment_seconds=2.0, **FAST)
        server.wait(timeout=10)
        # the operator: an example person by label id, from the other dataset, at the identity-link threshold
        label_id = archive.values("frames.persons.detections.id", unwind=True)[0]
        lists = foo.execute_operator(URI + "manage_watchlist", ctx=dict(view=dataset.view(), params={
            "name": "by-label", "example_label_id": label_id, "examples_dataset": archive.name})).result["watchlists"]
        (by_label,) = [w for w in lists if w["name"] == "by-label"]
        assert by_label["threshold"] == defaults.IDENTITY_LINK_THRESHOLD and by_label["example"] == {
            "label_id": label_id}
        assert np.allclose(by_label["vector"], example_vector(archive, label_id=label_id)[0], atol=1e-5)
        from fiftyone.operators.executor import ExecutionContext

        for params, threshold in (({}, defaults.WATCHLIST_THRESHOLD),
                                  ({"example_label_id": label_id}, defaults.IDENTITY_LINK_THRESHOLD)):
            ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": params},
                                   operator_uri=URI + "manage_watchlist")
            form = foo.get_operator(URI + "manage_watchlist").resolve_input(ctx).to_json()["type"]["properties"]
            assert form["threshold"]["default"] == threshold and "example_image" in form
    finally:
        archive.delete()

    alerts = list_alerts(dataset)
    assert summary["alerts"] == len(alerts) >= 1 and {a["watchlist"] for a in alerts} == {"like-target"}
    for alert in alerts:
        assert alert["score"] >= threshold and alert["probability"] is None and alert["threshold_type"] == "cosine"
        _assert_red_over_blue(alert["crop_path"])
    assert alerts[-1]["latency_s"] < 2.0, alerts[-1]


CHILD = """
import fiftyone as fo
from person_finder.core.live import run_live
from person_finder.testing.streams import ForegroundDetector
run_live(fo.load_dataset({name!r}), {url!r}, {media!r}, matcher={matcher!r},
         detector=ForegroundDetector.from_video({video!r}), segment_seconds=1.0, give_up_seconds=30)
"""


def test_kill_9_loses_at_most_the_segment_in_flight_and_a_restart_resumes(dataset, test_root, walk, tiny_siglip, serve):
    import shutil

    truth, detector = walk
    dataset.persistent = True
    media = os.path.join(test_root, "live", dataset.name)
    server, url = serve(truth.filepath)
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(name=dataset.name, url=url, media=media,
                                                                 matcher=tiny_siglip, video=truth.filepath)])
    deadline = time.time() + 120
    while len(dataset.exists(contract.PERSON_TRACKS_FIELD)) < 2 and time.time() < deadline:
        time.sleep(0.2)
        dataset.reload()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    server.kill()
    server.wait()
    time.sleep(0.5)  # the orphaned encoder finishes its .part file
    dataset.reload()
    before = _segments(dataset)
    reserved = live_store(dataset).get(contract.LIVE_NEXT_SEGMENT_KEY)
    assert len(before) >= 2 and reserved > max(before)
    # the other states a kill can leave: a finished file never added, a sample added but not indexed
    orphan = os.path.join(media, contract.LIVE_SEGMENT_NAME.format(reserved + 1))
    shutil.copy(dataset.first().filepath, orphan)
    unindexed = dataset.match(fo.ViewField(contract.LIVE_SEGMENT_FIELD) == before[-1]).first()
    dataset.set_values(contract.PERSON_TRACKS_FIELD, {unindexed.id: None}, key_field="id")
    old_tracks = dataset.bounds("frames.persons.detections.index")[1]

    _, url = serve(truth.filepath)
    summary = run_live(dataset, url, media, matcher=tiny_siglip, detector=detector, segment_seconds=1.0,
                       max_segments=2, **FAST)

    assert summary["resumed_segments"] == 2  # the orphan file and the unindexed sample
    after = _segments(dataset)
    assert len(after) == len(set(after)) == len(before) + 1 + 2
    assert after[-2:] == [reserved + 2, reserved + 3]  # numbers are never reused
    assert None not in dataset.values(contract.PERSON_TRACKS_FIELD)
    assert not [f for f in os.listdir(media) if f.endswith(contract.LIVE_PART_SUFFIX)]
    new_ids = dataset.match(fo.ViewField(contract.LIVE_SEGMENT_FIELD) > reserved + 1).distinct(
        "frames.persons.detections.index")
    assert new_ids and min(new_ids) > old_tracks  # track ids stay unique across the restart
    _assert_index_matches_dataset(dataset)


def test_operators_start_watch_and_stop_a_live_job(dataset, test_root, walk, tiny_siglip, tiny_yolo, serve):
    truth, _ = walk
    watch = URI + "manage_watchlist"
    foo.execute_operator(watch, ctx=dict(view=dataset.view(), params={
        "name": "red-blue", "query": QUERY, "threshold": 0.3}))
    with pytest.raises(Exception, match=r"probability threshold must be in \(0, 1\), got 1.0"):
        foo.execute_operator(watch, ctx=dict(view=dataset.view(), params={
            "name": "bad", "query": QUERY, "threshold": 1.0, "threshold_type": "probability"}))
    assert [w["name"] for w in live_store(dataset).get(contract.LIVE_WATCHLISTS_KEY)] == ["red-blue"]

    params = {"source": truth.filepath, "media_dir": os.path.join(test_root, "live", dataset.name),
              "matcher": tiny_siglip, "detector": tiny_yolo, "segment_seconds": 1.0}
    queued = foo.execute_operator(URI + "start_live_stream", ctx=dict(view=dataset.view(), request_delegation=True,
                                                                      params=params))
    assert queued.delegated
    _, url = serve(truth.filepath)
    job = {}
    thread = threading.Thread(target=lambda: job.update(foo.execute_operator(
        URI + "start_live_stream", ctx=dict(view=dataset.view(), params={**params, "source": url})).result))
    thread.start()
    deadline = time.time() + 60
    while not len(dataset.exists(contract.PERSON_TRACKS_FIELD)) and time.time() < deadline:
        time.sleep(0.2)
    status = foo.execute_operator(URI + "live_stream_status", ctx=dict(view=dataset.view(), params={})).result
    assert status["status"]["state"] == "running" and status["watchlists"][0]["name"] == "red-blue"
    foo.execute_operator(URI + "stop_live_stream", ctx=dict(view=dataset.view(), params={}))
    thread.join(timeout=30)
    assert job["reason"] == "stop requested (live store)" and "segments" in job["message"]
    assert job["segments"] == len(dataset) >= 1 and job["frames"] < truth.num_frames
    done = foo.execute_operator(URI + "live_stream_status", ctx=dict(view=dataset.view(), params={})).result
    assert done["status"]["state"] == "stopped" and done["status"]["segments"] == len(dataset)


def test_the_command_line_stops_cleanly_on_sigterm(dataset, test_root, walk, tiny_siglip, tiny_yolo, serve):
    truth, _ = walk
    dataset.persistent = True
    _, url = serve(truth.filepath)
    child = subprocess.Popen([sys.executable, "-m", "person_finder.core.live", "run", url, "--dataset", dataset.name,
                              "--media-dir", os.path.join(test_root, "live", dataset.name), "--matcher", tiny_siglip,
                              "--detector", tiny_yolo, "--segment-seconds", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not len(dataset.exists(contract.PERSON_TRACKS_FIELD)) and time.time() < deadline:
        time.sleep(0.2)
        dataset.reload()
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err[-2000:]
    assert '"reason": "stop requested (signal)"' in out
    dataset.reload()
    assert None not in dataset.values(contract.PERSON_TRACKS_FIELD)


def test_bad_input_is_refused_before_anything_is_written(dataset, test_root, tiny_siglip):
    dataset.add_sample(fo.Sample(filepath=os.path.join(test_root, "image.jpg")))
    media = os.path.join(test_root, "live", dataset.name)
    with pytest.raises(ValueError, match="use an empty or video dataset, not a 'image' one"):
        run_live(dataset, "udp://127.0.0.1:5000", media, matcher=tiny_siglip)
    empty = fo.Dataset()
    for options, message in (({"segment_seconds": 0}, "segment_seconds must be > 0, got 0"),
                             ({"precision": "fp8"}, r"precision must be one of \['auto', 'fp32', 'bf16'\]"),
                             ({"webhook_url": "ftp://x"}, "webhook URL must start with http:// or https://")):
        with pytest.raises(ValueError, match=message):
            run_live(empty, "udp://127.0.0.1:5000", media, matcher=tiny_siglip, **options)
    assert len(empty) == 0 and live_store(empty).get(contract.LIVE_STATUS_KEY) is None
    empty.delete()


def test_corrupt_packets_and_a_resolution_change_do_not_stop_indexing(dataset, test_root, walk, tiny_siglip):
    truth, detector = walk
    folder = os.path.join(test_root, "live", dataset.name)
    os.makedirs(folder)
    parts = []
    for size, start in (("320x180", 0), ("240x136", 3)):  # the picture shrinks half-way
        parts.append(os.path.join(folder, f"{size}.ts"))
        subprocess.run([synthetic.ffmpeg_binary(), "-loglevel", "error", "-ss", str(start), "-t", "3", "-i",
                        truth.filepath, "-vf", f"scale={size.replace('x', ':')}", "-c:v", "libx264", "-g", "15",
                        "-f", "mpegts", parts[-1]], check=True)
    data = bytearray(b"".join(open(p, "rb").read() for p in parts))
    rng = np.random.default_rng(0)
    for offset in rng.integers(len(data) // 10, len(data) * 9 // 10, size=20):  # garbage in 20 places
        data[offset:offset + 188] = rng.integers(0, 256, 188, dtype=np.uint8).tobytes()
    stream = os.path.join(folder, "damaged.ts")
    with open(stream, "wb") as f:
        f.write(data)

    summary = run_live(dataset, stream, os.path.join(folder, "segments"), matcher=tiny_siglip, detector=detector,
                       segment_seconds=2.0, **FAST)

    assert summary["reason"] == "end of file" and summary["frames"] >= 150, summary
    assert None not in dataset.values(contract.PERSON_TRACKS_FIELD)
    assert set(dataset.values("metadata.frame_width")) == {320}  # the decoder scales a new size to the first
    assert dataset.count("frames.persons.detections") > 0
    _assert_index_matches_dataset(dataset)


def test_a_growing_recording_is_followed_as_it_is_written(dataset, test_root, walk, tiny_siglip):
    truth, detector = walk
    folder = os.path.join(test_root, "live", dataset.name)
    os.makedirs(folder)
    recording = os.path.join(folder, "recording.ts")
    writer = subprocess.Popen([synthetic.ffmpeg_binary(), "-loglevel", "error", "-re", "-i", truth.filepath, "-t", "4",
                               "-c:v", "libx264", "-g", "15", "-f", "mpegts", recording])
    try:
        while not os.path.exists(recording) or os.path.getsize(recording) < 20_000:
            time.sleep(0.1)
        summary = run_live(dataset, recording, os.path.join(folder, "segments"), matcher=tiny_siglip,
                           detector=detector, segment_seconds=2.0, follow=True, **FAST)
    finally:
        writer.kill()
    assert 110 <= summary["frames"] <= 120 and summary["video_seconds"] >= 3.6, summary  # 4 s, nothing read twice
    assert _segments(dataset)[:2] == [1, 2] and None not in dataset.values(contract.PERSON_TRACKS_FIELD)


def test_the_command_line_manages_text_and_example_watchlists(dataset, test_root, walk, tiny_siglip, capsys):
    """``watch`` by text and by each --like-* example (track, label, identity, image + --matcher), ``unwatch``,
    ``status`` and ``stop``: what the CLI saves is what the SDK computes for the same example."""
    from person_finder.core.identities import link_identities
    from person_finder.core.identities.examples import example_vector
    from person_finder.core.live.__main__ import main
    from person_finder.core.models.matcher import load_matcher
    from person_finder.core.search import index_persons

    truth, detector = walk
    archive = fo.Dataset()
    try:
        archive.add_sample(fo.Sample(filepath=truth.filepath))
        index_persons(archive, matcher=tiny_siglip, detector=detector)
        link_identities(archive)
        sample_id, track_id, _ = _track_vectors(archive, truth)[1]
        label_id = archive.values("frames.persons.detections.id", unwind=True)[0]
        identity = archive.values(f"frames.persons.detections.{contract.IDENTITY_ATTR}", unwind=True)[0]
        crop = os.path.join(test_root, "live", f"{dataset.name}-example.jpg")
        synthetic.render_crop(TARGET, seed=3).save(crop)

        def cli(*args):
            code = main([*args, "--dataset", dataset.name])
            out = capsys.readouterr()
            return code, out.out, out.err

        base = ("watch", "--examples-from", archive.name)
        assert cli("watch", QUERY, "--name", "text", "--threshold", "0.6", "--threshold-type", "probability")[0] == 0
        assert cli(*base, "--name", "by-track", "--like-track", f"{sample_id}:{track_id}")[0] == 0
        assert cli(*base, "--name", "by-label", "--like-label", label_id)[0] == 0
        assert cli(*base, "--name", "by-identity", "--like-identity", str(identity))[0] == 0
        code, out, _ = cli("watch", "--name", "by-image", "--like-image", crop, "--matcher", tiny_siglip)
        saved = {w["name"]: w for w in json.loads(out)}
        assert code == 0 and list(saved) == ["text", "by-track", "by-label", "by-identity", "by-image"]
        assert saved["text"]["query"] == QUERY and saved["text"]["threshold_type"] == "probability"
        for name, example in (("by-track", {"track": (sample_id, track_id)}), ("by-label", {"label_id": label_id}),
                              ("by-identity", {"identity": identity})):
            assert saved[name]["threshold"] == defaults.IDENTITY_LINK_THRESHOLD
            assert np.allclose(saved[name]["vector"], example_vector(archive, **example)[0], atol=1e-5), name
        assert saved["by-track"]["example"] == {"track": [sample_id, track_id]}
        image_vector = load_matcher(tiny_siglip).embed_images([Image.open(crop).convert("RGB")])[0]
        assert np.allclose(saved["by-image"]["vector"], image_vector, atol=1e-5)
    finally:
        archive.delete()

    code, _, err = cli("watch", "--name", "bad", "--like-track", "no-colon")
    assert code == 2 and "--like-track takes VIDEO_SAMPLE_ID:TRACK_ID, got 'no-colon'" in err
    with pytest.raises(ValueError, match="either a text query or one example"):
        cli("watch", QUERY, "--name", "both", "--like-label", "x")
    code, out, _ = cli("unwatch", "by-label")
    assert code == 0 and "by-label" not in [w["name"] for w in json.loads(out)]
    code, out, _ = cli("status")
    assert code == 0 and [w["name"] for w in json.loads(out)["watchlists"]] == ["text", "by-track", "by-identity",
                                                                                 "by-image"]
    code, out, _ = cli("stop")
    assert code == 0 and "stop requested" in out and live_store(dataset).get(contract.LIVE_STOP_KEY)
    assert main(["status", "--dataset", "no-such-dataset-here"]) == 2
    assert "no dataset 'no-such-dataset-here'" in capsys.readouterr().err
