"""Validation, reshaping and scaling of grayscale image tiles.

Every skcrater estimator goes through these helpers, so that a tile given as
a flat row of ``side * side`` pixels (the course format), as ``(h, w)`` or as
``(h, w, 1)`` is understood, checked and scaled the same way everywhere.

It also holds the pixel-range rule (see :func:`check_same_range`): how the
grey levels of tiles are read, and when two sets of tiles (training and new
tiles, labelled and unlabelled tiles) clearly come from different ranges.
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
from sklearn.utils.validation import check_array

__all__ = [
    "check_images",
    "check_pixels",
    "square_shape",
    "to_images",
    "infer_input_scale",
    "scale_images",
    "standardize_tiles",
    "pixel_range",
    "range_hull",
    "check_grey_levels",
    "check_same_range",
    "check_prediction_range",
    "PREPROCESSING_MODES",
    "RANGE_FACTOR",
]

#: Accepted values of the ``preprocessing`` parameter of the estimators.
PREPROCESSING_MODES = ("scale", "standardize", "local")

# Guards the division of a flat (constant) tile; far below any real contrast.
_STD_EPS = 1e-6

#: Integer tiles are 8-bit grey levels: 0..GREY_MAX.
GREY_MAX = 255

#: Two sets of tiles read on different scales (one as floats in [0, 1], the other
#: as 0..255 grey levels) whose largest values differ by this factor or more are
#: taken to come from different ranges. ``X`` and ``X / 255`` differ by 255; a
#: dark 0..255 image (max 40) and a [0, 1] one by 40; a factor of 10 leaves room
#: for dark or bright tiles of either range.
RANGE_FACTOR = 10.0

#: How far new tiles may go beyond both the training tiles' range and the
#: nominal range (0..input_scale) before ``predict`` warns, as a fraction of the
#: input scale: rounding and resampling never reach it.
_RANGE_SLACK = 0.01

#: Elements of an object array that ``np.asarray(..., float)`` would silently
#: turn into numbers although they are no grey levels.
_NOT_PIXELS = (bool, np.bool_, str, bytes, np.str_, np.bytes_)


def _describe(shape):
    return "x".join(str(int(s)) for s in shape)


def check_images(
    X, *, image_shape=None, estimator_name="estimator", ensure_min_samples=1, input_name="X"
):
    """Validate image tiles and return them as ``(n, h, w, 1)``.

    Parameters
    ----------
    X : array-like of shape (n, side * side), (n, h, w) or (n, h, w, 1)
        Grayscale tiles, real numbers, finite (see :func:`check_pixels`).
    image_shape : tuple of int (h, w) or None, default=None
        The shape the images must have (the one seen in ``fit``). When None,
        a flat row must hold a square image and its side is inferred.
    estimator_name : str, default="estimator"
        Named in error messages.
    ensure_min_samples : int, default=1
        Fewer samples raise a ``ValueError``.
    input_name : str, default="X"
        The argument named in error messages.

    Returns
    -------
    images : ndarray of shape (n, h, w, 1)
        The tiles, in the numeric dtype they came in (not scaled).
    image_shape : tuple of int
        ``(h, w)``.
    """
    X = check_pixels(
        X,
        estimator_name=estimator_name,
        ensure_min_samples=ensure_min_samples,
        input_name=input_name,
    )
    return to_images(X, image_shape=image_shape, estimator_name=estimator_name)


def check_pixels(X, *, estimator_name="estimator", ensure_min_samples=1, input_name="X"):
    """Check that ``X`` is a non-empty, finite array of grey levels, of any dimension >= 2.

    Grey levels are real numbers: text raises a ``TypeError``, and so do
    booleans (a mask has no grey levels, and ``True`` would silently become
    1 of 255) and object arrays holding booleans or strings; complex numbers
    raise a ``ValueError``. An object array of real numbers is read as
    float64, as scikit-learn does.
    """
    dtype = getattr(X, "dtype", None)
    if dtype is not None and dtype.kind in "SUV" or _is_text(X):
        raise TypeError(
            f"{estimator_name} expects numeric image data; got {input_name} of dtype "
            f"{getattr(np.asarray(X), 'dtype', type(X))}."
        )
    if dtype is not None and dtype.kind == "c" or _holds_complex(X):
        raise ValueError(
            f"{estimator_name} got complex {input_name}: Complex data not supported; grey "
            "levels are real numbers (take np.abs or .real first if that is what you mean)."
        )
    if dtype is not None and dtype.kind == "O":
        _check_object_pixels(X, estimator_name, input_name)
    X = check_array(
        X,
        dtype="numeric",
        allow_nd=True,
        ensure_all_finite=True,
        ensure_min_samples=ensure_min_samples,
        ensure_min_features=1,
        input_name=input_name,
        estimator=estimator_name,
    )
    if X.dtype == np.bool_:
        raise TypeError(
            f"{estimator_name} expects grey levels; got {input_name} of dtype bool (a mask?). "
            f"Convert it to the grey levels you mean, e.g. {input_name}.astype(np.uint8) * 255."
        )
    return X


def _holds_complex(X):
    """Whether a list (not an array) holds complex numbers, which check_array would print."""
    if not isinstance(X, list | tuple) or not X:
        return False
    first = X[0]
    while isinstance(first, list | tuple) and first:
        first = first[0]
    return isinstance(first, complex | np.complexfloating)


def _check_object_pixels(X, estimator_name, input_name):
    # float(True) and float("12") succeed: without this look, an object array of
    # booleans or of numeric strings would become grey levels without a word
    kinds = {type(value) for value in np.asarray(X).flat}
    found = [kind.__name__ for kind in kinds if issubclass(kind, _NOT_PIXELS)]
    if found:
        raise TypeError(
            f"{estimator_name} expects grey levels; got {input_name} of dtype object holding "
            f"{', '.join(sorted(found))} values. Give a numeric array (e.g. uint8 or float)."
        )


def to_images(X, *, image_shape=None, estimator_name="estimator"):
    """Reshape a checked array to ``(n, h, w, 1)``; see :func:`check_images`."""
    images = _to_nhwc(X, image_shape, estimator_name)
    found = images.shape[1:3]
    if image_shape is not None and tuple(found) != tuple(image_shape):
        raise ValueError(
            f"X has images of {_describe(found)} pixels, but {estimator_name} was fitted on "
            f"images of {_describe(image_shape)} pixels."
        )
    return images, (int(found[0]), int(found[1]))


def square_shape(n_features):
    """Return ``(side, side)`` for a flat row of ``n_features`` pixels.

    Raises ``ValueError`` when ``n_features`` is not a perfect square.
    """
    side = math.isqrt(n_features)
    if side * side != n_features:
        raise ValueError(
            f"X has {n_features} features per row, which is not a square image "
            "(e.g. 2304 = 48x48); pass images as (n_samples, height, width) instead."
        )
    return side, side


def _is_text(X):
    if isinstance(X, str | bytes):
        return True
    if isinstance(X, list | tuple) and X:
        first = X[0]
        while isinstance(first, list | tuple) and first:
            first = first[0]
        return isinstance(first, str | bytes)
    return False


def _to_nhwc(X, image_shape, estimator_name):
    if X.ndim == 2:
        n_features = X.shape[1]
        if image_shape is not None:
            expected = int(np.prod(image_shape))
            if n_features != expected:
                raise ValueError(
                    f"X has {n_features} features, but {estimator_name} is expecting {expected} "
                    f"features as input (images of {_describe(image_shape)} pixels)."
                )
            return X.reshape(-1, *image_shape, 1)
        return X.reshape(-1, *square_shape(n_features), 1)
    if X.ndim == 3:
        return X[..., np.newaxis]
    if X.ndim == 4:
        if X.shape[3] != 1:
            raise ValueError(
                f"X has shape {X.shape}: 4-D images must have a single (grayscale) channel "
                "as last axis, (n_samples, height, width, 1)."
            )
        return X
    raise ValueError(
        f"X has {X.ndim} dimensions; expected (n_samples, side*side), "
        "(n_samples, height, width) or (n_samples, height, width, 1)."
    )


def infer_input_scale(X):
    """Return the value that maps the input's full range to 1.

    Integer data (uint8 tiles) are taken to span 0..255. Float data that lie
    within [0, 1] are taken as already scaled (1.0), any other float data as
    0..255 grey levels. The value is fixed in ``fit`` so that ``predict``
    scales new tiles exactly as the training tiles, whatever their range.
    """
    return input_scale_of(pixel_range(X))


def pixel_range(X, rows=None):
    """The dtype and the smallest and largest value of ``X``.

    Parameters
    ----------
    X : ndarray
        Checked tiles (numeric, finite), at least one.
    rows : ndarray of bool or None, default=None
        Only these rows (along the first axis); they are read in chunks, so
        that no copy of all of them is made.

    Returns
    -------
    pixel_range : dict or None
        ``{"dtype": str, "min": float, "max": float}``; None when ``rows``
        selects no row.
    """
    X = np.asarray(X)
    if rows is None:
        low, high = np.min(X), np.max(X)
    else:
        chunks = [X[s : s + 4096][rows[s : s + 4096]] for s in range(0, X.shape[0], 4096)]
        extremes = [(np.min(c), np.max(c)) for c in chunks if c.size]
        if not extremes:
            return None
        low, high = min(e[0] for e in extremes), max(e[1] for e in extremes)
    return {"dtype": str(X.dtype), "min": float(low), "max": float(high)}


def range_hull(first, second):
    """The range that holds both ranges (the dtype of ``first``)."""
    return {
        "dtype": first["dtype"],
        "min": min(first["min"], second["min"]),
        "max": max(first["max"], second["max"]),
    }


def _kind(pixel_range):
    return np.dtype(pixel_range["dtype"]).kind


def _is_unit(pixel_range):
    """Whether tiles of this range are read as already scaled: floats within [0, 1]."""
    return _kind(pixel_range) == "f" and pixel_range["min"] >= 0 and pixel_range["max"] <= 1


def input_scale_of(pixel_range):
    """The grey value mapped to 1: 1.0 for floats within [0, 1], 255.0 otherwise."""
    return 1.0 if _is_unit(pixel_range) else float(GREY_MAX)


def _describe_range(pixel_range):
    low, high = pixel_range["min"], pixel_range["max"]
    reading = "floats in [0, 1]" if _is_unit(pixel_range) else "grey levels"
    return f"{reading} ({pixel_range['dtype']}, {low:.4g}..{high:.4g})"


def check_grey_levels(pixel_range, *, estimator_name="estimator", input_name="X"):
    """Refuse integer tiles outside 0..255; warn about float tiles outside [0, 255].

    Integer tiles are 8-bit grey levels, whatever their dtype: a uint16 tile
    of a 12-bit camera (0..4095) divided by 255 would reach 16, so it is
    refused with a ``ValueError`` rather than read wrongly. Float tiles
    outside [0, 1] are read as 0..255 grey levels; outside [0, 255] (negative
    or larger values, e.g. tiles standardised by hand) they draw a
    ``UserWarning``: they are divided by 255 all the same.
    """
    low, high = pixel_range["min"], pixel_range["max"]
    if low >= 0 and high <= GREY_MAX:
        return
    if _kind(pixel_range) in "iu":
        raise ValueError(
            f"{input_name} holds integers from {low:.0f} to {high:.0f}, but {estimator_name} "
            f"reads integer tiles as 8-bit grey levels (0..{GREY_MAX}), whatever their dtype. "
            f"Convert them: to 8 bits (e.g. ({input_name} >> 4).astype(np.uint8) for 12-bit "
            f"data), to floats in [0, 1] (e.g. {input_name} / 4095.0), or use "
            'preprocessing="standardize", which reads any range.'
        )
    warnings.warn(
        f"{input_name} holds floats from {low:.4g} to {high:.4g}, outside both [0, 1] and "
        f"[0, {GREY_MAX}]: {estimator_name} reads them as 0..{GREY_MAX} grey levels and "
        'divides them by 255. If they are standardised already, use preprocessing="standardize".',
        UserWarning,
        stacklevel=_caller_level(),
    )


def check_same_range(
    reference, new, *, input_name="X", reference_name="the training tiles", advice=None
):
    """Refuse tiles that clearly come from another range than the reference tiles.

    The rule: one set is read as floats already in [0, 1] (float dtype, all
    values within [0, 1]) and the other as 0..255 grey levels (integers, or
    floats beyond [0, 1]), and the largest value of the grey-level set is at
    least :data:`RANGE_FACTOR` (10) times the largest of the [0, 1] set (which
    is not all zeros), as when ``X`` and ``X / 255`` meet. Tiles read the
    same way are never refused: uint8 tiles of a dark and a bright image
    differ in range but not in scale.

    Parameters
    ----------
    reference, new : dict
        From :func:`pixel_range`.
    input_name : str, default="X"
        The argument that holds ``new``, named in the message.
    reference_name : str, default="the training tiles"
        What ``reference`` describes, in the message.
    advice : str or None, default=None
        What to do, appended to the message (default: a conversion of
        ``input_name``).

    Raises
    ------
    ValueError
        When the rule refuses ``new``.
    """
    if _is_unit(reference) == _is_unit(new):
        return
    unit, grey = (reference, new) if _is_unit(reference) else (new, reference)
    if unit["max"] <= 0 or grey["max"] < RANGE_FACTOR * unit["max"]:
        return
    if advice is None:
        fix = f"{input_name} * 255" if _is_unit(new) else f"{input_name} / 255.0"
        advice = f"Pass tiles in the range of {reference_name} (here {fix})."
    raise ValueError(
        f"{input_name} holds {_describe_range(new)}, but {reference_name} hold "
        f"{_describe_range(reference)}: their largest values differ by a factor of "
        f"{grey['max'] / unit['max']:.3g}, as when one set is scaled to [0, 1] and the other "
        f"is not, so the two would be read on different scales. {advice}"
    )


def check_prediction_range(
    reference, new, *, input_scale, estimator_name="estimator", input_name="X"
):
    """Check new tiles against the range of the training tiles; see :func:`check_same_range`.

    Refuses integer tiles outside 0..255 and tiles that clearly come from
    another range (``ValueError``). Warns (``UserWarning``) when the tiles go
    beyond both [0, ``input_scale``] and the training tiles' range by more
    than 1% of ``input_scale``: e.g. tiles from which a mean was subtracted,
    given to a model trained on 0..255 tiles.
    """
    if _kind(new) in "iu":
        check_grey_levels(new, estimator_name=estimator_name, input_name=input_name)
    check_same_range(
        reference,
        new,
        input_name=input_name,
        reference_name=f"the tiles {estimator_name} was fitted on",
    )
    slack = _RANGE_SLACK * input_scale
    low, high = min(0.0, reference["min"]) - slack, max(input_scale, reference["max"]) + slack
    if new["min"] < low or new["max"] > high:
        warnings.warn(
            f"{input_name} holds values from {new['min']:.4g} to {new['max']:.4g}, beyond the "
            f"range of the tiles {estimator_name} was fitted on ({_describe_range(reference)}) "
            f"and beyond 0..{input_scale:g}: its predictions there are extrapolations. Give "
            "tiles in the range of the training tiles.",
            UserWarning,
            stacklevel=_caller_level(),
        )


def _caller_level():
    """The stack level of the first frame outside skcrater and scikit-learn (for warnings)."""
    frame, level = sys._getframe(1), 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(("skcrater", "sklearn")):
            return level
        frame, level = frame.f_back, level + 1
    return 1


def standardize_tiles(images):
    """Standardise each tile to zero mean and unit standard deviation.

    Removes the tile's exposure (mean grey level) and contrast, so that a
    model cannot lean on absolute brightness. A constant tile becomes zeros.
    """
    images = np.asarray(images, dtype=np.float32)
    axes = tuple(range(1, images.ndim))
    mean = images.mean(axis=axes, keepdims=True)
    std = images.std(axis=axes, keepdims=True)
    return (images - mean) / np.maximum(std, _STD_EPS)


def scale_images(images, *, preprocessing="scale", input_scale=255.0):
    """Scale validated tiles to the network's input range, as float32.

    Parameters
    ----------
    images : ndarray
        Tiles from :func:`check_images`.
    preprocessing : {"scale", "standardize", "local"}, default="scale"
        ``"scale"`` and ``"local"`` divide by ``input_scale`` (0..255 becomes
        0..1; ``"local"`` then normalises inside the network);
        ``"standardize"`` standardises every tile on its own (see
        :func:`standardize_tiles`).
    input_scale : float, default=255.0
        From :func:`infer_input_scale`.
    """
    if preprocessing == "standardize":
        return standardize_tiles(images)
    if preprocessing in ("scale", "local"):  # "local" normalises inside the network
        return np.asarray(images, dtype=np.float32) / np.float32(input_scale)
    raise ValueError(f"preprocessing must be one of {PREPROCESSING_MODES}, got {preprocessing!r}.")
