"""Watchlists: saved text queries scored on every new track embedding of a live stream; alerts and webhooks.

A watchlist is ``{"name", "query", "threshold", "threshold_type"}`` kept in
the dataset's live store (FiftyOne's execution store, in MongoDB), so the
App, the command line and a running job see the same list. A running job
embeds each query once (cached), scores each new crop embedding against
all of them (one matrix product), and raises one alert per (watchlist,
track): a record in the live store, a crop JPEG, a log line and, when a
webhook URL is given, a JSON POST from a background thread that never
blocks indexing.

Example::

    from person_finder.core.live import add_watchlist, list_alerts
    add_watchlist(dataset, "red-blue", "red top and blue trousers", threshold=0.2)
    list_alerts(dataset)[0]["score"]
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import urllib.request

import numpy as np

from .. import contract, defaults

logger = logging.getLogger(__name__)


def live_store(dataset):
    """The dataset's live store (status, stop flag, watchlists, alerts)."""
    from fiftyone.operators.store import ExecutionStore

    return ExecutionStore.create(contract.LIVE_STORE, dataset._doc.id)


def add_watchlist(dataset, name, query=None, threshold=None, threshold_type="cosine", label_id=None, track=None,
                  identity=None, image=None, examples_from=None, brain_key=contract.PERSON_INDEX_KEY, matcher=None):
    """Save (or replace) the watchlist ``name``; a running job picks it up within ``LIVE_POLL_SECONDS``.

    A text ``query`` (threshold in cosine, default ``WATCHLIST_THRESHOLD``, or
    SIGLIP probability), or an example as in query by example
    (:func:`core.identities.examples.example_vector`): ``label_id`` (a person),
    ``track`` (``(video sample id, track id)``) or ``identity`` of the indexed
    ``examples_from`` (default ``dataset``; its ``brain_key`` index), or an
    ``image`` of one person (embedded by ``matcher`` when given, else by
    that index's matcher). An example is saved as its embedding and scored in
    cosine only (image to image has no SigLIP probability), by default at
    ``IDENTITY_LINK_THRESHOLD``, the threshold that links tracks into identities.

    Example::

        add_watchlist(dataset, "bag", "a woman with a brown shoulder bag", threshold=0.6,
                      threshold_type="probability")
        add_watchlist(live, "suspect", track=(video_id, 3), examples_from=archive)
    """
    from ..search.validation import check_query, check_threshold

    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a watchlist needs a non-empty name, got {name!r}")
    example = {key: value for key, value in (("label_id", label_id), ("track", track), ("identity", identity),
                                             ("image", image)) if value is not None}
    if (query is None) == (not example):
        raise ValueError("a watchlist needs either a text query or one example (label_id, track, identity or image), "
                         f"got query={query!r} and {sorted(example) or 'no example'}")
    if example and threshold_type != "cosine":
        raise ValueError(f"an example watchlist is scored in cosine (image to image has no SigLIP probability), "
                         f"got threshold_type={threshold_type!r}")
    if threshold is None:
        threshold = defaults.IDENTITY_LINK_THRESHOLD if example else defaults.WATCHLIST_THRESHOLD
    check_threshold(threshold, threshold_type)
    watchlist = {"name": name.strip(), "threshold": float(threshold), "threshold_type": threshold_type}
    if example:
        watchlist.update(_example(dataset if examples_from is None else examples_from, brain_key, matcher, example))
    else:
        check_query(query)
        watchlist["query"] = query.strip()
    lists = [w for w in list_watchlists(dataset) if w["name"] != watchlist["name"]]
    live_store(dataset).set(contract.LIVE_WATCHLISTS_KEY, lists + [watchlist])
    return lists + [watchlist]


def _example(samples, brain_key, matcher, example):
    """The saved part of an example watchlist: ``query`` (its description), ``example`` and ``vector``."""
    from ..identities.examples import example_vector

    (kind, value), = example.items()
    if kind == "image" and matcher is not None:
        from ..models.images import open_rgb
        from ..search.gallery import shared_matcher

        vector = shared_matcher(matcher).embed_images([open_rgb(value)])[0]
    else:
        vector = example_vector(samples, brain_key, **example)[0]
    if kind == "track":
        value = [str(value[0]), int(value[1])]
    shown = os.path.basename(str(value)) if kind == "image" else value
    return {"query": f"like {kind} {shown}", "example": {kind: value if kind != "image" else str(value)},
            "vector": np.asarray(vector, np.float32).round(7).tolist()}


def remove_watchlist(dataset, name):
    """Delete the watchlist ``name`` (its past alerts stay); raises ``KeyError`` naming the existing ones."""
    lists = list_watchlists(dataset)
    if name not in [w["name"] for w in lists]:
        raise KeyError(f"no watchlist {name!r}; watchlists: {[w['name'] for w in lists]}")
    lists = [w for w in lists if w["name"] != name]
    live_store(dataset).set(contract.LIVE_WATCHLISTS_KEY, lists)
    return lists


def list_watchlists(dataset):
    """The dataset's watchlists, as saved."""
    return list(live_store(dataset).get(contract.LIVE_WATCHLISTS_KEY) or [])


def list_alerts(dataset, watchlist=None, limit=None):
    """Alert records of the dataset (newest first), of one watchlist or all.

    Example::

        list_alerts(dataset, watchlist="red-blue", limit=10)
    """
    store = live_store(dataset)
    records = [store.get(key) for key in store.list_keys() if key.startswith(contract.LIVE_ALERT_PREFIX)]
    records = [r for r in records if r and (watchlist is None or r["watchlist"] == watchlist)]
    records.sort(key=lambda r: -r["alerted_at"])
    return records[:limit] if limit else records


