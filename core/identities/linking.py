"""Link tracks into identities from their embeddings, never joining two people seen at once.

Pure numpy, no dataset: one unit vector per track in, one identity number
and one confidence per track out. Tracks are joined greedily from the most
similar pair down (each track's ``neighbors`` nearest tracks are the
candidate pairs, so memory grows with tracks x neighbors, not tracks^2); two
groups merge only when their mean vectors are at least ``threshold``
similar (average linkage) and no track of one is *cannot-linked* to a track
of the other (two tracks visible in the same frame of one video, two persons
of one image).

Example::

    from person_finder.core.identities.linking import co_visible_pairs, link_tracks
    pairs = co_visible_pairs(videos=["a", "a", "b"], frames=[[1, 2, 3], [3, 4], [1, 2]])
    identity, confidence = link_tracks(vectors, cannot_link=pairs, threshold=0.6)
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .. import defaults

_BLOCK = 512


def co_visible_pairs(videos, frames):
    """Pairs ``(i, j)`` of tracks of one video that are visible in at least one common frame.

    ``videos[i]`` names track ``i``'s video (or image); ``frames[i]`` lists the
    frame numbers it was seen in (``[1]`` for a person in an image).

    Example::

        co_visible_pairs(["v", "v"], [[1, 2], [2, 3]])   # {(0, 1)}
    """
    by_video = defaultdict(list)
    for i, video in enumerate(videos):
        seen = np.unique(np.asarray(frames[i], dtype=np.int64))
        if len(seen):
            by_video[video].append((int(seen[0]), int(seen[-1]), i, seen))
    pairs = set()
    for tracks in by_video.values():
        tracks.sort()
        open_tracks = []
        for first, last, i, seen in tracks:
            open_tracks = [t for t in open_tracks if t[1] >= first]
            for _, _, j, other in open_tracks:
                if np.intersect1d(seen, other, assume_unique=True).size:
                    pairs.add((min(i, j), max(i, j)))
            open_tracks.append((first, last, i, seen))
    return pairs


def _unit(vectors):
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"track vectors must be a 2-d array (tracks x dims), got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(np.isfinite(vectors)) or np.any(norms == 0):
        raise ValueError("track vectors must be finite and non-zero")
    return vectors / norms


def _candidate_pairs(unit, neighbors, threshold):
    """Each track's ``neighbors`` most similar tracks above ``threshold``: arrays i, j, similarity (i < j)."""
    n = len(unit)
    m = min(neighbors, n - 1)
    rows, cols, sims = [], [], []
    for start in range(0, n, _BLOCK):
        block = unit[start:start + _BLOCK] @ unit.T
        idx = np.arange(start, start + len(block))
        block[np.arange(len(block)), idx] = -np.inf
        top = np.argpartition(-block, m - 1, axis=1)[:, :m] if m < n - 1 else np.argsort(-block, axis=1)[:, :m]
        s = np.take_along_axis(block, top, axis=1)
        keep = s >= threshold
        rows.append(np.repeat(idx, m)[keep.ravel()])
        cols.append(top.ravel()[keep.ravel()])
        sims.append(s.ravel()[keep.ravel()])
    i, j, s = np.concatenate(rows), np.concatenate(cols), np.concatenate(sims)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((hi, lo))
    lo, hi, s = lo[order], hi[order], s[order]
    first = np.ones(len(lo), dtype=bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    lo, hi, s = lo[first], hi[first], s[first]
    order = np.argsort(-s, kind="stable")
    return lo[order], hi[order], s[order]


def link_tracks(vectors, cannot_link=(), threshold=defaults.IDENTITY_LINK_THRESHOLD,
                neighbors=defaults.IDENTITY_LINK_NEIGHBORS):
    """Identity number (0, 1, ... by first track) and confidence in [0, 1] for each track.

    ``vectors``: one embedding per track (rows); ``cannot_link``: pairs of
    track indices that are different people. A track's confidence compares
    its similarity to the rest of its identity (the mean of the others; the
    ``threshold`` for a track alone) with its similarity to the nearest other
    identity: 0.5 is a tie, 1.0 a clear case.

    Example::

        identity, confidence = link_tracks(vectors, cannot_link={(0, 1)}, threshold=0.6)
    """
    unit = _unit(vectors)
    n = len(unit)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if not -1.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
    if int(neighbors) < 1:
        raise ValueError(f"neighbors must be >= 1, got {neighbors}")
    forbidden = defaultdict(set)
    for i, j in cannot_link:
        forbidden[int(i)].add(int(j))
        forbidden[int(j)].add(int(i))

    parent = np.arange(n)
    members = {i: [i] for i in range(n)}
    sums = {i: unit[i].astype(np.float64) for i in range(n)}
    blocked = {i: set(forbidden[i]) for i in range(n)}

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n > 1:
        for i, j, _ in zip(*_candidate_pairs(unit, int(neighbors), float(threshold))):
            a, b = root(i), root(j)
            if a == b:
                continue
            if len(members[a]) < len(members[b]):
                a, b = b, a
            if blocked[a].intersection(members[b]):
                continue
            mean_a, mean_b = sums[a], sums[b]
            if mean_a @ mean_b / (np.linalg.norm(mean_a) * np.linalg.norm(mean_b)) < threshold:
                continue
            parent[b] = a
            members[a].extend(members.pop(b))
            blocked[a] |= blocked.pop(b)
            sums[a] = sums[a] + sums.pop(b)

    roots = np.array([root(i) for i in range(n)])
    _, first_index, identity = np.unique(roots, return_index=True, return_inverse=True)
    renumber = np.argsort(np.argsort(first_index))  # identities numbered by their first track
    identity = renumber[identity]
    return identity.astype(np.int64), _confidence(unit, identity, float(threshold))


def _confidence(unit, identity, threshold):
    count = np.bincount(identity)
    sums = np.zeros((len(count), unit.shape[1]), dtype=np.float64)
    np.add.at(sums, identity, unit)
    own_rest = sums[identity] - unit
    own_norm = np.linalg.norm(own_rest, axis=1)
    own = np.where(count[identity] > 1, np.einsum("ij,ij->i", unit, own_rest) / np.maximum(own_norm, 1e-12),
                   threshold)
    if len(count) == 1:
        return np.clip(0.5 + (own - threshold) / 2, 0.0, 1.0).astype(np.float32)
    centroids = (sums / np.linalg.norm(sums, axis=1, keepdims=True)).astype(np.float32)
    other = np.empty(len(unit), dtype=np.float32)
    for start in range(0, len(unit), _BLOCK):
        block = unit[start:start + _BLOCK] @ centroids.T
        block[np.arange(len(block)), identity[start:start + _BLOCK]] = -np.inf
        other[start:start + _BLOCK] = block.max(axis=1)
    return np.clip(0.5 + (own - other) / 2, 0.0, 1.0).astype(np.float32)
