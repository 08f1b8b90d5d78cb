"""A live video source decoded in its own thread: frames, gaps and reconnects, in arrival order.

A source is anything OpenCV's FFmpeg backend opens (``rtsp://``, ``http://``,
``udp://``, ``tcp://``, a file), a camera index (``"0"``), or a growing file
(``follow=True``: reads wait at its end for more, FFmpeg's ``follow`` option;
a pause longer than the stall time reopens it and skips what was read). The reader thread
decodes while the caller detects, and hands over, through a bounded queue:
:class:`Frame` items, :class:`Gap` items (the stream stalled or dropped, and
came back after reconnecting with exponential backoff), and one final
:class:`End`.

Example::

    from person_finder.core.live.source import StreamReader, Frame
    with StreamReader("udp://127.0.0.1:5000") as reader:
        for item in reader:
            if isinstance(item, Frame):
                print(item.number, item.image.shape, item.arrived)
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time
import urllib.parse

from .. import defaults

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Frame:
    """One decoded frame: its number in the run (from 1), BGR pixels, and when it arrived (epoch seconds)."""

    number: int
    image: object
    arrived: float


@dataclasses.dataclass
class Gap:
    """No frame from ``start`` to ``end`` (epoch seconds): why, and how many reconnects it took."""

    start: float
    end: float
    reason: str
    reconnects: int

    @property
    def seconds(self):
        return self.end - self.start


@dataclasses.dataclass
class End:
    """The reader stopped: the source ended (a file), the caller stopped it, or it gave up reconnecting."""

    reason: str


def redact(source):
    """The source as it may be logged or stored: no user, password or query string (tokens live there).

    Example::

        redact("rtsp://admin:secret@cam.local:554/live?token=x")   # 'rtsp://cam.local:554/live'
    """
    source = str(source)
    parts = urllib.parse.urlsplit(source)
    if not parts.scheme or len(parts.scheme) == 1:  # a path (or a Windows drive letter), a camera index
        return source
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def is_camera(source):
    """True for a camera index such as ``0`` or ``"1"``."""
    return str(source).strip().isdigit()


def is_local_file(source):
    """True for a file path (no ``scheme://``, not a camera index), e.g. ``/data/cam1.ts``."""
    return not is_camera(source) and "://" not in str(source)


def check_source(source):
    """Raise ``ValueError`` unless ``source`` is a stream URL, a camera index or an existing file.

    Example::

        check_source("rtsp://cam.local/live")   # fine; check_source("ftp://x") raises, naming the schemes allowed
    """
    text = str(source).strip() if source is not None else ""
    if not text:
        raise ValueError("a live source is needed: a stream URL (rtsp://, http://, udp://, tcp://, file path) "
                         "or a camera index such as 0")
    if is_local_file(text) and not os.path.exists(text):
        raise ValueError(f"no file at {text!r}; give a stream URL (rtsp://, http://, udp://, tcp://), a camera "
                         f"index such as 0, or the path of an existing (possibly growing) file")
    scheme = urllib.parse.urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme and scheme not in ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt", "file"):
        raise ValueError(f"stream scheme {scheme!r} is not supported; use rtsp, rtmp, http(s), udp, tcp, srt "
                         f"or file, a camera index, or a file path")


_CAPTURE_OPTIONS_LOCK = threading.Lock()


@contextlib.contextmanager
def _following(follow):
    """Open a file with FFmpeg's ``follow`` option (reads wait at its end for more; the stall timeout ends them).

    OpenCV reads FFmpeg options from ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` when it
    opens a capture; it is set only for that moment.
    """
    if not follow:
        yield
        return
    with _CAPTURE_OPTIONS_LOCK:
        previous = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "follow;1"
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS")
            else:
                os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = previous


class StreamReader:
    """Decode ``source`` in a background thread; iterate to get :class:`Frame` / :class:`Gap` / :class:`End`.

    A stream that sends nothing for ``stall_seconds`` or closes is reopened
    with backoff (``backoff_initial`` doubling up to ``backoff_max``); the
    time without frames becomes one :class:`Gap`. A local file ends the
    stream at its end unless ``follow``. ``give_up_seconds`` without a frame
    ends it too (None: never). At most ``queue_frames`` decoded frames wait
    for the caller; the reader blocks when they are not taken (TCP sources
    then slow down; UDP ones drop packets, which the decoder conceals).
    """

    def __init__(self, source, queue_frames=defaults.LIVE_FRAME_QUEUE, stall_seconds=defaults.LIVE_STALL_SECONDS,
                 open_timeout=defaults.LIVE_OPEN_TIMEOUT_SECONDS, backoff_initial=defaults.LIVE_RECONNECT_INITIAL_S,
                 backoff_max=defaults.LIVE_RECONNECT_MAX_S, give_up_seconds=defaults.LIVE_GIVE_UP_SECONDS,
                 follow=False):
        check_source(source)
        self.source = str(source).strip()
        self.stall_seconds, self.open_timeout = float(stall_seconds), float(open_timeout)
        self.backoff_initial, self.backoff_max = float(backoff_initial), float(backoff_max)
        self.give_up_seconds = give_up_seconds
        self.follow = follow
        self.fps = None  # what the stream says, once open
        self.items = queue.Queue(maxsize=int(queue_frames))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="person-finder-stream-reader", daemon=True)
        self.decoded = 0

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        """Ask the thread to stop and wait for it (frames still queued are dropped)."""
        self.stopping.set()
        while self.thread.is_alive():
            try:
                self.items.get_nowait()
            except queue.Empty:
                pass
            self.thread.join(timeout=0.1)

    def __iter__(self):
        while True:
            item = self.items.get()
            yield item
            if isinstance(item, End):
                return

    def get(self, timeout=None):
        """The next item, or None after ``timeout`` seconds without one."""
        try:
            return self.items.get(timeout=timeout)
        except queue.Empty:
            return None

    def _put(self, item):
        while not self.stopping.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _open(self):
        import cv2

        if is_camera(self.source):
            capture = cv2.VideoCapture(int(self.source))
        else:
            following = self.follow and is_local_file(self.source)
            # a followed file opens at once when it has data; waiting longer only means nothing new came
            open_timeout = min(self.open_timeout, self.stall_seconds) if following else self.open_timeout
            with _following(following):
                capture = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG, [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout * 1000),
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.stall_seconds * 1000)])
        if not capture.isOpened():
            capture.release()
            return None
        fps = capture.get(cv2.CAP_PROP_FPS)
        if fps and 1.0 <= fps <= 240.0:
            self.fps = float(fps)
        return capture

    def _run(self):
        try:
            self._read_loop()
        except Exception as e:  # noqa: BLE001 - the caller gets the reason instead of a silent hang
            logger.exception("stream reader of %s failed", redact(self.source))
            self._put(End(f"reader failed: {type(e).__name__}: {e}"))

    def _read_loop(self):
        local = is_local_file(self.source)
        last_frame_at = time.time()
        gap_reason, reconnects, delay = None, 0, self.backoff_initial
        skip = 0  # a followed file is reopened from its start: frames already read are skipped
        while not self.stopping.is_set():
            capture = self._open()
            if capture is not None:
                for _ in range(skip if local else 0):
                    capture.grab()
                read_any = False
                while not self.stopping.is_set():
                    ok, image = capture.read()
                    if not ok:
                        break
                    now = time.time()
                    if gap_reason is not None:
                        gap = Gap(last_frame_at, now, gap_reason, reconnects)
                        logger.warning("stream %s came back after %.1f s (%s, %d reconnects)",
                                       redact(self.source), gap.seconds, gap.reason, reconnects)
                        if not self._put(gap):
                            break
                        gap_reason, reconnects = None, 0
                    read_any, delay = True, self.backoff_initial
                    self.decoded += 1
                    skip += 1
                    last_frame_at = now
                    if not self._put(Frame(self.decoded, image, now)):
                        break
                capture.release()
                if self.stopping.is_set():
                    break
                if local and not self.follow:
                    self._put(End("end of file"))
                    return
                if gap_reason is None and not (local and not read_any):
                    gap_reason = "end of file (following)" if local else "stream stalled or closed"
                    if not local:
                        logger.warning("stream %s stopped sending; reconnecting", redact(self.source))
            elif gap_reason is None:
                gap_reason = "cannot open the stream"
                logger.warning("cannot open stream %s; retrying with backoff", redact(self.source))
            if self.give_up_seconds is not None and time.time() - last_frame_at > float(self.give_up_seconds):
                self._put(End(f"no frame for {self.give_up_seconds} s ({gap_reason}); gave up"))
                return
            if local and self.follow:  # a growing file: poll, no backoff needed
                self.stopping.wait(min(self.backoff_initial, 0.5))
                continue
            reconnects += 1
            self.stopping.wait(delay)
            delay = min(delay * 2, self.backoff_max)
        self._put(End("stopped"))
