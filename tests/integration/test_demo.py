"""The README's demo runs end to end and prints ranked matches with their ground truth."""

import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT


@pytest.mark.slow
def test_demo_prints_ranked_matches(finetuned_siglip, test_root):
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "scripts", "demo.py"), "--matcher", finetuned_siglip,
         "--workdir", os.path.join(test_root, "demo"), "--name", "demo-test", "--scenes", "2", "--frames", "40"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.count("Top matches for 'a person in a red top and blue trousers'") == 2
    video_rows = out.split("demo-test-video:")[1].splitlines()[2:5]
    assert "frame" in video_rows[0] and "red long-sleeved top and blue trousers" in video_rows[0]
    assert "fiftyone app launch demo-test-images" in out
