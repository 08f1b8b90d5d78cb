"""Live-stream kit for tests and benchmarks: ffmpeg stream servers on 127.0.0.1, a detector for synthetic
videos, and an HTTP server that records webhook POSTs.

Example::

    from person_finder.testing.streams import ForegroundDetector, serve_http, WebhookReceiver
    server, url = serve_http("walk.mp4", realtime=True)     # http://127.0.0.1:PORT, one client
    detector = ForegroundDetector.from_video("walk.mp4")    # finds the walking figures (no weights)
    detector = TruthDetector(truth)                         # or returns their true boxes (benchmarks)
    with WebhookReceiver() as hook:
        ...  # hook.url receives alerts; hook.records holds them
"""

from __future__ import annotations

import http.server
import json
import subprocess
import threading

import numpy as np

from .mongo import free_port
from .synthetic import ffmpeg_binary


def serve_http(path, realtime=True, port=None, start_seconds=0.0, duration=None, loops=0):
    """An ffmpeg process serving ``path`` as MPEG-TS over HTTP on 127.0.0.1 (one client); ``(process, url)``.

    ``realtime`` sends at the video's frame rate (``-re``), else as fast as the
    client reads (TCP backpressure: a benchmark's real-time factor).
    ``start_seconds`` skips the start and ``duration`` ends early (a stream
    that drops, and comes back; re-encoded then, to start on the exact
    frame); ``loops`` repeats the file (a longer stream).
    """
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    codec = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "15"] if start_seconds else ["-c", "copy"]
    cmd = [ffmpeg_binary(), "-loglevel", "error", *(["-re"] if realtime else []),
           *(["-stream_loop", str(loops)] if loops else []), "-ss", f"{start_seconds:.3f}", "-i", str(path),
           *(["-t", f"{duration:.3f}"] if duration else []), *codec, "-f", "mpegts", "-listen", "1", url]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL), url


class ForegroundDetector:
    """Finds the figures of a synthetic video: pixels far from its background, grouped into boxes.

    Synthetic walkers have no weights to learn them, and random-weight YOLO
    finds nothing; this stands in for the detector (same ``detect`` call).
    ``timed`` (a real detector) also runs on every frame, so benchmarks pay
    for its forward pass while the boxes come from here.
    """

    def __init__(self, background, min_height=0.2, threshold=40, timed=None):
        self.background = background.astype(np.int16)
        self.min_height, self.threshold, self.timed = min_height, threshold, timed

    @classmethod
    def from_video(cls, path, samples=30, **kwargs):
        """The background is the per-pixel median of ``samples`` frames spread over the video."""
        import cv2

        capture = cv2.VideoCapture(str(path))
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        for index in np.linspace(0, max(total - 1, 0), samples).astype(int):
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = capture.read()
            if ok:
                frames.append(frame)
        capture.release()
        return cls(np.median(np.stack(frames), axis=0), **kwargs)

    def detect(self, images, batch_size=8, bgr=False):
        import cv2

        if self.timed is not None:
            self.timed.detect(images, batch_size=batch_size, bgr=bgr)
        out = []
        for image in images:
            bgr_image = image if bgr else np.ascontiguousarray(np.asarray(image)[..., ::-1])
            if bgr_image.shape != self.background.shape:
                out.append(np.zeros((0, 5), np.float32))
                continue
            mask = (np.abs(bgr_image.astype(np.int16) - self.background).max(axis=2) > self.threshold)
            mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            height = image.shape[0]
            boxes = [[x, y, x + w, y + h, 0.9] for x, y, w, h, _ in stats[1:count] if h >= self.min_height * height]
            out.append(np.asarray(boxes, np.float32).reshape(-1, 5))
        return out


class TruthDetector:
    """Returns a synthetic video's true boxes (``VideoTruth``): a perfect stand-in detector for benchmarks.

    :class:`ForegroundDetector` misses a figure whose clothes are close to
    the background (a grey top splits it into head, arms and legs, each too
    short to count) and makes one box of two walkers that overlap, so a
    latency measured with it mostly measures the stand-in. This one finds
    each incoming frame in the video by its thumbnail (the stream is the file,
    copied; it may loop) and answers the true boxes of that frame. ``timed``
    as in :class:`ForegroundDetector`.

    Example::

        detector = TruthDetector(synthetic.write_video("walk.mp4", specs))
        detector.detect([first_frame_bgr], bgr=True)[0]      # [[x1, y1, x2, y2, 0.9], ...] of the true people
    """

    def __init__(self, truth, timed=None):
        import cv2

        capture = cv2.VideoCapture(str(truth.filepath))
        thumbs = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            thumbs.append(self._thumb(frame))
        capture.release()
        if not thumbs:
            raise ValueError(f"could not read any frame of {truth.filepath}")
        self.thumbs, self.timed = np.stack(thumbs), timed
        width, height = truth.frame_size
        scale = np.asarray([width, height, width, height], np.float32)
        self.boxes = [np.asarray([[*(np.asarray([x, y, x + w, y + h]) * scale), 0.9]
                                  for x, y, w, h in (t[n] for t in truth.tracks.values() if n in t)],
                                 np.float32).reshape(-1, 5) for n in range(1, len(thumbs) + 1)]

    @staticmethod
    def _thumb(bgr_image):
        import cv2

        return cv2.resize(np.ascontiguousarray(bgr_image), (96, 54), interpolation=cv2.INTER_AREA).astype(
            np.float32).ravel()

    def detect(self, images, batch_size=8, bgr=False):
        if self.timed is not None:
            self.timed.detect(images, batch_size=batch_size, bgr=bgr)
        out = []
        for image in images:
            bgr_image = image if bgr else np.asarray(image)[..., ::-1]
            number = int(np.argmin(((self.thumbs - self._thumb(bgr_image)) ** 2).sum(axis=1)))
            out.append(self.boxes[number].copy())
        return out


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that stores the JSON bodies POSTed to it (``records``); ``delay`` slows it."""

    def __init__(self, delay=0.0):
        receiver = self
        self.records, self.delay = [], float(delay)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                threading.Event().wait(receiver.delay)
                receiver.records.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
