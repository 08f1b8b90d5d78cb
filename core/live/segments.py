"""Segments of a live stream: H.264 MP4 files encoded as frames arrive, and their numbering across restarts.

Each segment is encoded by an ``ffmpeg`` process fed raw BGR frames on its
stdin (x264, ``yuv420p``: what browsers and the App play) into
``segment_NNNNNN.part.mp4``, renamed to ``segment_NNNNNN.mp4`` once ffmpeg
has finished it. Numbers are reserved in the dataset's live store when a
segment starts, so a number is never used twice, even for a segment lost in
a kill.

Example::

    from person_finder.core.live.segments import SegmentEncoder
    encoder = SegmentEncoder("/data/live", 7, fps=30.0, size=(1280, 720))
    encoder.write(bgr_frame)
    path = encoder.finish()      # /data/live/segment_000007.mp4
"""

from __future__ import annotations

import glob
import logging
import os
import re
import subprocess

from .. import contract, defaults

logger = logging.getLogger(__name__)


def segment_path(folder, number):
    """Where segment ``number`` lives once finished."""
    return os.path.join(folder, contract.LIVE_SEGMENT_NAME.format(int(number)))


def segment_number(path):
    """The number of a segment file (finished or not), or None for other files."""
    match = re.fullmatch(r"segment_(\d+)(\.part)?\.mp4", os.path.basename(path))
    return int(match.group(1)) if match else None


def ffmpeg_binary():
    """Path of ffmpeg, or a clear error saying how to install it."""
    import shutil

    path = shutil.which("ffmpeg")
    if path is None:
        raise RuntimeError("ffmpeg is not installed; install it with `apt-get install ffmpeg`")
    return path


class SegmentEncoder:
    """One segment being encoded: ``write`` BGR frames, then ``finish`` (or ``abandon``)."""

    def __init__(self, folder, number, fps, size, preset=defaults.LIVE_X264_PRESET, crf=defaults.LIVE_X264_CRF):
        os.makedirs(folder, exist_ok=True)
        self.number, self.fps, self.size = int(number), float(fps), tuple(size)
        self.path = segment_path(folder, number)
        self.part = self.path[:-len(".mp4")] + contract.LIVE_PART_SUFFIX
        self.frames = 0
        width, height = self.size
        cmd = [ffmpeg_binary(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
               "-s", f"{width}x{height}", "-r", f"{self.fps:.6g}", "-i", "-",
               "-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2",  # yuv420p needs even sides
               "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
               "-movflags", "+faststart", self.part]
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, bgr):
        self.process.stdin.write(memoryview(bgr).cast("B") if bgr.flags.c_contiguous else bgr.tobytes())
        self.frames += 1

    def finish(self):
        """Close the stream, wait for ffmpeg, and move the file to its final name; returns that path."""
        self.process.stdin.close()
        error = self.process.stderr.read().decode(errors="replace")
        if self.process.wait() != 0:
            raise RuntimeError(f"ffmpeg could not encode segment {self.number}: {error.strip()[-500:]}")
        os.replace(self.part, self.path)
        return self.path

    def abandon(self):
        """Stop encoding and delete the unfinished file."""
        self.process.kill()
        self.process.wait()
        if os.path.exists(self.part):
            os.remove(self.part)


def leftover_files(folder, known_numbers):
    """``(unfinished part files, finished segment files whose number is not in known_numbers)`` in ``folder``.

    Example::

        parts, orphans = leftover_files("/data/live", known_numbers={1, 2, 3})
    """
    parts = sorted(glob.glob(os.path.join(folder, "segment_*" + contract.LIVE_PART_SUFFIX)))
    finished = [p for p in sorted(glob.glob(os.path.join(folder, "segment_*.mp4")))
                if p not in parts and segment_number(p) is not None and segment_number(p) not in known_numbers]
    return parts, finished
