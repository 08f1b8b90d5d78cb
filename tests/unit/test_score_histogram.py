"""The panel's score histogram and its threshold marker."""

from person_finder.core.search import panel_data


def test_score_histogram_marks_threshold():
    hist = panel_data.score_histogram([0.1, 0.2, 0.3, 0.4], threshold=0.25, bins=3)
    assert hist["above"] == 2 and hist["total"] == 4 and sum(hist["counts"]) == 4
    assert hist["edges"][0] <= 0.1 and hist["edges"][-1] >= 0.4
    empty = panel_data.score_histogram([], threshold=0.1)
    assert empty["above"] == 0 and empty["edges"][0] < 0.1 < empty["edges"][-1]
