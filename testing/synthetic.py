"""Synthetic people with known clothing, for tests, demos and benchmarks.

Each person is drawn from a :class:`PersonSpec` (clothing colours, sleeve and
leg length, bag, hat, hair) so that its description, its Market-1501 style
attributes and its pixels agree by construction. The generators write:

- a Market-1501 style folder (:func:`write_market_folder`),
- scene images with several people and their true boxes (:func:`write_scenes`),
- short H.264 videos of people walking across the frame, with their true
  tracks (:func:`write_video`).

Example::

    from core.kit import synthetic
    specs = synthetic.random_specs(4, seed=0)
    crop = synthetic.render_crop(specs[0], seed=1)           # PIL image 64x128
    print(synthetic.describe(specs[0]))
"""

from __future__ import annotations

import dataclasses
import os
import subprocess

import numpy as np
from PIL import Image, ImageDraw

from ..core.live.segments import ffmpeg_binary

#: RGB values of the colour names used by specs, descriptions and attributes.
COLORS = {
    "black": (25, 25, 25),
    "white": (235, 235, 235),
    "red": (205, 30, 30),
    "purple": (120, 40, 160),
    "yellow": (235, 210, 30),
    "gray": (128, 128, 128),
    "blue": (30, 60, 200),
    "green": (30, 150, 50),
    "pink": (240, 130, 180),
    "brown": (120, 75, 35),
    "orange": (240, 130, 20),
}

#: Market-1501's upper-body and lower-body colour attributes.
MARKET_UPPER_COLORS = ("black", "white", "red", "purple", "yellow", "gray", "blue", "green")
MARKET_LOWER_COLORS = ("black", "white", "pink", "purple", "yellow", "gray", "blue", "green", "brown")

BAG_KINDS = ("none", "backpack", "handbag", "shoulder bag")
SKIN_TONES = ((224, 172, 140), (198, 134, 96), (141, 85, 54), (241, 194, 160))
HAIR_COLORS = ((30, 20, 15), (90, 60, 30), (170, 130, 70))


@dataclasses.dataclass(frozen=True)
class PersonSpec:
    """What one synthetic person wears; everything a description can mention."""

    upper_color: str
    lower_color: str
    long_sleeves: bool = True
    long_lower: bool = True
    skirt: bool = False
    bag: str = "none"
    bag_color: str = "black"
    hat: bool = False
    long_hair: bool = False
    gender: str = "male"
    skin: int = 0
    hair_color: int = 0

    def __post_init__(self):
        for name in ("upper_color", "lower_color", "bag_color"):
            if getattr(self, name) not in COLORS:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is not a known colour; "
                    f"use one of {sorted(COLORS)}"
                )
        if self.bag not in BAG_KINDS:
            raise ValueError(f"bag={self.bag!r}; use one of {BAG_KINDS}")


def random_specs(count, seed=0, distinct=True):
    """Draw ``count`` person specs; with ``distinct`` no two share upper+lower colour.

    Example::

        specs = random_specs(10, seed=3)
    """
    rng = np.random.default_rng(seed)
    combos = [(u, l) for u in MARKET_UPPER_COLORS for l in MARKET_LOWER_COLORS if u != l]
    order = rng.permutation(len(combos))
    if distinct and count > len(combos):
        raise ValueError(f"at most {len(combos)} distinct colour combinations, asked {count}")
    specs = []
    for i in range(count):
        upper, lower = combos[order[i % len(combos)]]
        gender = "female" if rng.random() < 0.5 else "male"
        skirt = gender == "female" and rng.random() < 0.3
        specs.append(
            PersonSpec(
                upper_color=upper,
                lower_color=lower,
                long_sleeves=bool(rng.random() < 0.5),
                long_lower=bool(skirt or rng.random() < 0.6),
                skirt=bool(skirt),
                bag=BAG_KINDS[int(rng.integers(len(BAG_KINDS)))],
                bag_color=("black", "brown", "red", "blue")[int(rng.integers(4))],
                hat=bool(rng.random() < 0.25),
                long_hair=bool(rng.random() < (0.7 if gender == "female" else 0.1)),
                gender=gender,
                skin=int(rng.integers(len(SKIN_TONES))),
                hair_color=int(rng.integers(len(HAIR_COLORS))),
            )
        )
    return specs


def _jitter(color, rng, amount=18):
    if rng is None:
        return tuple(color)
    noise = rng.integers(-amount, amount + 1, size=3)
    return tuple(int(v) for v in np.clip(np.array(color) + noise, 0, 255))


