"""Live streams: index video as it arrives, watchlists that alert, real-time throughput.

Files: ``source`` (the reader thread: frames, gaps, reconnects), ``segments``
(H.264 segment files and their numbering), ``watchlists`` (saved queries,
alerts, webhooks), ``job`` (the loop tying them to the search pipeline),
``__main__`` (the command line: ``python -m person_finder.core.live``).

Example::

    from person_finder.core.live import add_watchlist, run_live, list_alerts
    add_watchlist(dataset, "red-blue", "red top and blue trousers", threshold=0.2)
    run_live(dataset, "rtsp://cam.local/live", "/data/live", segment_seconds=60)
    list_alerts(dataset)
"""

from .job import live_status, request_stop, run_live
from .watchlists import add_watchlist, list_alerts, list_watchlists, remove_watchlist

__all__ = ["run_live", "live_status", "request_stop", "add_watchlist", "remove_watchlist", "list_watchlists",
           "list_alerts"]
