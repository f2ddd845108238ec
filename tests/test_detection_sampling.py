"""Tests of skcrater.detection._sampling: pyramid coordinates and training windows."""

import numpy as np
import pandas as pd
import pytest

from skcrater.detection._sampling import (
    ScaledImage,
    TrainingWindows,
    cut_windows,
    from_scaled,
    rescale,
    to_scaled,
)


def test_coordinates_round_trip_and_follow_skimage():
    xy = np.array([[0.0, 0.0], [10.5, 3.0]])
    np.testing.assert_allclose(from_scaled(to_scaled(xy, 0.4), 0.4), xy)
    # a bright pixel stays where to_scaled puts it
    image = np.zeros((64, 64), dtype=np.float32)
    image[40:44, 20:24] = 1.0  # centre (x, y) = (21.5, 41.5)
    small = rescale(image, 0.5)
    row, col = np.unravel_index(np.argmax(small), small.shape)
    np.testing.assert_allclose(to_scaled([21.5, 41.5], 0.5), [col, row], atol=0.5)


@pytest.mark.parametrize("scale", [1.0, 0.999, 0.5])
def test_bands_of_a_level_are_rows_of_the_whole_level(scale):
    image = np.random.default_rng(0).integers(0, 256, (50, 40), dtype=np.uint8)
    level = ScaledImage(image, scale, divisor=255)
    whole = level.array()
    assert whole.dtype == np.float32 and whole.shape == level.shape
    np.testing.assert_array_equal(np.concatenate([level.rows(0, 7), level.rows(7, None)]), whole)
    if scale == 1:  # the image itself, divided
        np.testing.assert_array_equal(whole, image.astype(np.float32) / np.float32(255))


def test_cut_windows_centres_tiles_and_drops_those_off_the_image():
    image = np.arange(100 * 80, dtype=np.float32).reshape(100, 80)
    tiles, kept = cut_windows(image, [[40.0, 50.0], [2.0, 50.0], [76.0, 95.0]], 9)
    assert kept.tolist() == [True, False, False]
    assert tiles.shape == (1, 9, 9) and tiles[0, 4, 4] == image[50, 40]


def _windows(catalogue, scale=1.0, shape=(200, 200), seed=0):
    return TrainingWindows(
        pd.DataFrame(catalogue, columns=["x", "y", "diameter"]),
        scale=scale,
        shape=shape,
        window=48,
        diameter_range=(16, 40),
        margin=1.25,
        rng=np.random.default_rng(seed),
    )


def test_positives_surround_craters_of_the_range_only():
    w = _windows([[100, 100, 20], [50, 50, 8], [150, 150, 90]])
    centres = w.positives(per_crater=50, max_offset=0.15)
    assert centres.shape == (50, 2)
    assert np.hypot(*(centres - [100, 100]).T).max() <= 0.15 * 20
    # at scale 0.4 the 90 px crater is 36 px: in range; the 20 px one (8 px) is not
    far = _windows([[100, 100, 20], [150, 150, 90]], scale=0.4).positives(10, 0.1)
    np.testing.assert_allclose(far.mean(axis=0), to_scaled([150, 150], 0.4), atol=2)


def test_the_rule_for_negatives():
    w = _windows([[100, 100, 20], [40, 160, 8], [150, 40, 100]])
    ok = w.clear(
        [
            [100, 111],  # 11 px from a 20 px crater: within 0.6 diameters
            [100, 113],  # 13 px: clear
            [40 + 20, 160],  # a small (8 px) crater 20 px away: inside the window
            [40 + 30, 160],  # 30 px away: outside the 48 px window
            [150, 40],  # centre of a crater larger than the range: allowed
        ]
    )
    assert ok.tolist() == [False, True, False, True, True]


def test_random_negatives_are_clear_and_inside():
    w = _windows([[100, 100, 20], [60, 60, 30]])
    centres = w.random_negatives(200)
    assert 0 < len(centres) <= 200
    assert w.clear(centres).all()
    assert (centres >= 23.5).all() and (centres <= 200 - 1 - 23.5).all()


def test_hard_negatives():
    w = _windows([[100, 100, 30], [100, 100, 120]])
    rims = w.rims_and_floors(per_crater=20)
    distance = np.hypot(*(rims - [100, 100]).T)
    assert len(rims) and (distance >= 0.1 * 120 - 1e-9).all()
    assert (distance <= 0.55 * 120 + 1e-9).all() and w.clear(rims).all()
    off = _windows([[100, 100, 30]]).off_centre(per_crater=20)
    distance = np.hypot(*(off - [100, 100]).T)
    assert len(off) == 20 and (distance >= 0.7 * 30 - 1e-9).all()


@pytest.mark.parametrize(("scale", "expected"), [(1.0, 1), (0.5, 0), (0.25, 0), (0.125, 1)])
def test_wrong_scale_windows_come_from_well_catalogued_craters(scale, expected):
    # an 80 px crater is 80 px at scale 1 (too large), 40 and 20 px at 0.5 and 0.25
    # (in range: positives), 10 px at 0.125 (too small, but well catalogued)
    w = _windows([[100, 100, 80]], scale=scale, shape=(400, 400))
    assert len(w.wrong_scale()) == expected
