"""Video person tracking: one decode pass, Ultralytics trackers, one embedding per track.

The video is read once as a stream (OpenCV). Every ``detect_every``-th frame
goes to ``detect`` in batches; the boxes feed an Ultralytics ByteTrack /
BoT-SORT tracker; each track keeps one crop embedding, refreshed every
``refresh_frames`` frames or when the shape IoU (see :func:`shape_iou`)
between its box now and its box at the last embedding drops below
``refresh_iou``. Crops of many frames share
one encoder batch. Memory stays bounded: a batch of frames plus a batch of
crops, whatever the video's length.

Example::

    from person_finder.core.search.tracking import track_video
    tracks = track_video("walk.mp4", detect=lambda numbers, frames: detector.detect(frames, bgr=True),
                         embed=matcher.embed_images)
    tracks.frames[1]      # [(track_id, [x1, y1, x2, y2], confidence, embedding_row), ...]
    tracks.embeddings     # (rows, D) unit vectors
    tracks.keyframes      # {row: frame number its crop was cut from}
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import defaults

TRACKERS = defaults.TRACKERS


@dataclasses.dataclass
class VideoTracks:
    """What :func:`track_video` found in one video."""

    frame_size: tuple  # (width, height)
    num_frames: int
    frames: dict  # frame number (1-based) -> [(track_id, [x1, y1, x2, y2] pixels, confidence, embedding row)]
    embeddings: np.ndarray  # (rows, D)
    keyframes: dict  # embedding row -> number of the frame its crop was cut from
    encoder_crops: int  # crops sent to the encoder
    encoder_calls: int  # its forward passes (crops from many frames share a batch)

    def track_frames(self):
        """``{track_id: [frame numbers]}`` of every track."""
        out = {}
        for number, people in sorted(self.frames.items()):
            for track_id, *_ in people:
                out.setdefault(track_id, []).append(number)
        return out


def iou(a, b):
    """IoU of two ``[x1, y1, x2, y2]`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def shape_iou(a, b):
    """IoU of two boxes moved onto the same centre: 1 when only the position changed.

    A person walking keeps their look; a box that grows, shrinks or changes
    aspect (entering the frame, occlusion, turning) means the old crop no
    longer represents them.
    """
    wa, ha, wb, hb = a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]
    return iou([0, 0, wa, ha], [0, 0, wb, hb]) if min(wa, ha, wb, hb) > 0 else 0.0


def finite_boxes(boxes):
    """``(n, 5)`` pixel boxes without the rows holding NaN or infinity, and how many rows were dropped.

    Example::

        kept, dropped = finite_boxes([[0, 0, 5, 5, 0.9], [float("nan"), 0, 5, 5, 0.9]])   # 1 row kept, 1 dropped
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
    ok = np.isfinite(boxes).all(axis=1)
    return boxes[ok], int(len(boxes) - ok.sum())


def skipped_boxes_note(count, field):
    """The sample's ``person_search_error`` text when ``count`` boxes of ``field`` were skipped, else None."""
    return f"skipped {count} box(es) of {field!r} with NaN or infinite values" if count else None


def clip_box(box, width, height):
    """``[x1, y1, x2, y2]`` clipped to the image, rounded to whole pixels; None if no area is left."""
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x2 <= x1 or y2 <= y1:
        return None
    return [x1, y1, x2, y2]


def make_tracker(name=defaults.TRACKER):
    """An Ultralytics tracker (``"bytetrack"`` or ``"botsort"``) with its stock settings."""
    if name not in TRACKERS:
        raise ValueError(f"tracker must be one of {list(TRACKERS)}, got {name!r}")
    from ultralytics.trackers.track import TRACKER_MAP
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    cfg = IterableSimpleNamespace(**YAML.load(check_yaml(f"{name}.yaml")))
    return TRACKER_MAP[name](args=cfg)


def read_frames(path, batch_size):
    """Yield ``(frame_numbers, bgr_frames)`` batches from one decode pass; raises ``IOError`` if unreadable.

    Frames stay in OpenCV's BGR order: the detector and the trackers read
    BGR, and only the person crops are converted to RGB.
    """
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise IOError(f"cannot open video {path}")
    try:
        number, numbers, frames = 0, [], []
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            number += 1
            numbers.append(number)
            frames.append(bgr)
            if len(frames) == batch_size:
                yield numbers, frames
                numbers, frames = [], []
        if frames:
            yield numbers, frames
        if number == 0:
            raise IOError(f"no frame could be decoded from {path}")
    finally:
        capture.release()


def frames_at(path, numbers, batch_size=defaults.DETECTOR_BATCH_SIZE):
    """``{frame number: RGB array}`` of the (1-based) ``numbers`` of a video, in one decode pass that stops early.

    Frames that cannot be decoded are missing from the result.

    Example::

        frames = frames_at("walk.mp4", {3, 40})    # {3: HxWx3 uint8, 40: ...}
    """
    wanted, images = set(numbers), {}
    if not wanted:
        return images
    for batch_numbers, frames in read_frames(path, batch_size):
        images.update({k: f[:, :, ::-1] for k, f in zip(batch_numbers, frames) if k in wanted})
        if len(images) == len(wanted):
            break
    return images


class _EmbeddingQueue:
    """Crops waiting for the encoder; rows are assigned now, filled when a batch is full."""

    def __init__(self, embed, batch_size):
        self.embed = embed
        self.batch_size = batch_size
        self.pending = []
        self.done = []
        self.rows = 0

    def add(self, crop):
        self.pending.append(crop)
        self.rows += 1
        if len(self.pending) >= self.batch_size:
            self.flush()
        return self.rows - 1

    def flush(self):
        if self.pending:
            self.done.append(np.asarray(self.embed(self.pending), dtype=np.float32))
            self.pending = []

    def result(self):
        self.flush()
        return np.concatenate(self.done) if self.done else np.zeros((0, 0), dtype=np.float32)


def _backfill(frames_out, previous, track_id, box, row, size, min_iou=0.3):
    """A new track is confirmed on its second detection: give it the box it had one detection step before."""
    number, boxes, used, _ = previous
    free = [j for j in range(len(boxes)) if j not in used]
    if not free:
        return
    j = max(free, key=lambda k: iou(boxes[k, :4], box))
    earlier = clip_box(boxes[j, :4], *size)
    if earlier is not None and iou(earlier, box) >= min_iou:
        used.add(j)
        frames_out[number].append((track_id, earlier, float(boxes[j, 4]), row))


def _own_tracks(frames_out, previous, queue, keyframes, next_id, size):
    """Boxes of a detected frame that no track took (even by backfill): each becomes a track of its own."""
    number, boxes, used, frame = previous
    for j in range(len(boxes)):
        box = clip_box(boxes[j, :4], *size) if j not in used else None
        if box is not None:
            x1, y1, x2, y2 = box
            row = queue.add(frame[y1:y2, x1:x2, ::-1].copy())
            keyframes[row] = number
            frames_out[number].append((next_id[0], box, float(boxes[j, 4]), row))
            next_id[0] += 1


class TrackBuilder:
    """The tracking loop over frame batches as they arrive: a file (:func:`track_video`) or a live stream.

    Feed it ``add(frame_numbers, bgr_frames)`` batches (numbers increasing);
    :meth:`finish` returns the :class:`VideoTracks`. A live stream calls
    :meth:`cut` at each segment boundary instead: it returns the piece so far
    (frames renumbered from 1) and keeps the tracker, so a person walking
    across the cut keeps their track id; each continuing track is embedded
    again in the new piece, so every piece holds its own embeddings.
    ``embedded()`` flushes the crops waiting for the encoder and returns the
    rows made since its last call (what a watchlist scores).

    Example::

        builder = TrackBuilder(detect, matcher.embed_images)
        for numbers, frames in read_frames("walk.mp4", 8):
            builder.add(numbers, frames)
        tracks = builder.finish()
    """

    def __init__(self, detect, embed, detect_every=defaults.VIDEO_DETECT_EVERY,
                 refresh_frames=defaults.TRACK_REFRESH_FRAMES, refresh_iou=defaults.TRACK_REFRESH_IOU,
                 tracker=defaults.TRACKER, embed_batch_size=defaults.MATCHER_BATCH_SIZE, keep_all=False):
        if int(detect_every) < 1 or int(refresh_frames) < 1:
            raise ValueError(f"detect_every and refresh_frames must be >= 1, got {detect_every}, {refresh_frames}")
        if not 0.0 <= float(refresh_iou) <= 1.0:
            raise ValueError(f"refresh_iou must be in [0, 1], got {refresh_iou}")
        self.detect, self.embed, self.detect_every = detect, embed, int(detect_every)
        self.refresh_frames, self.refresh_iou, self.keep_all = int(refresh_frames), float(refresh_iou), keep_all
        self.embed_batch_size = embed_batch_size
        self.tracker = make_tracker(tracker)
        self.next_id = [defaults.UNTRACKED_TRACK_ID]
        self.offset = 0  # frame number before this piece's first frame
        self._start_piece()

    def _start_piece(self):
        self.queue = _EmbeddingQueue(self.embed, self.embed_batch_size)
        self.state = {}  # track id -> (embedding row, box at that embedding, frame number of it)
        self.frames_out = {}
        self.keyframes = {}  # embedding row -> frame number its crop was cut from
        self.row_tracks = {}  # embedding row -> track id
        self.previous = None  # (frame number, boxes, indices of the boxes that joined a track, frame)
        self.size = (0, 0)
        self.count = self.offset
        self.reported = 0  # embedding rows already returned by embedded()

    def add(self, numbers, frames, detect=True):
        """Detect every ``detect_every``-th frame of the batch, update the tracks, queue the crops to embed.

        ``detect=False`` only counts the frames (a live job behind its stream
        skips their detection to catch up).
        """
        from ultralytics.engine.results import Boxes

        height, width = frames[0].shape[:2]
        self.size = (width, height)
        chosen = [i for i, n in enumerate(numbers) if (n - 1) % self.detect_every == 0] if detect else []
        found = self.detect([numbers[i] for i in chosen], [frames[i] for i in chosen]) if chosen else []
        for i, boxes in zip(chosen, found):
            number, frame = numbers[i], frames[i]
            boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
            data = np.concatenate([boxes, np.zeros((len(boxes), 1), np.float32)], axis=1)
            tracked = self.tracker.update(Boxes(data, (height, width)), frame)
            people, used = [], set()
            for row in np.asarray(tracked).reshape(-1, 8):
                track_id, det = int(row[4]), int(row[7])
                box = clip_box(boxes[det, :4], width, height)
                if box is None:
                    continue
                used.add(det)
                last = self.state.get(track_id)
                if last is None or number - last[2] >= self.refresh_frames or \
                        shape_iou(box, last[1]) < self.refresh_iou:
                    x1, y1, x2, y2 = box
                    if last is None and self.previous is not None:
                        _backfill(self.frames_out, self.previous, track_id, box, self.queue.rows, self.size)
                    last = (self.queue.add(frame[y1:y2, x1:x2, ::-1].copy()), box, number)  # RGB crop
                    self.keyframes[last[0]] = number
                    self.row_tracks[last[0]] = track_id
                    self.state[track_id] = last
                people.append((track_id, box, float(boxes[det, 4]), last[0]))
            self.frames_out[number] = people
            if self.keep_all and self.previous is not None:
                _own_tracks(self.frames_out, self.previous, self.queue, self.keyframes, self.next_id, self.size)
            self.previous = (number, boxes, used, frame)
        self.count = numbers[-1]

    def embedded(self):
        """Embed the crops waiting for the encoder; returns ``(rows, vectors)`` made since the last call."""
        self.queue.flush()
        vectors = np.concatenate(self.queue.done) if self.queue.done else np.zeros((0, 0), np.float32)
        rows = list(range(self.reported, len(vectors)))
        self.reported = len(vectors)
        return rows, vectors[self.reported - len(rows):]

    def finish(self):
        """The :class:`VideoTracks` of everything added since the start (or the last :meth:`cut`)."""
        if self.keep_all and self.previous is not None:
            _own_tracks(self.frames_out, self.previous, self.queue, self.keyframes, self.next_id, self.size)
        embeddings = self.queue.result()
        shift = self.offset
        return VideoTracks(frame_size=self.size, num_frames=self.count - shift,
                           frames={n - shift: people for n, people in self.frames_out.items()},
                           embeddings=embeddings, keyframes={row: n - shift for row, n in self.keyframes.items()},
                           encoder_crops=self.queue.rows, encoder_calls=len(self.queue.done))

    def cut(self, reset_tracker=False):
        """End the current piece: its :class:`VideoTracks` (frames from 1); the next piece starts after it.

        ``reset_tracker`` forgets the tracks too (the picture changed size: old boxes mean nothing).
        """
        tracks = self.finish()
        self.offset = self.count
        self._start_piece()
        if reset_tracker:
            self.tracker.reset()
        return tracks


def track_video(path, detect, embed, detect_every=defaults.VIDEO_DETECT_EVERY,
                refresh_frames=defaults.TRACK_REFRESH_FRAMES, refresh_iou=defaults.TRACK_REFRESH_IOU,
                tracker=defaults.TRACKER, detect_batch_size=defaults.DETECTOR_BATCH_SIZE,
                embed_batch_size=defaults.MATCHER_BATCH_SIZE, keep_all=False, on_frames=None):
    """Detect, track and embed the people of one video in a single decode pass.

    ``detect(frame_numbers, bgr_frames)`` returns one ``(n, 5)`` array
    ``[x1, y1, x2, y2, conf]`` (pixels) per frame (frames in OpenCV's BGR order); ``embed(list of RGB
    crops)`` returns unit vectors. ``refresh_frames=1`` embeds every
    detection of every frame (the naive baseline). ``on_frames(done)`` is
    called after each batch with the number of frames read so far. With
    ``keep_all`` (boxes given by the user) a box the tracker does not confirm
    is kept as a track of its own (ids from ``UNTRACKED_TRACK_ID``). The loop
    itself is :class:`TrackBuilder`, shared with live streams.
    """
    builder = TrackBuilder(detect, embed, detect_every=detect_every, refresh_frames=refresh_frames,
                           refresh_iou=refresh_iou, tracker=tracker, embed_batch_size=embed_batch_size,
                           keep_all=keep_all)
    for numbers, frames in read_frames(path, detect_batch_size):
        builder.add(numbers, frames)
        if on_frames is not None:
            on_frames(numbers[-1])
    return builder.finish()
