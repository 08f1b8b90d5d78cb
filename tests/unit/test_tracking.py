"""Video tracking: when a track is re-embedded, and what colour order its crops reach the encoder in."""

import os

import numpy as np
from person_finder.testing import synthetic


def test_track_embedding_is_refreshed_when_the_box_changes_shape(test_root):
    from person_finder.core.search.tracking import track_video

    truth = synthetic.write_video(os.path.join(test_root, "refresh", "walk.mp4"), synthetic.random_specs(1, seed=3),
                                  num_frames=24, width=320, height=180, seed=4)
    width, height = truth.frame_size
    (track,) = truth.tracks.values()

    def detect(numbers, frames, crouch_from=None):
        out = []
        for n in numbers:
            x, y, w, h = track.get(n, (0, 0, 0, 0))
            if crouch_from and n >= crouch_from:
                y, h = y + h / 2, h / 2  # half the height: the old crop no longer represents the person
            out.append(np.asarray([[x * width, y * height, (x + w) * width, (y + h) * height, 0.9]] if w else [],
                                  dtype=np.float32).reshape(-1, 5))
        return out

    embed = lambda crops: np.ones((len(crops), 4), np.float32) / 2  # noqa: E731
    first, last = min(track), max(track)
    steady = track_video(truth.filepath, detect, embed, refresh_frames=1000)
    crouching = track_video(truth.filepath, lambda n, f: detect(n, f, crouch_from=first + 5), embed,
                            refresh_frames=1000)
    periodic = track_video(truth.filepath, detect, embed, refresh_frames=5, refresh_iou=0.0)
    assert steady.encoder_crops == 1 and crouching.encoder_crops == 2
    span = last - first + 1  # a track born after frame 1 is confirmed (and embedded) one frame later
    assert periodic.encoder_crops in (-(-span // 5), -(-(span - 1) // 5))
    assert sum(len(p) for p in steady.frames.values()) == len(track)


def test_video_crops_reach_the_encoder_in_rgb(test_root):
    """Frames stay BGR for the detector and tracker; the crops the matcher sees must be RGB."""
    from person_finder.core.search.tracking import track_video

    spec = synthetic.PersonSpec("red", "blue", long_sleeves=True, long_lower=True)
    truth = synthetic.write_video(os.path.join(test_root, "rgb", "walk.mp4"), [spec], num_frames=12,
                                  width=320, height=180, seed=2)
    width, height = truth.frame_size
    (track,) = truth.tracks.values()
    crops = []

    def detect(numbers, frames):
        return [np.asarray([[x * width, y * height, (x + w) * width, (y + h) * height, 0.9]
                            for x, y, w, h in [track[n]]] if n in track else [], np.float32).reshape(-1, 5)
                for n in numbers]

    def embed(images):
        crops.extend(images)
        return np.ones((len(images), 4), np.float32) / 2

    track_video(truth.filepath, detect, embed)
    crop = np.asarray(crops[0], dtype=float)
    third = len(crop) // 3
    top, legs = crop[third:2 * third].reshape(-1, 3).mean(0), crop[2 * third:].reshape(-1, 3).mean(0)
    assert top[0] > top[2] + 25 and legs[2] > legs[0] + 25, (top, legs)  # red top, blue trousers
