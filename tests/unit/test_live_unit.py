"""Live streams without a database: precision choice, what may be logged of a source, bad sources."""

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
