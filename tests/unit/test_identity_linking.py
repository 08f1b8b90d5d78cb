"""Linking tracks into identities: who joins, the cannot-link rule, confidences, bad input, scale of memory."""

import numpy as np
import pytest

from person_finder.core.identities.linking import co_visible_pairs, link_tracks


def _people(n_people, tracks_each, dim=32, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_people, dim))
    truth = np.repeat(np.arange(n_people), tracks_each)
    vectors = centres[truth] + noise * rng.standard_normal((len(truth), dim))
    return vectors, truth


def _pairwise(identity, truth):
    same_pred = identity[:, None] == identity[None, :]
    same_true = truth[:, None] == truth[None, :]
    off = ~np.eye(len(truth), dtype=bool)
    tp = (same_pred & same_true & off).sum()
    return tp / max((same_pred & off).sum(), 1), tp / max((same_true & off).sum(), 1)


def test_tracks_of_one_person_join_and_different_people_stay_apart():
    vectors, truth = _people(12, 5)
    identity, confidence = link_tracks(vectors, threshold=0.6)
    precision, recall = _pairwise(identity, truth)
    assert precision == 1.0 and recall == 1.0
    assert identity[0] == 0 and sorted(set(identity)) == list(range(12))  # numbered by first track
    assert confidence.min() > 0.5


def test_two_tracks_seen_in_one_frame_are_never_one_identity():
    vectors, _ = _people(1, 4, noise=0.05)  # four near-identical tracks
    pairs = co_visible_pairs(["cam1", "cam1", "cam2", "cam2"], [[1, 2, 3], [3, 4], [1], [2]])
    assert pairs == {(0, 1)}  # cam2's tracks never share a frame; other videos never conflict
    identity, _ = link_tracks(vectors, cannot_link=pairs, threshold=0.6)
    assert identity[0] != identity[1]
    assert len(set(identity)) == 2  # the other two join one of them


def test_a_chain_of_conflicts_is_respected_after_merges():
    vectors, _ = _people(1, 3, noise=0.05)
    identity, _ = link_tracks(vectors, cannot_link={(0, 2)}, threshold=0.6)
    assert identity[0] != identity[2]  # 1 may join either, but never brings 0 and 2 together


def test_overlapping_spans_without_a_common_frame_may_be_one_person():
    assert co_visible_pairs(["v", "v"], [[1, 5], [2, 3, 4]]) == set()  # re-entry between sightings


def test_a_lonely_track_is_its_own_identity_with_a_confidence():
    vectors, truth = _people(3, 1, seed=2)
    identity, confidence = link_tracks(vectors, threshold=0.9)
    assert list(identity) == [0, 1, 2]
    assert np.all((confidence >= 0) & (confidence <= 1))
    identity, confidence = link_tracks(vectors[:1])
    assert list(identity) == [0] and confidence.shape == (1,)
    assert link_tracks(np.zeros((0, 8)))[0].shape == (0,)


def test_ambiguous_tracks_get_lower_confidence_than_clear_ones():
    vectors, truth = _people(6, 4, noise=0.2, seed=3)
    between = (vectors[0] + vectors[4]) / 2  # halfway between person 0 and person 1
    identity, confidence = link_tracks(np.vstack([vectors, between]), threshold=0.5)
    assert confidence[-1] < np.median(confidence[:-1])


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 4)), "finite and non-zero"),
    (np.full((2, 4), np.nan), "finite and non-zero"),
    (np.ones(4), "2-d array"),
])
def test_bad_vectors_are_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        link_tracks(bad)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"cosine similarity in \[-1, 1\]"):
        link_tracks(np.ones((2, 4)), threshold=2)
    with pytest.raises(ValueError, match="neighbors must be >= 1"):
        link_tracks(np.ones((2, 4)), neighbors=0)