class WatchlistScorer:
    """The watchlists' text vectors, refreshed when the saved list changes; scores new embeddings.

    Example::

        scorer = WatchlistScorer(matcher)
        scorer.refresh(list_watchlists(dataset))
        scorer.matches(crop_vectors)     # [(row, watchlist, cosine), ...] at or above each threshold
    """

    def __init__(self, matcher):
        from ..models.onnx import query_encoder

        self.matcher = matcher
        self.encoder = query_encoder(matcher)
        self.lists, self.saved, self.vectors, self.cuts = [], [], np.zeros((0, 0), np.float32), np.zeros(0)

    def refresh(self, lists):
        """Use ``lists`` (as saved); a query already embedded costs nothing, an example is its saved vector."""
        from ..search.gallery import text_vector

        if lists == self.lists:
            return
        self.lists = [dict(w) for w in lists]
        self.saved = [np.asarray(w["vector"], np.float32) if "vector" in w else text_vector(self.encoder, w["query"])
                      for w in lists]
        self.vectors = np.zeros((0, 0), np.float32)  # stacked at the crops' width by matches()
        self.cuts = np.asarray([w["threshold"] if w["threshold_type"] == "cosine"
                                else self.matcher.cosine_for_probability(w["threshold"]) for w in lists])

    def _stack(self, width):
        """The watchlists' vectors as one matrix; an example of another width (another matcher) never matches."""
        if self.vectors.shape == (len(self.saved), width):
            return self.vectors
        for w, v in zip(self.lists, self.saved):
            if len(v) != width:
                logger.warning("watchlist %r: its example vector has %d values, this job's matcher %d: it was made "
                               "with another matcher and is skipped", w["name"], len(v), width)
        self.vectors = np.stack([v if len(v) == width else np.zeros(width, np.float32) for v in self.saved])
        self.cuts = np.where([len(v) == width for v in self.saved], self.cuts, np.inf)
        return self.vectors

    def matches(self, vectors):
        """``[(row in vectors, watchlist, cosine)]`` of every embedding at or above a watchlist's threshold."""
        if not self.lists or not len(vectors):
            return []
        vectors = np.asarray(vectors, np.float32)
        cosine = vectors @ self._stack(vectors.shape[1]).T
        rows, cols = np.nonzero(cosine >= self.cuts[None, :])
        return [(int(r), self.lists[c], float(cosine[r, c])) for r, c in zip(rows, cols)]

    def probability(self, cosine, watchlist=None):
        """SigLIP's probability of a text watchlist's cosine; None for an example (image to image)."""
        if watchlist is not None and "vector" in watchlist:
            return None
        p = self.matcher.probability(cosine)
        return float(p) if p is not None else None


class WebhookSender:
    """POSTs alert records as JSON to ``url`` from a background thread; ``send`` never blocks.

    A full queue (``WEBHOOK_QUEUE`` records waiting: the endpoint is slow or
    down) drops the record and counts it; each request gets
    ``WEBHOOK_TIMEOUT_S``. The URL is never logged in full (it may hold a token).

    Example::

        hook = WebhookSender("http://127.0.0.1:8080/alerts")
        hook.send({"watchlist": "red-blue", "track_id": 7})
        hook.close()          # hook.counts: {"sent": 1, "failed": 0, "dropped": 0}
    """

    def __init__(self, url, timeout=defaults.WEBHOOK_TIMEOUT_S, queue_size=defaults.WEBHOOK_QUEUE):
        from .source import redact

        if not str(url).startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must start with http:// or https://, got {redact(url)!r}")
        self.url, self.shown, self.timeout = str(url), redact(url), float(timeout)
        self.pending = queue.Queue(maxsize=int(queue_size))
        self.counts = {"sent": 0, "failed": 0, "dropped": 0}
        self.thread = threading.Thread(target=self._run, name="person-finder-webhook", daemon=True)
        self.thread.start()

    def send(self, record):
        try:
            self.pending.put_nowait(record)
        except queue.Full:
            self.counts["dropped"] += 1
            logger.warning("webhook %s is behind: alert dropped (%d dropped so far)", self.shown,
                           self.counts["dropped"])

    def _run(self):
        while True:
            record = self.pending.get()
            if record is None:
                return
            request = urllib.request.Request(self.url, data=json.dumps(record).encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    answer.read()
                self.counts["sent"] += 1
            except Exception as e:  # noqa: BLE001 - a webhook failure is counted and logged, never raised
                self.counts["failed"] += 1
                logger.warning("webhook %s failed: %s: %s", self.shown, type(e).__name__, e)

    def close(self, wait=defaults.WEBHOOK_TIMEOUT_S):
        """Send what is queued (for at most about ``wait`` seconds), then stop the thread."""
        deadline = time.monotonic() + float(wait)
        while not self.pending.empty() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            self.pending.put_nowait(None)
        except queue.Full:
            pass
        self.thread.join(timeout=max(0.0, deadline - time.monotonic()) + 0.1)


def save_crop(path, bgr_frame, box, height=defaults.ALERT_CROP_HEIGHT):
    """Save the ``[x1, y1, x2, y2]`` crop of a BGR frame as a JPEG ``height`` pixels tall; returns ``path``.

    Example::

        save_crop("/data/live/alerts/track_7.jpg", frame, [40, 10, 120, 230])
    """
    from PIL import Image

    x1, y1, x2, y2 = box
    crop = Image.fromarray(np.ascontiguousarray(bgr_frame[y1:y2, x1:x2, ::-1]))
    scale = height / max(crop.height, 1)
    crop = crop.resize((max(1, round(crop.width * scale)), height))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    crop.save(path, quality=90)
    return path
