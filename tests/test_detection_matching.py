"""Tests of skcrater.detection.match_craters: one-to-one matching and its scores."""

import numpy as np
import pandas as pd
import pytest

from skcrater.detection import match_craters


def table(rows, score=False):
    columns = ["x", "y", "diameter", "score"] if score else ["x", "y", "diameter"]
    return pd.DataFrame(np.asarray(rows, dtype=float).reshape(-1, len(columns)), columns=columns)


TRUTH = table([[100, 100, 20], [200, 200, 30], [300, 300, 24]])


def test_perfect_detections_score_one():
    found = TRUTH.assign(score=[0.9, 0.8, 0.7])
    result = match_craters(found, TRUTH, min_diameter=16, max_diameter=40)
    assert (result.tp, result.fp, result.fn) == (3, 0, 0)
    assert result.precision == result.recall == result.f1 == 1.0
    assert result.average_precision == pytest.approx(1.0)
    assert list(result.detection_status) == ["tp"] * 3


def test_matching_is_one_to_one_and_highest_score_first():
    found = table([[101, 100, 20, 0.6], [100, 101, 20, 0.9]], score=True)
    result = match_craters(found, TRUTH.iloc[:1], min_diameter=16, max_diameter=40)
    assert (result.tp, result.fp, result.fn) == (1, 1, 0)
    assert list(result.detection_status) == ["fp", "tp"]
    assert result.matches["detection"].tolist() == [1]


def test_each_detection_takes_the_closest_free_crater():
    truth = table([[100, 100, 40], [110, 100, 40]])
    found = table([[108, 100, 40, 0.9], [101, 100, 40, 0.5]], score=True)
    result = match_craters(found, truth)
    pairs = result.matches[["detection", "catalogue"]].to_numpy().tolist()
    assert pairs == [[0, 1], [1, 0]]


@pytest.mark.parametrize(
    ("dx", "diameter", "kwargs", "hit"),
    [
        (10.0, 20.0, {}, True),  # distance exactly 0.5 of the catalogued diameter
        (10.5, 20.0, {}, False),
        (0.0, 40.0, {}, True),  # ratio exactly 2
        (0.0, 41.0, {}, False),
        (0.0, 10.0, {}, True),
        (0.0, 9.5, {}, False),
        (10.5, 20.0, {"max_distance": 0.6}, True),
        (0.0, 41.0, {"diameter_ratio": 2.1}, True),
    ],
)
def test_the_criterion_is_the_documented_one(dx, diameter, kwargs, hit):
    found = table([[100 + dx, 100, diameter, 1.0]], score=True)
    result = match_craters(found, TRUTH.iloc[:1], **kwargs)
    assert (result.tp == 1) is hit


def test_craters_just_outside_the_range_are_dont_care():
    truth = table([[100, 100, 14], [200, 200, 45], [300, 300, 8]])
    found = table([[100, 100, 14, 0.9], [400, 400, 14, 0.8], [500, 500, 8, 0.7]], score=True)
    result = match_craters(found, truth, min_diameter=16, max_diameter=40)
    # 14 and 45 px are within the 1.25 margin of 16-40 px, 8 px is far outside
    assert (result.tp, result.fp, result.fn) == (0, 0, 0)
    assert list(result.catalogue_status) == ["ignored"] * 3
    assert list(result.detection_status) == ["ignored"] * 3
    strict = match_craters(found, truth, min_diameter=16, max_diameter=40, margin=1.0)
    assert strict.fp == 0 and strict.fn == 0  # 14 px is now far outside: left out, not false


def test_a_detection_that_finds_a_crater_outside_the_range_is_not_false():
    truth = table([[100, 100, 60]])
    found = table([[100, 100, 38, 0.9]], score=True)
    result = match_craters(found, truth, min_diameter=16, max_diameter=40)
    assert (result.tp, result.fp, result.fn) == (0, 0, 0)
    assert not result.matches["scored"].any()


