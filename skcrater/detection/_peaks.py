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
    n = len(score)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    xy = np.column_stack([x, y])
    i, j = _candidate_pairs(xy, np.asarray(diameter, dtype=np.float64), overlap, diameter_ratio)
    big = np.maximum(diameter[i], diameter[j])
    small = np.minimum(diameter[i], diameter[j])
    distance = np.hypot(*(xy[i] - xy[j]).T)
    close = (distance <= overlap * big) & (big <= diameter_ratio * small)
    i, j = i[close], j[close]
    # the lower score loses; on a tie, the later row
    i_loses = (score[i] < score[j]) | ((score[i] == score[j]) & (i > j))
    keep[np.where(i_loses, i, j)] = False
    return keep


def _candidate_pairs(xy, diameter, overlap, diameter_ratio):
    """Every pair of rows that may overlap, each once, as two index arrays.

    One radius for all (``overlap`` times the largest diameter) would pair
    every small detection of a whole mosaic with hundreds of neighbours.
    Diameters of an overlapping pair differ by at most ``diameter_ratio``, so
    detections are grouped by ``log(diameter)`` in steps of (a little more
    than) ``log(diameter_ratio)``: a pair lies within one group or two
    adjacent ones, and each group is searched with the radius of its
    neighbour's largest diameter.
    """
    from scipy.spatial import cKDTree

    # groups a little wider than the ratio: rows two groups apart always differ by more
    group = np.floor(np.log(diameter) / np.log(diameter_ratio * (1 + 1e-6))).astype(np.int64)
    pairs = []
    for g in np.unique(group):
        here, both = np.flatnonzero(group == g), np.flatnonzero((group == g) | (group == g + 1))
        radius = overlap * float(diameter[both].max())
        found = cKDTree(xy[both]).query_pairs(r=radius, output_type="ndarray")
        found = both[found]
        # pairs wholly within group g + 1 are that group's own
        mine = np.isin(found, here).any(axis=1)
        pairs.append(found[mine])
    pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.intp)
    return pairs[:, 0], pairs[:, 1]
