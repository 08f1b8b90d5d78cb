"""A live job: read a stream, cut it into indexed video segments, score watchlists, raise alerts.

Threads: the reader decodes (:mod:`.source`); the job's own thread detects,
tracks, embeds (one :class:`~core.search.tracking.TrackBuilder` for the
whole stream, so tracks continue across segment cuts), scores the
watchlists and feeds the segment's ffmpeg encoder; a writer thread turns
each finished segment into a video sample with ``frames.persons`` and adds
its vectors to the person index; a webhook thread posts alerts.

The truth is on the dataset: segment numbers are reserved in the live
store before use, every finished file becomes a sample before its persons
are written, and a sample without ``person_tracks`` is redone by
``index_persons`` when the job restarts, so a kill loses at most the
segment being encoded.

Example::

    from person_finder.core.live import run_live
    summary = run_live(dataset, "rtsp://cam.local/live", "/data/live", matcher="google/siglip-base-patch16-224",
                       detector="yolo26n.pt", segment_seconds=60)
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import queue
import re
import socket
import threading
import time

from .. import contract, defaults
from .segments import SegmentEncoder, leftover_files, segment_number
from .source import End, Frame, Gap, StreamReader, check_source, redact
from .watchlists import WatchlistScorer, WebhookSender, live_store, save_crop

logger = logging.getLogger(__name__)

#: Tracks remembered for "already alerted" / "first seen" (the oldest are forgotten past this).
_REMEMBERED_TRACKS = 10_000


def request_stop(dataset):
    """Ask the dataset's running live job to stop (it finishes and saves the segment in progress).

    Example::

        request_stop(dataset)
    """
    live_store(dataset).set(contract.LIVE_STOP_KEY, True)


def live_status(dataset):
    """The live job's last status (state, segments, frames, alerts, gaps, real-time factor...), or None.

    ``state`` is "running", "stopped" or "failed"; a "running" status whose
    process is gone (this machine) or whose heartbeat is older than 3 polls
    is reported as "lost" (the job was killed).

    Example::

        live_status(dataset)["segments"]
    """
    from ..search.store import is_dead_local_process

    status = live_store(dataset).get(contract.LIVE_STATUS_KEY)
    if status and status.get("state") == "running" and (
            is_dead_local_process(status.get("host"), status.get("pid")) or
            time.time() - status.get("heartbeat", 0) > 3 * max(status.get("poll_seconds", 1.0), 1.0) + 5):
        status = {**status, "state": "lost"}
    return status


def _utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).replace(tzinfo=None) if epoch else None


def _remember(mapping, key, value):
    mapping.setdefault(key, value)
    if len(mapping) > _REMEMBERED_TRACKS:
        mapping.pop(next(iter(mapping)))


class LiveJob:
    """One live job on ``dataset``; see :func:`run_live` for the parameters."""

    def __init__(self, dataset, source, media_dir, matcher=defaults.MATCHER_MODEL, detector=defaults.DETECTOR_MODEL,
                 segment_seconds=defaults.LIVE_SEGMENT_SECONDS, persons_field=contract.PERSONS_FIELD,
                 brain_key=contract.PERSON_INDEX_KEY, confidence=defaults.DETECTOR_CONFIDENCE,
                 detect_every=defaults.VIDEO_DETECT_EVERY, refresh_frames=defaults.TRACK_REFRESH_FRAMES,
                 refresh_iou=defaults.TRACK_REFRESH_IOU, tracker=defaults.TRACKER,
                 batch_size=defaults.LIVE_DETECT_BATCH, precision=defaults.LIVE_PRECISION, webhook_url=None,
                 stall_seconds=defaults.LIVE_STALL_SECONDS, give_up_seconds=defaults.LIVE_GIVE_UP_SECONDS,
                 backoff_initial=defaults.LIVE_RECONNECT_INITIAL_S, backoff_max=defaults.LIVE_RECONNECT_MAX_S,
                 follow=False, keep_up=True, max_segments=None, backend=None, device=None,
                 poll_seconds=defaults.LIVE_POLL_SECONDS, stop_event=None, on_progress=None):
        from ..models.loading import resolve_device
        from ..models.precision import resolve_precision
        from ..search.tracking import TRACKERS

        check_source(source)
        if dataset.media_type not in (None, "video"):
            raise ValueError(f"live segments are videos: use an empty or video dataset, not a "
                             f"{dataset.media_type!r} one ({dataset.name!r})")
        if not media_dir:
            raise ValueError("media_dir is needed: the folder where the segment MP4 files are written")
        if not float(segment_seconds) > 0:
            raise ValueError(f"segment_seconds must be > 0, got {segment_seconds}")
        if tracker not in TRACKERS:
            raise ValueError(f"tracker must be one of {list(TRACKERS)}, got {tracker!r}")
        for name, value in (("detect_every", detect_every), ("refresh_frames", refresh_frames),
                            ("batch_size", batch_size)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if max_segments is not None and int(max_segments) < 1:
            raise ValueError(f"max_segments must be >= 1 or None, got {max_segments}")
        self.dataset, self.source, self.media_dir = dataset, str(source).strip(), os.path.abspath(media_dir)
        os.makedirs(self.media_dir, exist_ok=True)
        self.device = resolve_device(device)
        self.precision, self.precision_reason = resolve_precision(precision, self.device)
        self.matcher_name, self.detector_spec = matcher, detector
        self.segment_seconds, self.persons_field, self.brain_key = float(segment_seconds), persons_field, brain_key
        self.confidence, self.detect_every, self.refresh_frames = confidence, int(detect_every), int(refresh_frames)
        self.refresh_iou, self.tracker_name, self.batch_size = refresh_iou, tracker, int(batch_size)
        self.reader_options = dict(stall_seconds=stall_seconds, give_up_seconds=give_up_seconds,
                                   backoff_initial=backoff_initial, backoff_max=backoff_max, follow=follow)
        self.webhook = WebhookSender(webhook_url) if webhook_url else None
        self.max_segments, self.backend, self.poll_seconds = max_segments, backend, float(poll_seconds)
        self.keep_up = keep_up
        self.stop_event = stop_event or threading.Event()
        self.on_progress = on_progress
        self.store = live_store(dataset)
        self.counts = {"segments": 0, "frames": 0, "frames_not_detected": 0, "alerts": 0, "gaps": 0,
                       "resumed_segments": 0}
        self.writer_error = None

    # ------------------------------------------------------------------ set-up

    def _load_models(self):
        from ..models.detector import load_detector
        from ..search.gallery import shared_matcher

        self.matcher = shared_matcher(self.matcher_name, device=self.device)
        self.detector = self.detector_spec if hasattr(self.detector_spec, "detect") else \
            load_detector(self.detector_spec, confidence=self.confidence, device=self.device)
        self.scorer = WatchlistScorer(self.matcher)

    def _claim(self):
        """Refuse to run beside another live job on this dataset; clear an old stop request."""
        status = live_status(self.dataset)
        if status and status.get("state") == "running" and status.get("pid") != os.getpid():
            raise RuntimeError(f"a live job is already running on {self.dataset.name!r} (pid {status.get('pid')} on "
                               f"{status.get('host')}, source {status.get('source')}); stop it first")
        self.store.set(contract.LIVE_STOP_KEY, False)

    def _declare_fields(self):
        """Declare the segment fields up front (a gap-less segment writes None, which declares nothing)."""
        import fiftyone.core.fields as fof
        import fiftyone.core.labels as fol

        kinds = {contract.LIVE_SEGMENT_FIELD: dict(ftype=fof.IntField),
                 contract.LIVE_START_FIELD: dict(ftype=fof.DateTimeField),
                 contract.LIVE_END_FIELD: dict(ftype=fof.DateTimeField),
                 contract.LIVE_GAP_FIELD: dict(ftype=fof.FloatField),
                 contract.LIVE_ALERTS_FIELD: dict(ftype=fof.EmbeddedDocumentField,
                                                  embedded_doc_type=fol.TemporalDetections)}
        for name, kind in kinds.items():
            if not self.dataset.has_sample_field(name):
                self.dataset.add_sample_field(name, **kind)

    def _recover(self):
        """Finish what a killed run left: drop unfinished files, add finished ones, index unindexed segments."""
        import fiftyone as fo

        from ..models.precision import autocast
        from ..search import index_persons

        dataset = self.dataset
        self._declare_fields()
        known = set(dataset.distinct(contract.LIVE_SEGMENT_FIELD))
        parts, orphans = leftover_files(self.media_dir, known)
        for part in parts:
            logger.warning("dropping the unfinished segment %s left by a killed run", part)
            os.remove(part)
        if orphans:
            dataset.add_samples([fo.Sample(filepath=p, **{contract.LIVE_SEGMENT_FIELD: segment_number(p)})
                                 for p in orphans])
            known |= {segment_number(p) for p in orphans}
        if known:
            todo = dataset.exists(contract.LIVE_SEGMENT_FIELD)
            if dataset.has_sample_field(contract.PERSON_TRACKS_FIELD):
                todo = todo.exists(contract.PERSON_TRACKS_FIELD, False)
            self.counts["resumed_segments"] = len(todo)  # counted now: indexing empties the view
            if len(todo):
                logger.warning("indexing %d segment(s) a killed run saved but did not index", len(todo))
                todo.compute_metadata()
                with autocast(self.precision, self.device):
                    index_persons(todo, matcher=self.matcher_name, detector=self.detector,
                                  persons_field=self.persons_field, brain_key=self.brain_key,
                                  detect_every=self.detect_every, refresh_frames=self.refresh_frames,
                                  refresh_iou=self.refresh_iou, tracker=self.tracker_name,
                                  detector_batch_size=self.batch_size, backend=self.backend, device=self.device)
        self.next_number = max([int(self.store.get(contract.LIVE_NEXT_SEGMENT_KEY) or 1)] + [n + 1 for n in known])
        path = f"frames.{self.persons_field}.detections.index"
        top = dataset.bounds(path)[1] if dataset.media_type == "video" and dataset.has_frame_field(
            self.persons_field) else None
        self.track_offset = int(top or 0)  # track ids stay unique across restarts
        self.index_ready = False

    # ------------------------------------------------------------------ the loop

    def run(self):
        """Run until the stream ends, a stop is asked (store flag, ``stop_event``), or ``max_segments``."""
        from ..search.tracking import TrackBuilder

        self._claim()
        self._load_models()
        self._recover()
        self.started = time.time()
        self.reason = None
        self.builder = TrackBuilder(self._detect, self.matcher.embed_images, detect_every=self.detect_every,
                                    refresh_frames=self.refresh_frames, refresh_iou=self.refresh_iou,
                                    tracker=self.tracker_name, embed_batch_size=self.matcher.batch_size)
        self.segment, self.batch, self.gap_before = None, [], None
        self.alerted, self.first_seen = {}, {}
        self.writer_queue = queue.Queue(maxsize=defaults.LIVE_SEGMENT_QUEUE)
        writer = threading.Thread(target=self._write_segments, name="person-finder-segment-writer", daemon=True)
        writer.start()
        self.reader = StreamReader(self.source, **self.reader_options).start()
        logger.info("live job on %s: source %s, segments of %.0f s in %s, %s", self.dataset.name,
                    redact(self.source), self.segment_seconds, self.media_dir, self.precision_reason)
        last_poll = 0.0
        try:
            self._poll()
            while self.reason is None:
                item = self.reader.get(timeout=self.poll_seconds)
                if time.monotonic() - last_poll >= self.poll_seconds:
                    last_poll = time.monotonic()
                    self._poll()
                    if self.reason:
                        break
                if isinstance(item, Frame):
                    self._frame(item)
                elif isinstance(item, Gap):
                    self._gap(item)
                elif isinstance(item, End):
                    self.reason = item.reason
                if self.writer_error:
                    raise self.writer_error
            self._close_segment()
        except BaseException as e:
            self._set_status("failed", error=f"{type(e).__name__}: {e}")
            if self.segment is not None:
                self.segment["encoder"].abandon()
            raise
        finally:
            self.reader.stop()
            self.writer_queue.put(None)
            writer.join()
            if self.webhook:
                self.webhook.close()
        if self.writer_error:
            self._set_status("failed", error=str(self.writer_error))
            raise self.writer_error
        self._set_status("stopped")
        return self.summary()

    def summary(self):
        elapsed = time.time() - self.started
        video_seconds = self.counts["frames"] / (self.reader.fps or defaults.LIVE_FALLBACK_FPS)
        return {**self.counts, "reason": self.reason, "precision": self.precision,
                "precision_reason": self.precision_reason, "video_seconds": round(video_seconds, 3),
                "elapsed_seconds": round(elapsed, 3), "realtime_factor": round(video_seconds / max(elapsed, 1e-9), 3),
                "webhook": dict(self.webhook.counts) if self.webhook else None}

    def _poll(self):
        """Read the stop flag and the watchlists; write the status (the heartbeat)."""
        from .watchlists import list_watchlists

        if self.stop_event.is_set():
            self.reason = "stop requested (signal)"
        elif self.store.get(contract.LIVE_STOP_KEY):
            self.reason = "stop requested (live store)"
        self.scorer.refresh(list_watchlists(self.dataset))
        self._set_status("running")

    def _set_status(self, state, **extra):
        status = {"state": state, "pid": os.getpid(), "host": socket.gethostname(), "source": redact(self.source),
                  "heartbeat": time.time(), "poll_seconds": self.poll_seconds,
                  "segment": self.segment["number"] if getattr(self, "segment", None) else None,
                  "watchlists": len(self.scorer.lists) if hasattr(self, "scorer") else 0, **extra}
        if hasattr(self, "reader"):
            status.update(self.summary())
        self.store.set(contract.LIVE_STATUS_KEY, status)
        if self.on_progress is not None and state == "running":
            self.on_progress(0.5, f"{self.counts['segments']} segments, {self.counts['alerts']} alerts")

    def _detect(self, numbers, frames):
        return self.detector.detect(frames, batch_size=self.batch_size, bgr=True)

    def _frame(self, frame):
        size = frame.image.shape[1::-1]
        if self.segment is not None and size != self.segment["size"]:
            logger.warning("stream picture changed from %s to %s: new segment", self.segment["size"], size)
            self._close_segment(reset_tracker=True)
        if self.segment is None:
            self._open_segment(size, frame.arrived)
        self.segment["encoder"].write(frame.image)
        self.segment["ended"] = frame.arrived
        self.batch.append(frame)
        self.counts["frames"] += 1
        if len(self.batch) >= self.batch_size:
            self._process()
        if self.segment["encoder"].frames >= self.segment["frames"]:
            self._close_segment()
            if self.max_segments and self.counts["segments"] >= int(self.max_segments):
                self.reason = f"{self.max_segments} segments done"

    def _gap(self, gap):
        self._close_segment()
        self.counts["gaps"] += 1
        self.gap_before = (self.gap_before or 0.0) + gap.seconds
        record = {"start": gap.start, "end": gap.end, "seconds": round(gap.seconds, 3), "reason": gap.reason,
                  "reconnects": gap.reconnects, "before_segment": self.next_number}
        gaps = list(self.store.get(contract.LIVE_GAPS_KEY) or [])[-999:] + [record]
        self.store.set(contract.LIVE_GAPS_KEY, gaps)

    def _open_segment(self, size, arrived):
        fps = self.reader.fps or defaults.LIVE_FALLBACK_FPS
        number = self.next_number
        self.next_number += 1
        self.store.set(contract.LIVE_NEXT_SEGMENT_KEY, self.next_number)  # reserved, never reused
        self.segment = {"number": number, "size": size, "started": arrived, "ended": arrived, "alerts": [],
                        "frames": max(1, round(self.segment_seconds * fps)), "arrivals": {},
                        "encoder": SegmentEncoder(self.media_dir, number, fps, size), "gap_before": self.gap_before}
        self.gap_before = None

    def _process(self):
        """Detect / track / embed the waiting frames, then score the new embeddings against the watchlists."""
        from ..models.precision import autocast

        if not self.batch:
            return
        batch, self.batch = self.batch, []
        detect = not (self.keep_up and self.reader.items.qsize() > defaults.LIVE_BACKLOG_FRAMES)
        if not detect:
            self.counts["frames_not_detected"] += len(batch)
        with autocast(self.precision, self.device):
            self.builder.add([f.number for f in batch], [f.image for f in batch], detect=detect)
            rows, vectors = self.builder.embedded()
        arrivals = self.segment["arrivals"]
        for f in batch:
            arrivals[f.number] = f.arrived
            for person in self.builder.frames_out.get(f.number, []):
                _remember(self.first_seen, person[0] + self.track_offset, f.arrived)
        images = {f.number: f.image for f in batch}
        for index, watchlist, cosine in self.scorer.matches(vectors):
            self._alert(rows[index], watchlist, cosine, images)

    def _alert(self, row, watchlist, cosine, images):
        """One alert per (watchlist, track): record, crop, log line, webhook."""
        track = self.builder.row_tracks[row] + self.track_offset
        if (watchlist["name"], track) in self.alerted:
            return
        _remember(self.alerted, (watchlist["name"], track), True)
        number = self.builder.keyframes[row]
        box = next((p[1] for p in self.builder.frames_out.get(number, []) if p[3] == row), None)
        segment = self.segment["number"]
        crop = None
        if box is not None and number in images:
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", watchlist["name"])
            crop = save_crop(os.path.join(self.media_dir, "alerts", f"segment_{segment:06d}_track_{track}_{safe}.jpg"),
                             images[number], box)
        now = time.time()
        first_seen = self.first_seen.get(track, self.segment["arrivals"].get(number, now))
        record = {"watchlist": watchlist["name"], "query": watchlist["query"], "example": watchlist.get("example"),
                  "threshold": watchlist["threshold"],
                  "threshold_type": watchlist["threshold_type"], "score": round(cosine, 6),
                  "probability": self.scorer.probability(cosine, watchlist), "track_id": track, "segment": segment,
                  "frame_number": number - self.builder.offset, "frame_time": self.segment["arrivals"].get(number),
                  "first_seen_at": first_seen, "alerted_at": now, "latency_s": round(now - first_seen, 3),
                  "crop_path": crop, "box": box, "sample_id": None, "source": redact(self.source)}
        key = f"{contract.LIVE_ALERT_PREFIX}{segment:06d}:{track}:{watchlist['name']}"
        self.store.set(key, record)
        self.segment["alerts"].append((key, record))
        self.counts["alerts"] += 1
        logger.warning("ALERT %r: track %d in segment %d frame %d, score %.3f (threshold %s %s), %.2f s after it "
                       "appeared; crop %s", watchlist["name"], track, segment, record["frame_number"], cosine,
                       watchlist["threshold_type"], watchlist["threshold"], record["latency_s"], crop)
        if self.webhook:
            self.webhook.send(record)

    def _close_segment(self, reset_tracker=False):
        """End the segment in progress: its tracks go with its encoder to the writer thread."""
        if self.segment is None:
            return
        self._process()
        segment, self.segment = self.segment, None
        tracks = self.builder.cut(reset_tracker=reset_tracker)
        offset = self.track_offset
        tracks.frames = {n: [(tid + offset, *rest) for tid, *rest in people] for n, people in tracks.frames.items()}
        segment["tracks"] = tracks
        del segment["arrivals"]
        self.counts["segments"] += 1
        self.writer_queue.put(segment)

    # ------------------------------------------------------------------ the writer thread

    def _write_segments(self):
        while True:
            segment = self.writer_queue.get()
            if segment is None:
                return
            if self.writer_error:
                segment["encoder"].abandon()
                continue
            try:
                self._save(segment)
            except Exception as e:  # noqa: BLE001 - handed to the job's thread, which stops
                logger.exception("could not save segment %d", segment["number"])
                self.writer_error = e

    def _ensure_index(self):
        from ..search import store
        from ..search.writes import declare_embeddings

        if not self.index_ready:
            declare_embeddings(self.dataset, self.persons_field)
            store.open_index(self.dataset, self.brain_key, self.matcher_name, self.persons_field, self.backend)
            store.sync_index(self.dataset, self.brain_key, self.persons_field)
            self.index_ready = True

    def _save(self, segment):
        """Finished file -> video sample -> persons and vectors (``person_tracks`` last) -> its alerts."""
        import fiftyone as fo
        import fiftyone.core.labels as fol

        from ..search import store
        from ..search.indexing import save_video_tracks

        path = segment["encoder"].finish()
        sample = fo.Sample(filepath=path, **{
            contract.LIVE_SEGMENT_FIELD: segment["number"], contract.LIVE_START_FIELD: _utc(segment["started"]),
            contract.LIVE_END_FIELD: _utc(segment["ended"]), contract.LIVE_GAP_FIELD: segment["gap_before"]})
        sample_id = self.dataset.add_sample(sample)
        self.dataset.select(sample_id).compute_metadata()
        self._ensure_index()
        tracks = segment["tracks"]
        save_video_tracks(self.dataset, sample_id, tracks, self.persons_field,
                          functools.partial(store.add_vectors, self.dataset, self.brain_key))
        if segment["alerts"]:
            spans = tracks.track_frames()
            detections = [fol.TemporalDetection(
                label=record["watchlist"], index=record["track_id"], confidence=record["score"],
                support=[min(spans.get(record["track_id"], [record["frame_number"]])),
                         max(spans.get(record["track_id"], [record["frame_number"]]))])
                for _, record in segment["alerts"]]
            self.dataset.set_values(contract.LIVE_ALERTS_FIELD,
                                    {sample_id: fol.TemporalDetections(detections=detections)}, key_field="id")
            self._save_alerts_view()
            for key, record in segment["alerts"]:
                self.store.set(key, {**record, "sample_id": sample_id})
        logger.info("segment %d saved: %s (%d frames, %d tracks, %d alerts)", segment["number"], path,
                    tracks.num_frames, len(tracks.track_frames()), len(segment["alerts"]))

    def _save_alerts_view(self):
        from fiftyone import ViewField as F

        if not self.dataset.has_saved_view(contract.LIVE_ALERTS_VIEW):
            self.dataset.save_view(contract.LIVE_ALERTS_VIEW, self.dataset.match(
                F(f"{contract.LIVE_ALERTS_FIELD}.detections").length() > 0))


def run_live(dataset, source, media_dir, **options):
    """Index a live stream into ``dataset`` as it arrives; returns a summary when it stops.

    ``source``: a stream URL OpenCV / FFmpeg opens (rtsp, http, udp, tcp...),
    a camera index, or a file (``follow=True``: a growing one). Every
    ``segment_seconds`` of video becomes an H.264 MP4 in ``media_dir`` and a
    video sample (``live_segment``, ``live_started_at`` ...) with
    ``frames.persons`` tracked and embedded as ``index_persons`` does, its
    vectors added to ``brain_key``. Watchlists (:func:`add_watchlist`) are
    scored on every new track embedding; matches become alerts
    (:func:`list_alerts`, the ``live_alerts`` field and saved view, a log
    line, a POST to ``webhook_url``). A stall or drop is recorded as a gap
    and the stream reopened with backoff. It stops on :func:`request_stop`,
    ``stop_event``, ``max_segments``, the end of a file, or after
    ``give_up_seconds`` without frames; a restart after a kill resumes,
    losing at most the segment being encoded. With ``keep_up`` a job behind
    its stream (more than ``LIVE_BACKLOG_FRAMES`` frames waiting) skips
    detection until it has caught up (``frames_not_detected`` counts them;
    the segments still hold every frame), so alerts stay near real time;
    without it every ``detect_every``-th frame is detected, however late.
    ``precision``: "auto" / "fp32" / "bf16" (see :mod:`core.models.precision`).

    Returns ``{segments, frames, frames_not_detected, alerts, gaps, resumed_segments, reason, precision,
    precision_reason, video_seconds, elapsed_seconds, realtime_factor, webhook}``.

    Example::

        run_live(dataset, "udp://127.0.0.1:5000", "/data/live", segment_seconds=60,
                 webhook_url="http://127.0.0.1:8080/alerts")
    """
    return LiveJob(dataset, source, media_dir, **options).run()
