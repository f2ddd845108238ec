"""From score maps to craters: peaks, diameters across scales, suppression."""

from __future__ import annotations

import numpy as np

__all__ = ["map_peaks", "refine_log_scale", "suppress_overlaps"]


def map_peaks(scores, *, threshold, min_distance):
    """Local maxima of a score map at or above ``threshold``.

    Returns ``(rows, cols, values)``: the map cells of the peaks and their
    scores (:func:`skimage.feature.peak_local_max`; plateaus give one peak).
    """
    from skimage.feature import peak_local_max

    if scores.size == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, np.zeros(0, dtype=scores.dtype)
    # peak_local_max keeps values strictly above threshold_abs; step one float
    # below, so that a score equal to the threshold is kept
    below = np.nextafter(np.asarray(threshold, dtype=scores.dtype), -np.inf)
    cells = peak_local_max(
        scores,
        min_distance=max(1, int(min_distance)),
        threshold_abs=float(below),
        exclude_border=False,
    )
    return cells[:, 0], cells[:, 1], scores[cells[:, 0], cells[:, 1]]


def refine_log_scale(log_scales, values):
    """Vertex of the parabola through three (log scale, score) points per peak.

    Parameters
    ----------
    log_scales : ndarray of shape (n, 3)
        ``log(scale)`` of the finer level, the peak's level and the coarser
        level (NaN where a neighbour is missing).
    values : ndarray of shape (n, 3)
        The scores there (NaN where missing).

    Returns
    -------
    log_scale : ndarray of shape (n,)
        The refined ``log(scale)``: the vertex when the parabola opens
        downwards, clipped to the two neighbours; the peak's own level
        otherwise.
    """
    (x0, x1, x2), (y0, y1, y2) = np.moveaxis(log_scales, 1, 0), np.moveaxis(values, 1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
        a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
        b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / denom
        vertex = -b / (2 * a)
    good = np.isfinite(vertex) & (a < 0)
    low, high = np.minimum(x0, x2), np.maximum(x0, x2)
    return np.where(good, np.clip(vertex, low, high), x1)


def suppress_overlaps(x, y, diameter, score, *, overlap=0.5, diameter_ratio=2.0):
    """Mask of the detections that no higher-scoring detection overlaps.

    Two detections overlap when their centres are at most ``overlap`` times
    the larger diameter apart and their diameters differ by at most
    ``diameter_ratio`` (so a small crater on a large one's floor survives).
    Equal scores: the earlier row wins.
    """
    from scipy.spatial import cKDTree

    n = len(score)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    xy = np.column_stack([x, y])
    pairs = cKDTree(xy).query_pairs(r=overlap * float(np.max(diameter)), output_type="ndarray")
    if not len(pairs):
        return keep
    i, j = pairs[:, 0], pairs[:, 1]
    big = np.maximum(diameter[i], diameter[j])
    small = np.minimum(diameter[i], diameter[j])
    distance = np.hypot(*(xy[i] - xy[j]).T)
    close = (distance <= overlap * big) & (big <= diameter_ratio * small)
    i, j = i[close], j[close]
    # the lower score loses; on a tie, the later row
    i_loses = (score[i] < score[j]) | ((score[i] == score[j]) & (i > j))
    keep[np.where(i_loses, i, j)] = False
    return keep
