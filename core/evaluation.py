"""Text-to-person retrieval metrics by identity, and threshold calibration.

The standard protocol: each query is a text describing a person of the
query split; the gallery is the images of the gallery split; a gallery
image matches a query when their person ids agree. Rank-k (CMC), mAP and
mINP are averaged over the queries that have at least one match in the
gallery (queries without one are counted and reported, as in Market-1501).

Example::

    from person_finder.core.evaluation import retrieval_metrics
    scores = text_emb @ image_emb.T                    # queries x gallery
    retrieval_metrics(scores, query_ids, gallery_ids)  # {'rank1': .., 'mAP': .., 'mINP': .., ...}
"""

from __future__ import annotations

import numpy as np

from . import defaults


def retrieval_metrics(scores, query_ids, gallery_ids, ranks=defaults.EVAL_RANKS):
    """Rank-k, mAP and mINP of a (queries x gallery) score matrix, higher = more similar.

    Returns a dict with ``rank{k}`` for each k in ``ranks``, ``mAP``,
    ``mINP``, ``num_queries`` (scored) and ``num_queries_without_match``.
    Ties are broken by gallery order.

    Example::

        retrieval_metrics(np.array([[0.9, 0.1, 0.5]]), [7], [7, 3, 7])
        # rank1 = 1.0, mAP = (1/1 + 2/3) / 2, mINP = 2/3
    """
    scores = np.asarray(scores, dtype=np.float64)
    query_ids, gallery_ids = np.asarray(query_ids), np.asarray(gallery_ids)
    if scores.shape != (len(query_ids), len(gallery_ids)):
        raise ValueError(f"scores has shape {scores.shape}, expected ({len(query_ids)}, {len(gallery_ids)})")
    hits = {k: [] for k in ranks}
    aps, inps, skipped = [], [], 0
    for row, qid in zip(scores, query_ids):
        matches = gallery_ids[np.argsort(-row, kind="stable")] == qid
        positions = np.flatnonzero(matches)  # 0-based ranks of the true matches
        if positions.size == 0:
            skipped += 1
            continue
        for k in ranks:
            hits[k].append(positions[0] < k)
        aps.append(np.mean(np.arange(1, positions.size + 1) / (positions + 1)))
        inps.append(positions.size / (positions[-1] + 1))
    mean = lambda values: float(np.mean(values)) if values else 0.0  # noqa: E731
    out = {f"rank{k}": mean(hits[k]) for k in ranks}
    out.update(mAP=mean(aps), mINP=mean(inps), num_queries=len(aps), num_queries_without_match=skipped)
    return out


def text_to_image_scores(matcher, query_texts, gallery_images):
    """Cosine similarity of each query text to each gallery image (queries x gallery)."""
    texts = matcher.embed_texts(list(query_texts))
    images = matcher.embed_images(list(gallery_images))
    return texts @ images.T
