"""Validation, reshaping and scaling of grayscale image tiles.

Every skcrater estimator goes through these helpers, so that a tile given as
a flat row of ``side * side`` pixels (the course format), as ``(h, w)`` or as
``(h, w, 1)`` is understood, checked and scaled the same way everywhere.
"""

from __future__ import annotations

import math

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
    "PREPROCESSING_MODES",
]

#: Accepted values of the ``preprocessing`` parameter of the estimators.
PREPROCESSING_MODES = ("scale", "standardize", "local")

# Guards the division of a flat (constant) tile; far below any real contrast.
_STD_EPS = 1e-6


def _describe(shape):
    return "x".join(str(int(s)) for s in shape)


def check_images(X, *, image_shape=None, estimator_name="estimator", ensure_min_samples=1):
    """Validate image tiles and return them as ``(n, h, w, 1)``.

    Parameters
    ----------
    X : array-like of shape (n, side * side), (n, h, w) or (n, h, w, 1)
        Grayscale tiles, numeric, finite.
    image_shape : tuple of int (h, w) or None, default=None
        The shape the images must have (the one seen in ``fit``). When None,
        a flat row must hold a square image and its side is inferred.
    estimator_name : str, default="estimator"
        Named in error messages.
    ensure_min_samples : int, default=1
        Fewer samples raise a ``ValueError``.

    Returns
    -------
    images : ndarray of shape (n, h, w, 1)
        The tiles, in the numeric dtype they came in (not scaled).
    image_shape : tuple of int
        ``(h, w)``.
    """
    X = check_pixels(X, estimator_name=estimator_name, ensure_min_samples=ensure_min_samples)
    return to_images(X, image_shape=image_shape, estimator_name=estimator_name)


def check_pixels(X, *, estimator_name="estimator", ensure_min_samples=1):
    """Check that ``X`` is a non-empty, finite, numeric array of any dimension >= 2."""
    if getattr(X, "dtype", None) is not None and X.dtype.kind in "SUV" or _is_text(X):
        raise TypeError(
            f"{estimator_name} expects numeric image data; got data of dtype "
            f"{getattr(np.asarray(X), 'dtype', type(X))}."
        )
    X = check_array(
        X,
        dtype="numeric",
        allow_nd=True,
        ensure_all_finite=True,
        ensure_min_samples=ensure_min_samples,
        ensure_min_features=1,
        input_name="X",
        estimator=estimator_name,
    )
    return X.astype(np.uint8) if X.dtype == np.bool_ else X


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
    X = np.asarray(X)
    if X.dtype.kind in "biu":
        return 255.0
    if X.size and (X.min() < 0.0 or X.max() > 1.0):
        return 255.0
    return 1.0


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
