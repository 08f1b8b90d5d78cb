"""The synthetic kit writes what it claims: Market names, scenes with true boxes, H.264 videos with tracks."""

import json
import os
import re
import subprocess

import numpy as np
from person_finder.testing import synthetic
from PIL import Image

MARKET_NAME = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")


def test_market_folder_layout(market_folder):
    root = market_folder.root
    names = {sub: sorted(os.listdir(os.path.join(root, sub))) for sub in ("bounding_box_train", "query", "bounding_box_test")}
    assert all(MARKET_NAME.match(n) for files in names.values() for n in files)
    assert any(n.startswith("-1_") for n in names["bounding_box_test"])       # junk
    assert any(n.startswith("0000_") for n in names["bounding_box_test"])     # distractors
    assert len(market_folder.duplicates) == 12
    # every written file is distinct on disk (nothing overwrote anything)
    assert len(market_folder.files) == sum(len(v) for v in names.values()) - 2


def test_descriptions_and_attributes_agree_with_the_spec():
    spec = synthetic.PersonSpec("white", "black", long_sleeves=False, bag="shoulder bag", bag_color="brown")
    text = synthetic.describe(spec)
    assert "white short-sleeved" in text and "black trousers" in text and "brown shoulder bag" in text
    attrs = synthetic.market_attributes(spec)
    assert len(attrs) == 27
    assert attrs["upwhite"] == 2 and attrs["downblack"] == 2 and attrs["bag"] == 2 and attrs["up"] == 2


def test_crop_shows_the_clothing_colours():
    spec = synthetic.PersonSpec("red", "blue")
    arr = np.asarray(synthetic.render_crop(spec, seed=0)).astype(int)
    torso, legs = arr[45:60, 28:36].reshape(-1, 3).mean(0), arr[85:100, 24:30].reshape(-1, 3).mean(0)
    assert torso[0] > 150 and torso[2] < 100
    assert legs[2] > 150 and legs[0] < 100


def test_scenes_have_true_boxes(test_root):
    specs = synthetic.random_specs(5, seed=2)
    scenes = synthetic.write_scenes(os.path.join(test_root, "scenes"), [specs[:3], specs[3:]], width=640, height=360)
    assert [len(s.boxes) for s in scenes] == [3, 2]
    assert Image.open(scenes[0].filepath).size == (640, 360)
    for x, y, w, h in scenes[0].boxes:
        assert 0 <= x and x + w <= 1 and 0 <= y and y + h <= 1


def test_video_is_h264_with_tracks(test_root):
    truth = synthetic.write_video(os.path.join(test_root, "walk.mp4"), synthetic.random_specs(3), num_frames=45,
                                  width=320, height=240)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,nb_read_frames,width,height", "-of", "json", truth.filepath],
        capture_output=True, text=True, check=True).stdout)["streams"][0]
    assert probe["codec_name"] == "h264" and int(probe["nb_read_frames"]) == 45
    assert (probe["width"], probe["height"]) == (320, 240)
    assert all(truth.tracks[i] for i in range(3))
    first, last = truth.visible_frames(0)
    assert 1 <= first <= last <= 45
