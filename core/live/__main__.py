"""Command line of live indexing: ``python -m person_finder.core.live ...``; stops cleanly on Ctrl-C / SIGTERM.

Examples::

    python -m person_finder.core.live run --dataset cams rtsp://cam.local/live --media-dir /data/live \\
        --segment-seconds 60 --webhook http://127.0.0.1:8080/alerts
    python -m person_finder.core.live watch --dataset cams "red top and blue trousers" --name red-blue --threshold 0.2
    python -m person_finder.core.live watch --dataset cams --name suspect --like-track 65a1...:3 --examples-from archive
    python -m person_finder.core.live status --dataset cams
    python -m person_finder.core.live stop --dataset cams
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from .. import contract, defaults


def _parser():
    parser = argparse.ArgumentParser(prog="python -m person_finder.core.live",
                                     description="Index a live video stream into a FiftyOne dataset, with watchlists")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="index a stream until stopped (Ctrl-C, SIGTERM, `stop`)")
    run.add_argument("source", help="stream URL (rtsp/http/udp/tcp...), camera index, or file")
    run.add_argument("--dataset", required=True, help="dataset name (created if missing)")
    run.add_argument("--media-dir", required=True, help="folder of the segment MP4 files")
    run.add_argument("--matcher", default=defaults.MATCHER_MODEL)
    run.add_argument("--detector", default=defaults.DETECTOR_MODEL)
    run.add_argument("--segment-seconds", type=float, default=defaults.LIVE_SEGMENT_SECONDS)
    run.add_argument("--detect-every", type=int, default=defaults.VIDEO_DETECT_EVERY)
    run.add_argument("--precision", choices=defaults.LIVE_PRECISIONS, default=defaults.LIVE_PRECISION)
    run.add_argument("--webhook", default=None, help="URL that receives each alert as a JSON POST")
    run.add_argument("--follow", action="store_true", help="a growing file: wait for more at its end")
    run.add_argument("--max-segments", type=int, default=None)
    run.add_argument("--give-up-seconds", type=float, default=defaults.LIVE_GIVE_UP_SECONDS,
                     help="stop after this long without a frame (default: retry for ever)")
    run.add_argument("--device", default=None)
    watch = commands.add_parser("watch", help="add or replace a watchlist (a saved text query, or an example "
                                              "person, that alerts)")
    watch.add_argument("query", nargs="?", default=None, help="the text query (or give one --like-* example)")
    watch.add_argument("--dataset", required=True)
    watch.add_argument("--name", required=True)
    watch.add_argument("--threshold", type=float, default=None,
                       help=f"default {defaults.WATCHLIST_THRESHOLD} for a text, {defaults.IDENTITY_LINK_THRESHOLD} "
                            "(cosine) for an example")
    watch.add_argument("--like-label", dest="label_id", help="example: a person detection's label id")
    watch.add_argument("--like-track", dest="track", help="example: VIDEO_SAMPLE_ID:TRACK_ID")
    watch.add_argument("--like-identity", dest="identity", type=int, help="example: an identity number")
    watch.add_argument("--like-image", dest="image", help="example: an image of one person")
    watch.add_argument("--examples-from", help="the indexed dataset holding the example (default --dataset)")
    watch.add_argument("--matcher", default=None, help="embeds a --like-image where that dataset has no index")
    watch.add_argument("--threshold-type", choices=defaults.THRESHOLD_TYPES, default="cosine")
    unwatch = commands.add_parser("unwatch", help="remove a watchlist")
    unwatch.add_argument("name")
    unwatch.add_argument("--dataset", required=True)
    for name, text in (("status", "print the job's status, watchlists and latest alerts as JSON"),
                       ("stop", "ask the running job to stop (it saves the segment in progress)")):
        commands.add_parser(name, help=text).add_argument("--dataset", required=True)
    return parser


def main(argv=None):
    """Run one command; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import fiftyone as fo

    from . import add_watchlist, list_alerts, list_watchlists, live_status, remove_watchlist, request_stop, run_live

    if args.command != "run" and not fo.dataset_exists(args.dataset):
        print(f"no dataset {args.dataset!r}; datasets: {fo.list_datasets()}", file=sys.stderr)
        return 2
    dataset = fo.load_dataset(args.dataset) if fo.dataset_exists(args.dataset) else \
        fo.Dataset(args.dataset, persistent=True)
    if args.command == "run":
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        summary = run_live(dataset, args.source, args.media_dir, matcher=args.matcher, detector=args.detector,
                           segment_seconds=args.segment_seconds, detect_every=args.detect_every,
                           precision=args.precision, webhook_url=args.webhook, follow=args.follow,
                           max_segments=args.max_segments, give_up_seconds=args.give_up_seconds,
                           device=args.device, stop_event=stop)
        print(json.dumps(summary))
    elif args.command == "watch":
        track = args.track and args.track.rsplit(":", 1)
        if track and (len(track) != 2 or not track[1].isdigit()):
            print(f"--like-track takes VIDEO_SAMPLE_ID:TRACK_ID, got {args.track!r}", file=sys.stderr)
            return 2
        source = fo.load_dataset(args.examples_from) if args.examples_from else None
        add_watchlist(dataset, args.name, args.query, threshold=args.threshold, threshold_type=args.threshold_type,
                      label_id=args.label_id, track=track and (track[0], int(track[1])), identity=args.identity,
                      image=args.image, examples_from=source, matcher=args.matcher)
        print(json.dumps(list_watchlists(dataset)))
    elif args.command == "unwatch":
        print(json.dumps(remove_watchlist(dataset, args.name)))
    elif args.command == "status":
        print(json.dumps({"status": live_status(dataset), "watchlists": list_watchlists(dataset),
                          "alerts": list_alerts(dataset, limit=defaults.LIVE_STATUS_ALERTS)}, default=str))
    else:
        request_stop(dataset)
        print(f"stop requested; the job stops within {defaults.LIVE_POLL_SECONDS} s (key {contract.LIVE_STOP_KEY!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
