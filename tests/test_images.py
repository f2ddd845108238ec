"""Tile validation and the pixel-range rule of skcrater._images (no network needed)."""

import warnings

import numpy as np
import pytest

from skcrater._images import (
    RANGE_FACTOR,
    check_grey_levels,
    check_pixels,
    check_prediction_range,
    check_same_range,
    infer_input_scale,
    pixel_range,
)

TILES = np.random.default_rng(0).integers(0, 256, size=(6, 16), dtype=np.uint8)


def _range(dtype, low, high):
    return {"dtype": dtype, "min": float(low), "max": float(high)}


# ------------------------------------------------------------- what a pixel is
def test_boolean_tiles_are_refused():
    # True used to become the grey level 1 of 255, without a word
    with pytest.raises(TypeError, match="got X of dtype bool"):
        check_pixels(TILES > 128)
    with pytest.raises(TypeError, match="got X_unlabeled of dtype bool"):
        check_pixels((TILES > 128).tolist(), input_name="X_unlabeled")


@pytest.mark.parametrize(
    "value, kind",
    [(True, "bool"), (np.True_, "bool"), ("12", "str"), (b"12", "bytes")],
)
def test_object_tiles_holding_booleans_or_strings_are_refused(value, kind):
    # float(True) and float("12") succeed: the look must be made before conversion
    X = TILES.astype(object)
    X[2, 3] = value
    with pytest.raises(TypeError, match=f"dtype object holding {kind}"):
        check_pixels(X)


def test_object_tiles_of_numbers_are_read_as_floats():
    # scikit-learn's check_dtype_object: object arrays of numbers are numeric data
    X = TILES.astype(object)
    X[0, 0] = 7.5
    out = check_pixels(X)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[1:], TILES[1:])
    X[0, 0] = {"a": 1}
    with pytest.raises(TypeError, match="argument must be .* string.* number"):
        check_pixels(X)


@pytest.mark.parametrize("X", [TILES * 1j, (TILES * 1j).tolist()])
def test_complex_tiles_are_refused_naming_the_argument(X):
    with pytest.raises(ValueError, match="got complex X_val: Complex data not supported"):
        check_pixels(X, input_name="X_val")


# ---------------------------------------------------------------- the scale
@pytest.mark.parametrize(
    "X, scale",
    [
        (TILES, 255.0),
        (TILES.astype(np.uint16), 255.0),
        (TILES / 255.0, 1.0),
        (TILES.astype(np.float32), 255.0),
        (np.zeros((2, 4)), 1.0),
        (np.ones((2, 4), dtype=np.uint8), 255.0),
    ],
)
def test_input_scale_follows_the_kind_and_range(X, scale):
    assert infer_input_scale(X) == scale


def test_pixel_range_of_selected_rows_reads_them_in_chunks():
    X = np.arange(10_000 * 4, dtype=np.float32).reshape(10_000, 4)
    rows = np.zeros(10_000, dtype=bool)
    rows[[3, 5000, 9001]] = True
    assert pixel_range(X, rows=rows) == _range("float32", 12, 9001 * 4 + 3)
    assert pixel_range(X, rows=np.zeros(10_000, dtype=bool)) is None


@pytest.mark.parametrize(
    "found",
    [_range("uint16", 0, 4095), _range("int16", -5, 200), _range("int64", 0, 256)],
)
def test_integer_tiles_outside_8_bits_are_refused(found):
    with pytest.raises(ValueError, match=r"8-bit grey levels \(0..255\)"):
        check_grey_levels(found)


def test_float_tiles_outside_grey_levels_warn():
    with pytest.warns(UserWarning, match="outside both"):
        check_grey_levels(_range("float64", -2.5, 3.0))
    check_grey_levels(_range("uint16", 0, 255))  # 16-bit storage of 8-bit levels
    check_grey_levels(_range("float32", 0, 255))


# ---------------------------------------------------- the same-range rule
U8 = _range("uint8", 0, 255)
UNIT = _range("float64", 0, 1)


@pytest.mark.parametrize(
    "reference, new",
    [
        (U8, _range("uint8", 0, 40)),  # a dark image
        (_range("uint8", 0, 40), U8),  # a bright one
        (U8, _range("float64", 0, 255)),  # the same grey levels as floats
        (U8, _range("float64", 0, 0)),  # black tiles are black on any scale
        (UNIT, _range("float32", 0, 0.3)),
        (UNIT, _range("uint8", 0, 1)),  # 0/1 integers read as such either way
        (UNIT, _range("float64", 0, 1.05)),  # rounding beyond 1
        (_range("float64", -3, 3), _range("float64", 0, 1)),  # standardised data
        (_range("uint8", 0, 9), UNIT),  # too dark to tell
    ],
)
def test_tiles_read_the_same_way_are_accepted(reference, new):
    check_same_range(reference, new)


@pytest.mark.parametrize(
    "reference, new, fix",
    [
        (U8, UNIT, r"X \* 255"),  # fitted on uint8, given X / 255
        (UNIT, U8, "X / 255.0"),  # fitted on X / 255, given uint8
        (UNIT, _range("float64", 0, 255), "X / 255.0"),
        (_range("uint8", 0, 60), _range("float32", 0.01, 0.2), r"X \* 255"),
    ],
)
def test_tiles_of_another_range_are_refused(reference, new, fix):
    with pytest.raises(ValueError, match=f"differ by a factor of .*{fix}"):
        check_same_range(reference, new)


def test_the_factor_is_the_boundary():
    check_same_range(_range("uint8", 0, RANGE_FACTOR - 1), UNIT)
    with pytest.raises(ValueError, match="factor of 10"):
        check_same_range(_range("uint8", 0, RANGE_FACTOR), UNIT)


def test_prediction_warns_beyond_both_ranges():
    with pytest.warns(UserWarning, match="beyond the range"):
        check_prediction_range(U8, _range("float64", -128, 127), input_scale=255.0)
    with pytest.warns(UserWarning, match="beyond the range"):
        check_prediction_range(UNIT, _range("float64", 0, 3), input_scale=1.0)
    with pytest.raises(ValueError, match="8-bit"):
        check_prediction_range(U8, _range("uint16", 0, 4095), input_scale=255.0)
    # within the training range, outside the nominal one (fitted on such data): no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        standardised = _range("float64", -3, 3)
        check_prediction_range(standardised, _range("float64", -3.5, 2), input_scale=255.0)
        check_prediction_range(U8, _range("float64", 0.5, 256), input_scale=255.0)