def test_empty_catalogue_and_empty_detections():
    found = TRUTH.assign(score=[0.9, 0.8, 0.7])
    none = match_craters(found, None, min_diameter=16)
    assert (none.tp, none.fp, none.fn, none.recall, none.f1) == (0, 3, 0, 0.0, 0.0)
    empty = table([], score=True)
    missed = match_craters(empty, TRUTH)
    assert (missed.tp, missed.fp, missed.fn) == (0, 0, 3)
    assert missed.average_precision == 0.0 and len(missed.thresholds) == 0


def test_precision_recall_curve_and_average_precision():
    # hit, miss, hit in decreasing score; one catalogued crater never found
    truth = table([[100, 100, 20], [200, 200, 20], [300, 300, 20]])
    found = table([[100, 100, 20, 0.9], [500, 500, 20, 0.8], [200, 200, 20, 0.7]], score=True)
    result = match_craters(found, truth)
    np.testing.assert_allclose(result.thresholds, [0.9, 0.8, 0.7])
    np.testing.assert_allclose(result.precision_curve, [1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(result.recall_curve, [1 / 3, 1 / 3, 2 / 3])
    assert result.average_precision == pytest.approx(1 / 3 + 2 / 9)


def test_ties_in_score_give_one_curve_point():
    found = TRUTH.assign(score=[0.5, 0.5, 0.2])
    result = match_craters(found, TRUTH)
    np.testing.assert_allclose(result.thresholds, [0.5, 0.2])
    np.testing.assert_allclose(result.recall_curve, [2 / 3, 1.0])


def test_matches_report_distance_and_diameter_error():
    found = table([[103, 104, 25, 1.0]], score=True)
    match = match_craters(found, TRUTH.iloc[:1]).matches.iloc[0]
    assert match["distance"] == pytest.approx(5.0)
    assert match["diameter_error"] == pytest.approx(0.25)


def test_arrays_are_read_as_x_y_diameter_score():
    result = match_craters(np.array([[100, 100, 20, 1.0]]), np.array([[100, 100, 20]]))
    assert result.tp == 1


@pytest.mark.parametrize(
    ("detections", "kwargs", "message"),
    [
        (table([[1, 1, 20]]), {}, "'score' column"),
        (table([[1, 1, -2, 1.0]], score=True), {}, "non-positive diameter"),
        (table([[np.nan, 1, 2, 1.0]], score=True), {}, "NaN"),
        (TRUTH.assign(score=1.0, colour=1), {}, "unexpected \\['colour'\\]"),
        (TRUTH.assign(score=1.0), {"min_diameter": 50, "max_diameter": 40}, "larger than"),
        (TRUTH.assign(score=1.0), {"margin": 0.5}, "margin must be"),
        (TRUTH.assign(score=1.0), {"min_diameter": -1}, "min_diameter must be"),
        (TRUTH.assign(score=1.0), {"diameter_ratio": 0.9}, "diameter_ratio must be"),
    ],
)
def test_bad_tables_and_parameters_are_refused(detections, kwargs, message):
    with pytest.raises(ValueError, match=message):
        match_craters(detections, TRUTH, **kwargs)


def test_a_catalogue_without_a_diameter_column_is_refused():
    with pytest.raises(ValueError, match="missing \\['diameter'\\]"):
        match_craters(TRUTH.assign(score=1.0), TRUTH[["x", "y"]])


def test_catalogue_centres_may_reach_half_a_pixel_beyond_the_pixel_area():
    from skcrater.detection import check_catalogue

    # the real HRSC catalogue lists x = 1699.8 in a 1700-column image
    edge = check_catalogue([[1699.8, 10.0, 5.0], [-0.9, 0.0, 5.0]], image_shape=(20, 1700))
    assert len(edge) == 2
    with pytest.raises(ValueError, match="outside the 20x1700 image"):
        check_catalogue([[1700.2, 10.0, 5.0]], image_shape=(20, 1700))
    with pytest.raises(ValueError, match="outside"):
        check_catalogue([[10.0, -1.2, 5.0]], image_shape=(20, 1700))
