"""Near-duplicate search arithmetic: chunked radius pairs, grouping with representatives, the histogram."""

import numpy as np
from person_finder.core.curation import dedupe


def test_radius_pairs_equals_dense_search_in_small_chunks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 16)).astype(np.float32)
    x[1500:1510] = x[:10] + 0.01 * rng.normal(size=(10, 16))  # planted near pairs (i, 1500 + i)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = np.arange(3000)
    groups = np.where(rows >= 1500, rows % 2, 0)  # pairs (i, 1500 + i) share a group only when i is even
    pairs, nn = dedupe.radius_pairs(x, 0.01, groups=groups, working_memory=1)  # forces ~40 chunks
    dense = 1 - x @ x.T
    np.fill_diagonal(dense, np.inf)
    dense[groups[:, None] != groups[None, :]] = np.inf
    i, j = np.nonzero(np.triu(dense <= 0.01, 1))
    assert sorted(map(tuple, pairs.tolist())) == sorted(zip(i.tolist(), j.tolist()))
    assert sorted(map(tuple, pairs.tolist())) == [(k, 1500 + k) for k in range(0, 10, 2)]
    np.testing.assert_allclose(nn, dense.min(axis=1), atol=1e-5)


def test_group_duplicates_keeps_the_best_and_stays_within_threshold():
    # 0-1-2 chain: 1 is best and claims both; 3-4 pair: 4 is best
    pairs = np.array([[0, 1], [1, 2], [3, 4]])
    quality = {0: (100, 1.0), 1: (200, 0.0), 2: (100, 5.0), 3: (50, 1.0), 4: (50, 2.0)}
    assert dedupe.group_duplicates(pairs, quality) == {1: 1, 0: 1, 2: 1, 4: 4, 3: 4}
    # a chain whose best is at one end: the far end forms its own group with its neighbour
    pairs = np.array([[0, 1], [1, 2], [2, 3]])
    quality = {0: (9, 0), 1: (1, 0), 2: (2, 0), 3: (3, 0)}
    assert dedupe.group_duplicates(pairs, quality) == {0: 0, 1: 0, 3: 3, 2: 3}


def test_histogram_counts_and_threshold_marker():
    h = dedupe.distance_histogram(np.array([0.001, 0.002, 0.35, 0.9, np.inf]), 0.05, max_distance=0.5, bins=5)
    assert h["counts"] == [2, 0, 0, 1, 0] and h["over_max"] == 1 and h["at_or_under_threshold"] == 2
    assert "<- threshold" in dedupe.histogram_text(h).splitlines()[0]
