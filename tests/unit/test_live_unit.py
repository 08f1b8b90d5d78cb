"""Live streams without a database: precision choice, what may be logged of a source, bad sources."""

import numpy as np
import pytest

from person_finder.core.live.segments import segment_number
from person_finder.core.live.source import check_source, redact
from person_finder.core.models.precision import resolve_precision


def test_bf16_only_where_the_cpu_has_bf16_instructions(tmp_path):
    with_bf16, without = tmp_path / "bf16", tmp_path / "plain"
    with_bf16.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16\n")
    without.write_text("flags\t\t: fpu avx2 avx512f\n")
    assert resolve_precision("auto", "cpu", cpuinfo=str(with_bf16)) == ("bf16", "CPU has avx512_bf16: bf16 autocast")
    precision, reason = resolve_precision("bf16", "cpu", cpuinfo=str(without))
    assert precision == "fp32" and "no avx512_bf16" in reason
    assert resolve_precision("auto", "cuda:0", cpuinfo=str(without))[0] == "bf16"
    assert resolve_precision("fp32", "cpu", cpuinfo=str(with_bf16))[0] == "fp32"
    with pytest.raises(ValueError, match=r"precision must be one of \['auto', 'fp32', 'bf16'\], got 'fp16'"):
        resolve_precision("fp16")


def test_a_source_is_logged_without_its_credentials():
    assert redact("rtsp://admin:secret@cam.local:554/live?token=abc") == "rtsp://cam.local:554/live"
    assert redact("/data/cam.ts") == "/data/cam.ts" and redact("0") == "0"


def test_bad_sources_are_refused_with_what_is_allowed(tmp_path):
    for bad, message in (("", "a live source is needed"), (str(tmp_path / "none.ts"), "no file at"),
                         ("ftp://x/y", "stream scheme 'ftp' is not supported")):
        with pytest.raises(ValueError, match=message):
            check_source(bad)
    check_source("udp://127.0.0.1:5000")
    check_source("0")


def test_segment_files_are_numbered():
    assert segment_number("/x/segment_000042.mp4") == 42 and segment_number("segment_000007.part.mp4") == 7
    assert segment_number("alerts.jpg") is None


class _FakeMatcher:
    """A matcher whose every text embeds to the x axis (no model)."""

    device = "fake"

    def embed_texts(self, texts):
        return np.tile(np.asarray([1.0, 0.0, 0.0], np.float32), (len(texts), 1))

    def probability(self, cosine):
        return 0.5

    def cosine_for_probability(self, probability):
        return 0.0


def test_example_watchlists_are_scored_by_their_saved_vector_in_cosine_without_probability():
    from person_finder.core.live.watchlists import WatchlistScorer

    text = {"name": "text", "query": "red top", "threshold": 0.5, "threshold_type": "cosine"}
    example = {"name": "like", "query": "like track 3", "vector": [0.0, 1.0, 0.0], "threshold": 0.7,
               "threshold_type": "cosine"}
    other_model = {"name": "other", "query": "like image a.jpg", "vector": [1.0, 0.0], "threshold": -1.0,
                   "threshold_type": "cosine"}
    scorer = WatchlistScorer(_FakeMatcher())
    scorer.refresh([text, example, other_model])
    crops = np.asarray([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.6, 0.8]], np.float32)
    found = {(row, w["name"]): round(cosine, 3) for row, w, cosine in scorer.matches(crops)}
    assert found == {(0, "like"): 1.0, (1, "text"): 1.0}  # another width (another matcher) never matches
    assert scorer.probability(0.9, example) is None and scorer.probability(0.9, text) == 0.5
