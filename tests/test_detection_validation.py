"""Tests of skcrater.detection._validation: held-out rows, threshold and diameter rule."""

import numpy as np
import pandas as pd
import pytest

from skcrater.detection import match_craters
from skcrater.detection._validation import (
    MIN_CALIBRATION_MATCHES,
    best_f1_threshold,
    fit_diameter_calibration,
    side_by_side,
    split_rows,
)


def catalogue(rows):
    return pd.DataFrame(rows, columns=["x", "y", "diameter"], dtype=float)


def test_split_rows_gives_each_crater_to_the_part_holding_its_centre():
    image = np.arange(100 * 30).reshape(100, 30)
    cat = catalogue([[5, 10, 8], [5, 79.4, 8], [5, 79.6, 8], [5, 99, 8]])
    (train, train_cat), (val, val_cat) = split_rows(image, cat, 0.2, window=16)
    np.testing.assert_array_equal(train, image[:80])
    np.testing.assert_array_equal(val, image[80:])
    assert train_cat["y"].tolist() == [10, 79.4]
    # rows of the validation part count from its first row
    np.testing.assert_allclose(val_cat["y"], [-0.4, 19])


@pytest.mark.parametrize(("rows", "fraction"), [(100, 0.1), (30, 0.4), (100, 0.0)])
def test_split_rows_refuses_parts_shorter_than_the_window(rows, fraction):
    assert split_rows(np.zeros((rows, 30)), catalogue([]), fraction, window=16) is None


def test_side_by_side_keeps_images_apart():
    a, b = catalogue([[1, 1, 5]]), catalogue([[1, 1, 5], [9, 2, 5]])
    pooled = side_by_side([a, b], widths=[10, 20], gap=50)
    assert pooled["x"].tolist() == [1, 61, 69]
    found = pooled.assign(score=1.0)
    result = match_craters(found, pooled)
    assert result.tp == 3 and result.fp == 0


def _detections(truth, intercept, slope, rng):
    """A detection per crater whose level and offset miss its diameter by a known rule."""
    offset = rng.uniform(-0.3, 0.3, len(truth))
    log_level = np.log(truth["diameter"].to_numpy()) - intercept - slope * offset
    return truth.assign(
        score=rng.uniform(0.5, 1, len(truth)), log_level=log_level, log_offset=offset
    )


def test_diameter_calibration_recovers_a_biased_rule():
    rng = np.random.default_rng(0)
    truth = catalogue(
        np.column_stack([np.arange(60) * 50.0, np.zeros(60), rng.uniform(16, 40, 60)])
    )
    found = _detections(truth, intercept=-0.2, slope=0.5, rng=rng)
    matches = pd.DataFrame({"detection": np.arange(60), "catalogue": np.arange(60), "scored": True})
    intercept, slope = fit_diameter_calibration(found, truth, matches)
    assert intercept == pytest.approx(-0.2, abs=1e-3) and slope == pytest.approx(0.5, abs=1e-3)


def test_diameter_calibration_needs_enough_matches():
    rng = np.random.default_rng(0)
    n = MIN_CALIBRATION_MATCHES - 1
    truth = catalogue(np.column_stack([np.arange(n) * 50.0, np.zeros(n), np.full(n, 20.0)]))
    found = _detections(truth, intercept=0.3, slope=0.0, rng=rng)
    matches = pd.DataFrame({"detection": np.arange(n), "catalogue": np.arange(n), "scored": True})
    assert fit_diameter_calibration(found, truth, matches) == (0.0, 1.0)


def test_best_f1_threshold_is_the_score_of_the_best_cut():
    truth = catalogue([[0, 0, 20], [100, 0, 20], [200, 0, 20]])
    # two hits, then a false detection, then the third hit, then two false ones
    found = pd.DataFrame(
        {
            "x": [0, 100, 500, 200, 700, 900],
            "y": 0.0,
            "diameter": 20.0,
            "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        }
    )
    result = match_craters(found, truth)
    # keeping >= 0.6: 3 hits, 1 false (F1 0.857) beats >= 0.8 (F1 0.8)
    assert best_f1_threshold(result, default=0.5) == pytest.approx(0.6)
    empty = match_craters(found.iloc[:0], truth)
    assert best_f1_threshold(empty, default=0.5) == 0.5
