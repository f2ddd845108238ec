"""Tests of skcrater.detection._peaks: peaks, scale refinement and suppression."""

import numpy as np
import pytest

from skcrater.detection._peaks import map_peaks, refine_log_scale, suppress_overlaps


def test_map_peaks_finds_separate_maxima_above_threshold():
    scores = np.zeros((20, 20), dtype=np.float32)
    scores[5, 5], scores[5, 6], scores[15, 12], scores[2, 18] = 0.9, 0.8, 0.7, 0.3
    rows, cols, values = map_peaks(scores, threshold=0.5, min_distance=2)
    found = zip(rows.tolist(), cols.tolist(), values.astype(float).round(2).tolist(), strict=True)
    assert sorted(found) == [
        (5, 5, 0.9),
        (15, 12, 0.7),
    ]
    assert len(map_peaks(np.zeros((0, 0)), threshold=0.5, min_distance=1)[0]) == 0


def test_map_peaks_keeps_a_peak_equal_to_the_threshold():
    scores = np.zeros((9, 9), dtype=np.float32)
    scores[4, 4] = 0.7
    threshold = float(scores[4, 4])  # a threshold taken from a score, as "auto" does
    assert len(map_peaks(scores, threshold=threshold, min_distance=1)[0]) == 1
    # compared in the map's own precision: the next float32 up drops it
    above = float(np.nextafter(scores[4, 4], np.float32(1)))
    assert len(map_peaks(scores, threshold=above, min_distance=1)[0]) == 0


def test_refine_finds_the_vertex_of_a_parabola_and_clips_it():
    logs = np.log([[2.0, 1.0, 0.5]] * 3)

    # scores of a parabola in log scale peaking at log(0.8)
    def parabola(t):
        return 1 - (t - np.log(0.8)) ** 2

    values = parabola(logs)
    values[1] = [0.1, 0.5, 0.7]  # its vertex lies beyond the coarser level: clipped there
    values[2] = [0.6, 0.5, 0.6]  # opens upwards: keeps the peak's own level
    refined = refine_log_scale(logs, values)
    np.testing.assert_allclose(refined, [np.log(0.8), np.log(0.5), np.log(1.0)])


def test_refine_keeps_the_level_when_a_neighbour_is_missing():
    logs = np.log([[np.nan, 1.0, 0.5]])
    logs[0, 0] = np.nan
    assert refine_log_scale(logs, np.array([[np.nan, 0.9, 0.5]]))[0] == 0.0


def test_suppression_keeps_the_best_of_overlapping_detections():
    x = np.array([100.0, 104.0, 160.0, 100.0])
    y = np.array([100.0, 100.0, 100.0, 100.0])
    d = np.array([20.0, 22.0, 20.0, 80.0])
    score = np.array([0.8, 0.9, 0.7, 0.95])
    keep = suppress_overlaps(x, y, d, score)
    # 104 beats 100 (4 px apart, same size); 160 is far; the 80 px crater
    # around them is 4x larger, so it suppresses neither
    assert keep.tolist() == [False, True, True, True]


def test_suppression_breaks_ties_by_row_order():
    keep = suppress_overlaps(
        np.array([0.0, 1.0]), np.zeros(2), np.full(2, 10.0), np.array([0.5, 0.5])
    )
    assert keep.tolist() == [True, False]


def _all_pairs_suppression(x, y, d, score, overlap=0.5, ratio=2.0):
    """The definition, pair by pair."""
    keep = np.ones(len(x), dtype=bool)
    for i in range(len(x)):
        for j in range(len(x)):
            if i == j:
                continue
            big, small = max(d[i], d[j]), min(d[i], d[j])
            close = np.hypot(x[i] - x[j], y[i] - y[j]) <= overlap * big and big <= ratio * small
            beats = score[j] > score[i] or (score[j] == score[i] and j < i)
            keep[i] &= not (close and beats)
    return keep


@pytest.mark.parametrize("seed", range(3))
def test_suppression_equals_its_definition_across_sizes(seed):
    rng = np.random.default_rng(seed)
    n = 300
    x, y = rng.uniform(0, 400, n), rng.uniform(0, 400, n)
    # sizes from 4 to 256 px, some exactly twice another (the ratio's edge)
    d = 2.0 ** rng.integers(2, 9, n) * rng.choice([1.0, 1.0, 1.3, 1.9], n)
    score = rng.choice([0.5, 0.6, 0.7, 0.8, 0.9], n)  # ties too
    keep = suppress_overlaps(x, y, d, score)
    np.testing.assert_array_equal(keep, _all_pairs_suppression(x, y, d, score))
