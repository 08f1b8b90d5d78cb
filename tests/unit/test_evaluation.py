"""Rank-k, mAP, mINP and calibration on hand-computed cases."""

import numpy as np
import pytest
from person_finder.core.training.evaluation import (
    calibrate_threshold,
    precision_recall_at,
    retrieval_metrics,
)

GALLERY = [7, 3, 7]  # two images of person 7, one of person 3


def test_metrics_with_several_gallery_images_per_identity_and_a_query_without_match():
    scores = np.array([
        [0.2, 0.9, 0.5],   # person 7: ranking 3, 7, 7 -> matches at ranks 2 and 3
        [0.1, 0.2, 0.3],   # person 3: ranking 7, 3, 7 -> match at rank 2
        [0.9, 0.8, 0.7],   # person 9: not in the gallery -> not scored, counted
    ])
    m = retrieval_metrics(scores, [7, 3, 9], GALLERY, ranks=(1, 2, 5))
    assert m["num_queries"] == 2 and m["num_queries_without_match"] == 1
    assert m["rank1"] == 0.0 and m["rank2"] == 1.0 and m["rank5"] == 1.0
    ap7, ap3 = (1 / 2 + 2 / 3) / 2, 1 / 2
    assert m["mAP"] == pytest.approx((ap7 + ap3) / 2)
    assert m["mINP"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_perfect_ranking_scores_one_and_reversed_ranking_scores_low():
    perfect = retrieval_metrics(np.array([[0.9, 0.1, 0.8], [0.1, 0.9, 0.2]]), [7, 3], GALLERY)
    assert perfect["rank1"] == perfect["mAP"] == perfect["mINP"] == 1.0
    worst = retrieval_metrics(np.array([[0.1, 0.9, 0.2]]), [7], GALLERY)
    assert worst["rank1"] == 0.0
    assert worst["mAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert worst["mINP"] == pytest.approx(2 / 3)


def test_ties_are_broken_by_gallery_order_and_shape_is_checked():
    assert retrieval_metrics(np.zeros((1, 3)), [3], GALLERY)["rank1"] == 0.0  # person 3 is second
    with pytest.raises(ValueError, match="shape"):
        retrieval_metrics(np.zeros((2, 3)), [7], GALLERY)


def test_no_query_with_a_match_gives_zeros_not_nan():
    m = retrieval_metrics(np.ones((1, 3)), [5], GALLERY)
    assert m["num_queries"] == 0 and m["mAP"] == 0.0 and m["rank1"] == 0.0


def test_calibration_picks_the_lowest_score_reaching_the_target_precision():
    scores, q, g = [[0.9, 0.8, 0.7, 0.6, 0.5]], [1], [1, 1, 2, 1, 3]  # labels 1 1 0 1 0
    strict = calibrate_threshold(scores, q, g, target_precision=0.9)
    assert strict["threshold"] == pytest.approx(0.8) and strict["reached"]
    assert strict["precision"] == 1.0 and strict["recall"] == pytest.approx(2 / 3)
    loose = calibrate_threshold(scores, q, g, target_precision=0.75)
    assert loose["threshold"] == pytest.approx(0.6) and loose["recall"] == 1.0
    assert precision_recall_at(scores, q, g, 0.6) == {"precision": 0.75, "recall": 1.0}
    assert precision_recall_at(scores, q, g, 0.95) == {"precision": 1.0, "recall": 0.0}


def test_unreachable_precision_is_reported_not_hidden():
    out = calibrate_threshold([[0.9, 0.8]], [1], [2, 1], target_precision=0.99)
    assert not out["reached"] and out["precision"] < 0.99
    with pytest.raises(ValueError, match="matching"):
        calibrate_threshold([[0.9]], [1], [2])
