"""Held-out rows of the training images: the score threshold and the diameter calibration.

A detector's scores on the craters it was trained on are over-confident, so
neither the score threshold nor the diameter rule can be chosen there.
``CraterDetector.fit`` keeps the last rows of each training image out of
training, detects craters in them, and fits both on what it finds.
"""

from __future__ import annotations

import numpy as np

__all__ = ["split_rows", "side_by_side", "fit_diameter_calibration", "best_f1_threshold"]

#: Fewest matched craters needed to fit the diameter calibration.
MIN_CALIBRATION_MATCHES = 20


def split_rows(image, catalogue, fraction, window):
    """``(train, validation)`` parts of one catalogued image, each ``(image, catalogue)``.

    The validation part is the last ``round(fraction * rows)`` rows; a
    crater belongs to the part that holds its centre. None when either part
    would be shorter than the window.
    """
    rows = image.shape[0]
    n_validation = int(round(fraction * rows))
    if n_validation < window or rows - n_validation < window:
        return None
    cut = rows - n_validation
    below = catalogue["y"].to_numpy() >= cut - 0.5
    train = catalogue[~below].reset_index(drop=True)
    validation = catalogue[below].assign(y=lambda t: t["y"] - cut).reset_index(drop=True)
    return (image[:cut], train), (image[cut:], validation)


def side_by_side(tables, widths, gap):
    """One table from several images' tables, each image shifted right past the previous.

    ``gap`` (pixels between images) must be wider than any crater, so that
    matching the pooled detections against the pooled catalogues pairs
    nothing across images.
    """
    import pandas as pd

    offsets = np.concatenate([[0.0], np.cumsum(np.asarray(widths, dtype=float) + gap)[:-1]])
    shifted = [t.assign(x=t["x"] + dx) for t, dx in zip(tables, offsets, strict=True)]
    return pd.concat(shifted, ignore_index=True)


def fit_diameter_calibration(detections, catalogue, matches):
    """``(intercept, slope)`` of ``log(diameter) = log_level + intercept + slope * offset``.

    ``log_level`` is the log diameter that a peak's pyramid level stands
    for, ``offset`` how far the parabola across levels moved it; the fit is
    robust (:class:`sklearn.linear_model.HuberRegressor`) over the matched
    craters, and falls back to ``(0, 1)`` (the uncalibrated rule) with fewer
    than ``MIN_CALIBRATION_MATCHES`` of them.
    """
    from sklearn.linear_model import HuberRegressor

    scored = matches[matches["scored"]]
    if len(scored) < MIN_CALIBRATION_MATCHES:
        return 0.0, 1.0
    found = detections.iloc[scored["detection"].to_numpy()]
    truth = np.log(catalogue["diameter"].to_numpy()[scored["catalogue"].to_numpy()])
    target = truth - found["log_level"].to_numpy()
    offset = found["log_offset"].to_numpy()[:, None]
    model = HuberRegressor().fit(offset, target)
    return float(model.intercept_), float(model.coef_[0])


def best_f1_threshold(result, default):
    """The score threshold of the best F1 along a ``match_craters`` result's curve."""
    p, r = result.precision_curve, result.recall_curve
    if not np.any(r > 0):
        return default
    f1 = 2 * p * r / np.maximum(p + r, 1e-12)
    return float(result.thresholds[int(np.argmax(f1))])