def render_figure(spec, height=128, rng=None, facing=1):
    """Draw the person on a transparent RGBA canvas of ``height`` x ``height/2``.

    ``facing`` (+1 right, -1 left) mirrors the bag side, so views differ.
    """
    h = int(height)
    w = max(h // 2, 8)
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    c = lambda name: _jitter(COLORS[name], rng) + (255,)  # noqa: E731
    skin = _jitter(SKIN_TONES[spec.skin], rng, 8) + (255,)
    hair = _jitter(HAIR_COLORS[spec.hair_color], rng, 8) + (255,)
    upper, lower = c(spec.upper_color), c(spec.lower_color)
    cx = w / 2
    head_r = 0.075 * h
    head_cy = 0.11 * h
    torso_top, torso_bot = 0.2 * h, 0.55 * h
    torso_half = 0.2 * w
    knee, ankle = 0.75 * h, 0.94 * h
    side = 1 if facing >= 0 else -1

    if spec.bag == "backpack":  # seen behind the torso, sticking out on one side
        bx = cx - side * torso_half
        d.rectangle([bx - 0.14 * w, torso_top + 0.02 * h, bx + 0.14 * w, torso_bot - 0.04 * h], fill=c(spec.bag_color))
    if spec.long_hair:
        d.rectangle([cx - head_r * 1.1, head_cy, cx + head_r * 1.1, torso_top + 0.08 * h], fill=hair)
    # arms
    arm_w = 0.1 * w
    for s in (-1, 1):
        x0 = cx + s * torso_half + (0 if s > 0 else -arm_w)
        d.rectangle([x0, torso_top, x0 + arm_w, torso_bot], fill=skin)
        sleeve_end = torso_bot if spec.long_sleeves else torso_top + 0.1 * h
        d.rectangle([x0, torso_top, x0 + arm_w, sleeve_end], fill=upper)
    # torso
    d.rectangle([cx - torso_half, torso_top, cx + torso_half, torso_bot], fill=upper)
    # lower body
    leg_gap = 0.03 * w
    if spec.skirt:
        bottom = knee + 0.03 * h
        d.polygon([(cx - torso_half, torso_bot), (cx + torso_half, torso_bot),
                   (cx + torso_half * 1.5, bottom), (cx - torso_half * 1.5, bottom)], fill=lower)
        for s in (-1, 1):
            x0 = cx + s * (leg_gap + 0.06 * w) - 0.06 * w
            d.rectangle([x0, bottom, x0 + 0.12 * w, ankle], fill=skin)
    else:
        cloth_end = ankle if spec.long_lower else knee
        for s in (-1, 1):
            x0 = cx + leg_gap if s > 0 else cx - torso_half
            x1 = cx + torso_half if s > 0 else cx - leg_gap
            d.rectangle([x0, torso_bot, x1, ankle], fill=skin)
            d.rectangle([x0, torso_bot, x1, cloth_end], fill=lower)
    # shoes
    d.rectangle([cx - torso_half, ankle, cx - leg_gap, h - 1], fill=(40, 40, 40, 255))
    d.rectangle([cx + leg_gap, ankle, cx + torso_half, h - 1], fill=(40, 40, 40, 255))
    # head, hair, hat
    d.ellipse([cx - head_r, head_cy - head_r, cx + head_r, head_cy + head_r], fill=skin)
    d.chord([cx - head_r, head_cy - head_r, cx + head_r, head_cy + head_r], 180, 360, fill=hair)
    if spec.hat:
        d.rectangle([cx - head_r * 1.3, head_cy - head_r * 1.2, cx + head_r * 1.3, head_cy - head_r * 0.3], fill=c("black"))
    # bags carried in front
    bag = c(spec.bag_color)
    if spec.bag == "backpack":
        d.line([cx - torso_half * 0.6, torso_top, cx - torso_half * 0.6, torso_bot - 0.05 * h], fill=bag, width=max(1, h // 60))
        d.line([cx + torso_half * 0.6, torso_top, cx + torso_half * 0.6, torso_bot - 0.05 * h], fill=bag, width=max(1, h // 60))
    elif spec.bag == "handbag":
        hx = cx + side * (torso_half + arm_w * 0.5)
        d.rectangle([hx - 0.1 * w, torso_bot - 0.02 * h, hx + 0.1 * w, torso_bot + 0.08 * h], fill=bag)
    elif spec.bag == "shoulder bag":
        d.line([cx - side * torso_half, torso_top, cx + side * torso_half, torso_bot - 0.05 * h], fill=bag, width=max(1, h // 40))
        bx = cx + side * torso_half
        d.rectangle([bx - 0.12 * w, torso_bot - 0.08 * h, bx + 0.12 * w, torso_bot + 0.04 * h], fill=bag)
    return img


def _background(width, height, rng):
    base = rng.integers(90, 170, size=3)
    arr = np.empty((height, width, 3), dtype=np.int16)
    arr[:] = base
    arr += np.linspace(-25, 25, height, dtype=np.int16)[:, None, None]
    arr += rng.integers(-10, 11, size=(height, width, 3), dtype=np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def render_crop(spec, seed=0, size=(64, 128)):
    """A Market-1501 style crop (RGB, whole body, some background margin).

    Example::

        render_crop(PersonSpec("red", "blue"), seed=1).save("p.jpg")
    """
    rng = np.random.default_rng(seed)
    width, height = size
    canvas = _background(width, height, rng)
    scale = rng.uniform(0.82, 0.95)
    fig = render_figure(spec, height=int(height * scale), rng=rng, facing=1 if rng.random() < 0.5 else -1)
    x = int((width - fig.width) / 2 + rng.integers(-3, 4))
    y = int((height - fig.height) / 2 + rng.integers(-3, 4))
    canvas.paste(fig, (x, y), fig)
    return canvas


def describe(spec, variant=0):
    """A natural-language description that states only what is drawn.

    ``variant`` picks one of several phrasings (same facts).

    Example::

        describe(PersonSpec("white", "black", bag="shoulder bag", bag_color="brown"))
        # 'a person in a white long-sleeved top and black trousers, carrying a brown shoulder bag'
    """
    sleeve = "long-sleeved" if spec.long_sleeves else "short-sleeved"
    if spec.skirt:
        lower = "skirt"
    else:
        lower = "trousers" if spec.long_lower else "shorts"
    extras = []
    if spec.bag != "none":
        extras.append(f"carrying a {spec.bag_color} {spec.bag}")
    if spec.hat:
        extras.append("wearing a hat")
    tail = (", " + " and ".join(extras)) if extras else ""
    templates = (
        "a person in a {u} {s} top and {l} {lo}{t}",
        "someone wearing a {u} {s} shirt with {l} {lo}{t}",
        "{u} {s} top, {l} {lo}{t}",
    )
    return templates[variant % len(templates)].format(
        u=spec.upper_color, s=sleeve, l=spec.lower_color, lo=lower, t=tail
    )


def market_attributes(spec):
    """The spec as Market-1501's 27 identity attributes (1 = no, 2 = yes; age 1-4)."""
    attrs = {
        "age": 2,
        "backpack": 2 if spec.bag == "backpack" else 1,
        "bag": 2 if spec.bag == "shoulder bag" else 1,
        "handbag": 2 if spec.bag == "handbag" else 1,
        "clothes": 1 if spec.skirt else 2,  # 1 dress, 2 pants
        "down": 1 if spec.long_lower else 2,  # 1 long, 2 short
        "up": 1 if spec.long_sleeves else 2,  # 1 long sleeve, 2 short sleeve
        "hair": 2 if spec.long_hair else 1,  # 1 short, 2 long
        "hat": 2 if spec.hat else 1,
        "gender": 2 if spec.gender == "female" else 1,  # 1 male, 2 female
    }
    for color in MARKET_UPPER_COLORS:
        attrs["up" + color] = 2 if spec.upper_color == color else 1
    for color in MARKET_LOWER_COLORS:
        attrs["down" + color] = 2 if spec.lower_color == color else 1
    return attrs


def market_name(person_id, camera, sequence, frame, box_index):
    """A Market-1501 file name, e.g. ``0002_c1s1_000451_03.jpg`` (junk id -1 is ``-1_...``)."""
    pid = "-1" if person_id < 0 else f"{person_id:04d}"
    return f"{pid}_c{camera}s{sequence}_{frame:06d}_{box_index:02d}.jpg"


@dataclasses.dataclass
class MarketFolder:
    """What :func:`write_market_folder` wrote, to check an import against."""

    root: str
    specs: dict  # person_id -> PersonSpec
    files: dict  # relative path -> dict(person_id, camera, sequence, frame, split)
    duplicates: list  # (original relative path, planted duplicate relative path)


def write_market_folder(root, num_train=6, num_test=6, images_per_camera=2, cameras=(1, 2, 3),
                        num_distractors=2, num_junk=2, duplicates_per_identity=0, seed=0):
    """Write a Market-1501 style folder of synthetic people.

    Train identities go to ``bounding_box_train/``; for test identities one
    image per camera goes to ``query/`` and the rest to ``bounding_box_test/``
    together with distractors (id 0) and junk (id -1). With
    ``duplicates_per_identity`` > 0 that many near-copies (a one-pixel shift
    and faint noise) of existing images are planted per identity.

    Example::

        folder = write_market_folder("/tmp/market", num_train=4, num_test=4)
        len(folder.files)
    """
    rng = np.random.default_rng(seed)
    specs_list = random_specs(num_train + num_test, seed=seed)
    specs = {}
    files = {}
    duplicates = []
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)

    def save(img, sub, pid, cam, seq, frame, idx, split):
        rel = os.path.join(sub, market_name(pid, cam, seq, frame, idx))
        img.save(os.path.join(root, rel), quality=95)
        files[rel] = dict(person_id=pid, camera=cam, sequence=seq, frame=frame, split=split)
        return rel

    for i, spec in enumerate(specs_list):
        pid = 2 * i + 2  # Market ids are sparse
        specs[pid] = spec
        is_train = i < num_train
        written = []
        for cam in cameras:
            for k in range(images_per_camera):
                frame = int(rng.integers(1, 99999))
                img = render_crop(spec, seed=int(rng.integers(1 << 31)))
                if is_train:
                    sub, split = "bounding_box_train", "train"
                elif k == 0:
                    sub, split = "query", "query"
                else:
                    sub, split = "bounding_box_test", "gallery"
                written.append((save(img, sub, pid, cam, 1, frame, k + 1, split), img, sub, cam, split))
        for j in range(duplicates_per_identity):
            rel, img, sub, cam, split = written[j % len(written)]
            arr = np.asarray(img).astype(np.int16)
            arr = np.roll(arr, 1, axis=1) + rng.integers(-2, 3, size=arr.shape)
            dup = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
            dup_rel = save(dup, sub, pid, cam, 1, int(rng.integers(1, 99999)), 50 + j, split)
            duplicates.append((rel, dup_rel))
    for j in range(num_distractors):
        img = render_crop(random_specs(1, seed=seed + 1000 + j)[0], seed=j)
        save(img, "bounding_box_test", 0, cameras[j % len(cameras)], 1, 100 + j, 1, "gallery")
    for j in range(num_junk):
        img = Image.fromarray(rng.integers(0, 255, size=(128, 64, 3), dtype=np.uint8))
        rel = os.path.join("bounding_box_test", market_name(-1, cameras[0], 1, 200 + j, 1))
        img.save(os.path.join(root, rel))
    return MarketFolder(root=root, specs=specs, files=files, duplicates=duplicates)


@dataclasses.dataclass
class Scene:
    """One synthetic scene image and its true people."""

    filepath: str
    specs: list
    boxes: list  # relative [x, y, w, h] per person, FiftyOne convention

    def to_sample(self, field="ground_truth"):
        """A FiftyOne sample with the true person boxes in ``field``."""
        import fiftyone as fo

        return fo.Sample(filepath=self.filepath, **{field: fo.Detections(detections=[
            fo.Detection(label="person", bounding_box=box) for box in self.boxes])})


def _place_figures(specs, width, height, rng, min_h=0.35, max_h=0.6):
    """Non-overlapping horizontal slots for the figures, left to right."""
    slot = width / max(len(specs), 1)
    placed = []
    for i, spec in enumerate(specs):
        fh = int(height * rng.uniform(min_h, max_h))
        fw = fh // 2
        x = int(i * slot + rng.uniform(0, max(slot - fw, 1)))
        x = min(max(x, 0), width - fw)
        y = int(rng.uniform(0.05 * height, height - fh - 1))
        placed.append((spec, x, y, fh))
    return placed


def write_scenes(folder, specs_per_scene, width=1280, height=720, seed=0):
    """Write one JPEG per entry of ``specs_per_scene`` (a list of spec lists).

    Example::

        specs = random_specs(6, seed=0)
        scenes = write_scenes("/tmp/scenes", [specs[:3], specs[3:]])
        scenes[0].boxes[0]   # [x, y, w, h] relative
    """
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    scenes = []
    for n, specs in enumerate(specs_per_scene):
        canvas = _background(width, height, rng)
        boxes = []
        for spec, x, y, fh in _place_figures(specs, width, height, rng):
            fig = render_figure(spec, height=fh, rng=rng)
            canvas.paste(fig, (x, y), fig)
            boxes.append([x / width, y / height, fig.width / width, fig.height / height])
        path = os.path.join(folder, f"scene_{n:04d}.jpg")
        canvas.save(path, quality=92)
        scenes.append(Scene(filepath=path, specs=list(specs), boxes=boxes))
    return scenes


@dataclasses.dataclass
class VideoTruth:
    """A synthetic video and where each person is in every frame."""

    filepath: str
    specs: list
    fps: float
    num_frames: int
    frame_size: tuple  # (width, height)
    tracks: dict  # person index -> {frame number (1-based): relative [x, y, w, h]}

    def to_sample(self, field="ground_truth"):
        """A FiftyOne video sample with the true boxes in ``frames.<field>``; ``index`` is person + 1."""
        import fiftyone as fo

        sample = fo.Sample(filepath=self.filepath)
        for number in range(1, self.num_frames + 1):
            people = [fo.Detection(label="person", bounding_box=frames[number], index=person + 1)
                      for person, frames in self.tracks.items() if number in frames]
            if people:
                sample.frames[number] = fo.Frame(**{field: fo.Detections(detections=people)})
        return sample

    def visible_frames(self, person):
        """First and last 1-based frame numbers where ``person`` is visible."""
        frames = sorted(self.tracks[person])
        return frames[0], frames[-1]


def write_camera_videos(folder, specs, cameras=3, num_frames=24, width=384, height=216, seed=10):
    """Camera videos of the same people: camera ``c`` films every person ``p`` with ``p % cameras != c``.

    Returns ``{filepath: (VideoTruth, people)}`` where ``people[i]`` is the
    index in ``specs`` of the truth's person ``i``; add them with
    ``truth.to_sample()`` (and a ``camera_id``). Use :func:`true_person` to
    say who a box is.

    Example::

        videos = write_camera_videos("/tmp/cams", random_specs(4))
    """
    videos = {}
    for camera in range(cameras):
        people = [p for p in range(len(specs)) if p % cameras != camera]
        truth = write_video(os.path.join(folder, f"cam{camera}.mp4"), [specs[p] for p in people],
                            num_frames=num_frames, width=width, height=height, seed=seed + camera)
        videos[truth.filepath] = (truth, people)
    return videos


def true_person(videos, filepath, frame_number, box):
    """Index in ``specs`` of the person whose true box at ``frame_number`` of ``filepath`` is ``box``."""
    truth, people = videos[filepath]
    for person, frames in truth.tracks.items():
        if frame_number in frames and np.allclose(frames[frame_number], box, atol=1e-6):
            return people[person]
    raise ValueError(f"no true person at frame {frame_number} of {filepath} with box {box}")


#: Who is in each image of :func:`write_recurring_scenes`: person 0 in three of the four.
RECURRING_LAYOUT = ((0, 1, 2), (3, 0), (1, 3), (2, 0))


def write_recurring_scenes(folder, specs, width=480, height=270, seed=3):
    """Four scene images of four people (``specs[:4]``) where ``specs[0]`` is in three of them, the others in two.

    For query by example ("more like this": a person's other images first).
    Use :func:`scene_people` to say who each indexed person is.

    Example::

        specs = random_specs(4)
        scenes = write_recurring_scenes("/tmp/recurring", specs)
        scenes[1].specs[1] == specs[0]                                    # True
    """
    return write_scenes(folder, [[specs[p] for p in people] for people in RECURRING_LAYOUT], width=width,
                        height=height, seed=seed)


def scene_people(samples, scenes, field="persons"):
    """``{label id: person}`` for the detections in ``field`` of :func:`write_recurring_scenes`' images.

    ``person`` indexes :data:`RECURRING_LAYOUT`'s people (and the specs); boxes
    must be the true ones (e.g. indexed from ``ground_truth``).

    Example::

        index_persons(dataset, matcher=..., detections_field="ground_truth")
        scene_people(dataset, scenes)                                     # {"65a1...": 0, ...}
    """
    truth = {scene.filepath: list(zip(people, scene.boxes)) for scene, people in zip(scenes, RECURRING_LAYOUT)}
    out = {}
    for filepath, ids, boxes in zip(*samples.values(["filepath", f"{field}.detections.id",
                                                      f"{field}.detections.bounding_box"])):
        for label_id, box in zip(ids or [], boxes or []):
            out[label_id] = next(p for p, true_box in truth[filepath] if np.allclose(true_box, box, atol=1e-6))
    return out


def add_indexed_scenes(dataset, folder, specs_per_scene, matcher, width=480, height=270, seed=0, **index_kwargs):
    """:func:`write_scenes`, added to ``dataset`` with their true boxes as ``ground_truth``, and those persons
    indexed by the product's ``index_persons`` (no detector); returns the scenes.

    Example::

        scenes = add_indexed_scenes(dataset, "/tmp/scenes", [specs[:3], specs[3:]], matcher="/models/tiny-siglip")
        scene_specs(dataset, scenes)   # which person each indexed detection shows
    """
    from ..core.search import index_persons

    scenes = write_scenes(folder, specs_per_scene, width=width, height=height, seed=seed)
    dataset.add_samples([scene.to_sample() for scene in scenes])
    index_persons(dataset, matcher=matcher, detections_field="ground_truth", **index_kwargs)
    return scenes


def scene_specs(samples, scenes, field="persons", tolerance=1e-3):
    """``{label id: spec}``: the synthetic person each detection in ``field`` of :func:`write_scenes`' images shows.

    Boxes must be the true ones (e.g. indexed from ``ground_truth``); a box
    matches a scene's box when no coordinate differs by more than ``tolerance``.

    Example::

        index_persons(dataset, matcher=..., detections_field="ground_truth")
        scene_specs(dataset, scenes)                                      # {"65a1...": PersonSpec(...), ...}
    """
    truth = {scene.filepath: list(zip(scene.specs, scene.boxes)) for scene in scenes}
    out = {}
    for filepath, ids, boxes in zip(*samples.values(["filepath", f"{field}.detections.id",
                                                      f"{field}.detections.bounding_box"])):
        for label_id, box in zip(ids or [], boxes or []):
            out[label_id] = next(spec for spec, true_box in truth[filepath]
                                 if np.allclose(true_box, box, rtol=0, atol=tolerance))
    return out


def write_video(path, specs, num_frames=90, width=1280, height=720, fps=30.0, seed=0):
    """Write an H.264 MP4 of ``specs`` walking across the frame, with true tracks.

    Each person walks left-to-right or right-to-left at its own speed and
    height; people enter and leave, so spans differ. Boxes are clipped to the
    frame and recorded only while at least half of the person is visible.

    Example::

        truth = write_video("/tmp/walk.mp4", random_specs(3), num_frames=60)
        truth.visible_frames(0)
    """
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    walkers = []
    lanes = np.linspace(0.05, 0.4, len(specs)) if specs else []
    for i, spec in enumerate(specs):
        fh = int(height * rng.uniform(0.4, 0.55))
        direction = 1 if i % 2 == 0 else -1
        fig = render_figure(spec, height=fh, rng=rng, facing=direction)
        span = width + fig.width
        speed = span / (num_frames * rng.uniform(0.6, 1.1))
        start = rng.uniform(-fig.width, width * 0.5)
        walkers.append((fig, direction, speed, start, int(lanes[i] * height)))
    background = np.asarray(_background(width, height, rng))
    tracks = {i: {} for i in range(len(specs))}
    cmd = [ffmpeg_binary(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264",
           "-preset", "veryfast", "-pix_fmt", "yuv420p", "-crf", "20", path]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    try:
        for f in range(num_frames):
            frame = Image.fromarray(background.copy())
            for i, (fig, direction, speed, start, y) in enumerate(walkers):
                offset = start + speed * f
                x = int(offset if direction > 0 else width - fig.width - offset)
                frame.paste(fig, (x, y), fig)
                x0, x1 = max(x, 0), min(x + fig.width, width)
                if x1 - x0 >= fig.width / 2:
                    tracks[i][f + 1] = [x0 / width, y / height, (x1 - x0) / width, fig.height / height]
            proc.stdin.write(frame.tobytes())
    finally:
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed to encode {path}")
    return VideoTruth(filepath=path, specs=list(specs), fps=fps, num_frames=num_frames,
                      frame_size=(width, height), tracks=tracks)
