"""Operators over ``core.live``: start a live job (delegated), watch it, stop it, manage its watchlists."""

from __future__ import annotations

from ..core import contract, defaults
from .base import Param, PersonFinderOperator, progress_reporter
from .search import MATCHER_PARAM


def _is_add(ctx):
    return ctx.params.get("mode", "add") == "add"


def _watchlist_threshold(params):
    """An example is scored at the identity-link cosine; a text at the match threshold."""
    example = params.get("example_label_id") or params.get("example_image")
    return defaults.IDENTITY_LINK_THRESHOLD if example else defaults.WATCHLIST_THRESHOLD


class StartLiveStream(PersonFinderOperator):
    """Index a live stream into this dataset as it arrives, segment by segment, scoring the watchlists."""

    name, label = "start_live_stream", "start live stream"
    description = ("Read an RTSP / HTTP / UDP stream, a camera or a growing file; cut it into indexed video "
                   "segments and raise watchlist alerts, until stopped")
    targets_view = False
    params = (
        Param("source", required=True, label="Stream",
              description="rtsp://, http://, udp://, tcp:// URL, a camera index (0), or a file path"),
        Param("media_dir", required=True, label="Segment folder", description="Where the segment MP4 files go"),
        MATCHER_PARAM,
        Param("detector", default=defaults.DETECTOR_MODEL, label="Detector",
              description="Ultralytics weights name, or a .pt / .onnx / .yaml file"),
        Param("segment_seconds", "float", default=defaults.LIVE_SEGMENT_SECONDS, min=1.0, label="Segment length (s)"),
        Param("detect_every", "int", default=defaults.VIDEO_DETECT_EVERY, min=1, label="Detect every k-th frame"),
        Param("precision", "enum", default=defaults.LIVE_PRECISION, choices=defaults.LIVE_PRECISIONS, view="radio",
              label="Precision", description="auto: bf16 where the CPU has avx512_bf16 (or on a GPU), else fp32"),
        Param("webhook_url", label="Alert webhook (optional)",
              description=f"Each alert is POSTed here as JSON; empty: the {contract.LIVE_WEBHOOK_SECRET} secret, "
                          "if set (keep URLs holding a token there)"),
        Param("follow", "bool", default=False, label="Growing file", description="At the file's end, wait for more"),
        Param("give_up_seconds", "float", min=1.0, label="Give up after (s)",
              description="Stop after this long without a frame; empty: retry for ever"),
        Param("max_segments", "int", min=1, label="Stop after N segments (optional)"),
    )

    def run(self, ctx, webhook_url=None, **params):
        from ..core.live import run_live

        webhook_url = webhook_url or ctx.secrets.get(contract.LIVE_WEBHOOK_SECRET)
        return run_live(ctx.dataset, webhook_url=webhook_url, on_progress=progress_reporter(ctx), **params)

    def summarize(self, ctx, result):
        return (f"{result['segments']} segments, {result['alerts']} alerts, {result['gaps']} gaps; "
                f"stopped: {result['reason']}")


class LiveStreamStatus(PersonFinderOperator):
    """The live job's status, the watchlists and the latest alerts; opens the segments that have alerts."""

    name, label = "live_stream_status", "live stream status"
    description = "Segments, frames, gaps and the latest watchlist alerts of this dataset's live job"
    execution = "immediate"
    targets_view = False
    reloads_dataset = False
    params = (Param("alerts", "int", default=defaults.LIVE_STATUS_ALERTS, min=0, label="Latest alerts"),
              Param("show_alerts", "bool", default=False, label="Show the segments with alerts"))

    def run(self, ctx, alerts, show_alerts):
        from ..core.live import list_alerts, list_watchlists, live_status

        result = {"status": live_status(ctx.dataset), "watchlists": list_watchlists(ctx.dataset),
                  "alerts": list_alerts(ctx.dataset, limit=alerts) if alerts else []}
        if show_alerts and ctx.dataset.has_saved_view(contract.LIVE_ALERTS_VIEW):
            ctx.ops.set_view(view=ctx.dataset.load_saved_view(contract.LIVE_ALERTS_VIEW))
        return result

    def summarize(self, ctx, result):
        status = result["status"]
        if not status:
            return "no live job has run on this dataset"
        return (f"live job {status['state']}: {status.get('segments', 0)} segments, {status.get('alerts', 0)} alerts, "
                f"{status.get('gaps', 0)} gaps, real-time factor {status.get('realtime_factor')}; "
                f"{len(result['watchlists'])} watchlists")


class StopLiveStream(PersonFinderOperator):
    """Ask this dataset's live job to stop; it saves the segment in progress first."""

    name, label = "stop_live_stream", "stop live stream"
    description = "Set the stop flag the running live job polls (it finishes the segment in progress)"
    execution = "immediate"
    targets_view = False
    reloads_dataset = False

    def run(self, ctx):
        from ..core.live import request_stop

        request_stop(ctx.dataset)
        return {"stop_requested": True}

    def summarize(self, ctx, result):
        return f"stop requested; the job stops within {defaults.LIVE_POLL_SECONDS:g} s"


class ManageWatchlist(PersonFinderOperator):
    """Add (or replace) or remove a watchlist: a saved text query, or an example person, that alerts when a matching
    person appears."""

    name, label = "manage_watchlist", "manage watchlist"
    description = "Save a text query that a live job scores on every new person, or remove one"
    execution = "immediate"
    targets_view = False
    reloads_dataset = False
    params = (
        Param("mode", "enum", default="add", choices=("add", "remove"), view="radio", label="Action"),
        Param("name", required=True, label="Watchlist name"),
        Param("query", label="Text query", when=_is_add, description="e.g. red top and blue trousers"),
        Param("threshold_type", "enum", default="cosine", choices=defaults.THRESHOLD_TYPES, view="radio",
              label="Threshold in", when=_is_add),
        Param("threshold", "float", default=_watchlist_threshold, min=-1.0, max=1.0, label="Alert threshold",
              when=_is_add),
        Param("example_label_id", label="Or: example person (label id)", when=_is_add,
              description="a person detection of an indexed dataset; scored in cosine (identity-link semantics)"),
        Param("example_image", label="Or: example image of one person", when=_is_add),
        Param("examples_dataset", label="Dataset of the example", when=_is_add,
              description="the indexed dataset holding the example person (default: this one)"),
    )

    def run(self, ctx, mode, name, example_label_id=None, example_image=None, examples_dataset=None, **params):
        import fiftyone as fo

        from ..core.live import add_watchlist, remove_watchlist

        if mode != "add":
            return {"watchlists": remove_watchlist(ctx.dataset, name)}
        if example_label_id or example_image:
            params = dict(params, query=None, threshold_type="cosine", label_id=example_label_id or None,
                          image=example_image or None,
                          examples_from=fo.load_dataset(examples_dataset) if examples_dataset else None)
        return {"watchlists": add_watchlist(ctx.dataset, name, **params)}

    def summarize(self, ctx, result):
        return f"{len(result['watchlists'])} watchlists: " + ", ".join(f"`{w['name']}`" for w in result["watchlists"])


OPERATORS = [StartLiveStream, LiveStreamStatus, StopLiveStream, ManageWatchlist]
