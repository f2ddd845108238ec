"""Score a list of detected craters against a catalogue."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.utils import Bunch

from ._catalogue import check_catalogue

__all__ = ["match_craters"]


def match_craters(
    detections,
    catalogue,
    *,
    min_diameter=None,
    max_diameter=None,
    max_distance=0.5,
    diameter_ratio=2.0,
    margin=1.25,
):
    """Match detected craters one-to-one with a catalogue and score them.

    Detections are taken in decreasing ``score``; each one is matched to the
    closest catalogued crater that is still free and within the criterion:
    centre distance at most ``max_distance`` times the catalogued diameter,
    and a diameter ratio (the larger over the smaller) at most
    ``diameter_ratio``.

    The size range ``[min_diameter, max_diameter]`` is what is scored.
    Craters *just* outside it are "don't care": a catalogued crater whose
    diameter lies within a factor ``margin`` outside the range is neither
    missed when no detection matches it nor false when one does, and a
    detection of such a diameter that matches nothing is not false either.
    Detections farther outside the range are left out altogether (they
    answer another size range). A detection that matches a catalogued crater
    outside the range found a real crater: it is neither a hit nor false.

    Parameters
    ----------
    detections : DataFrame or array-like of shape (n, 4)
        Columns ``x``, ``y``, ``diameter`` (pixels) and ``score`` (higher is
        surer), as :meth:`CraterDetector.predict` returns.
    catalogue : DataFrame or array-like of shape (m, 3)
        Columns ``x``, ``y``, ``diameter`` (pixels); may be empty.
    min_diameter, max_diameter : float or None, default=None
        The size range scored (None: unbounded on that side).
    max_distance : float, default=0.5
        Largest centre distance of a match, in catalogued diameters.
    diameter_ratio : float, default=2.0
        Largest ratio between the two diameters of a match (>= 1).
    margin : float, default=1.25
        Factor (>= 1) around the size range within which craters are
        "don't care"; 1 scores the range's edges strictly.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``matches``: DataFrame with one row per match (``detection``,
        ``catalogue`` row numbers, ``distance`` in pixels, ``diameter_error``
        relative to the catalogued diameter, ``scored``: whether it is a hit
        of the range); ``detection_status`` and ``catalogue_status``: arrays
        of ``"tp"``/``"fp"``/``"ignored"`` and ``"tp"``/``"fn"``/``"ignored"``
        per row of each table; ``tp``, ``fp``, ``fn``; ``precision``,
        ``recall``, ``f1`` (0 when undefined); ``thresholds``,
        ``precision_curve``, ``recall_curve`` (at every distinct score, from
        the highest), and ``average_precision`` (the area under that curve,
        missed craters counted).

    Examples
    --------
    >>> import pandas as pd
    >>> from skcrater.detection import match_craters
    >>> truth = pd.DataFrame({"x": [10.0, 50.0], "y": [10.0, 50.0], "diameter": [20.0, 20.0]})
    >>> found = pd.DataFrame({"x": [11.0, 90.0], "y": [9.0, 90.0],
    ...                       "diameter": [18.0, 20.0], "score": [0.9, 0.8]})
    >>> result = match_craters(found, truth, min_diameter=16, max_diameter=40)
    >>> result.tp, result.fp, result.fn
    (1, 1, 1)
    """
    det = check_catalogue(detections, name="detections", extra=("score",))
    if "score" not in det.columns:
        raise ValueError("detections need a 'score' column (higher is surer).")
    cat = check_catalogue(catalogue)
    low, high = _check_range(min_diameter, max_diameter, margin)
    _check_positive(max_distance, "max_distance", 0.0)
    _check_positive(diameter_ratio, "diameter_ratio", 1.0)

    det_zone = _zone(det["diameter"].to_numpy(), low, high, margin)
    cat_zone = _zone(cat["diameter"].to_numpy(), low, high, margin)
    order = np.argsort(-det["score"].to_numpy(), kind="stable")
    order = order[det_zone[order] > 0]  # detections far outside the range answer another one
    pairs = _greedy_pairs(det, cat, order, max_distance, diameter_ratio)

    det_status = np.full(len(det), "ignored", dtype=object)
    cat_status = np.where(cat_zone == 2, "fn", "ignored").astype(object)
    det_status[order] = np.where(det_zone[order] == 2, "fp", "ignored")
    scored = np.zeros(len(pairs), dtype=bool)
    for k, (d, c) in enumerate(pairs):
        if cat_zone[c] == 2:
            det_status[d], cat_status[c], scored[k] = "tp", "tp", True
        else:
            det_status[d] = "ignored"
    return _summary(det, cat, pairs, scored, det_status, cat_status)


def _check_range(min_diameter, max_diameter, margin):
    for value, name in ((min_diameter, "min_diameter"), (max_diameter, "max_diameter")):
        if value is not None:
            _check_positive(value, name, 0.0, strict=True)
    _check_positive(margin, "margin", 1.0)
    low = 0.0 if min_diameter is None else float(min_diameter)
    high = np.inf if max_diameter is None else float(max_diameter)
    if low > high:
        raise ValueError(f"min_diameter={min_diameter} is larger than max_diameter={max_diameter}.")
    return low, high


def _check_positive(value, name, bound, strict=False):
    ok = isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < bound or (strict and value == bound):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {relation} {bound}, got {value!r}.")


def _zone(diameters, low, high, margin):
    """2 inside the range, 1 within ``margin`` of it ("don't care"), 0 farther out."""
    inside = (diameters >= low) & (diameters <= high)
    near = (diameters >= low / margin) & (diameters <= high * margin)
    return np.where(inside, 2, np.where(near, 1, 0))


def _greedy_pairs(det, cat, order, max_distance, diameter_ratio):
    """(detection, catalogue) row pairs, highest score first, closest free crater each."""
    from scipy.spatial import cKDTree

    if not len(order) or not len(cat):
        return []
    centres = cat[["x", "y"]].to_numpy()
    cat_d = cat["diameter"].to_numpy()
    det_xy = det[["x", "y"]].to_numpy()
    det_d = det["diameter"].to_numpy()
    tree = cKDTree(centres)
    # every crater within reach of a detection lies within max_distance * the largest diameter
    reach = tree.query_ball_point(det_xy[order], r=max_distance * cat_d.max())
    free = np.ones(len(cat), dtype=bool)
    pairs = []
    for d, near in zip(order, reach, strict=True):
        near = np.asarray(near, dtype=np.intp)
        near = near[free[near]]
        if not near.size:
            continue
        distance = np.hypot(*(centres[near] - det_xy[d]).T)
        ratio = np.maximum(det_d[d] / cat_d[near], cat_d[near] / det_d[d])
        ok = (distance <= max_distance * cat_d[near]) & (ratio <= diameter_ratio)
        if ok.any():
            c = near[ok][np.argmin(distance[ok])]
            free[c] = False
            pairs.append((int(d), int(c)))
    return pairs


def _summary(det, cat, pairs, scored, det_status, cat_status):
    import pandas as pd

    d_idx = np.array([d for d, _ in pairs], dtype=np.intp)
    c_idx = np.array([c for _, c in pairs], dtype=np.intp)
    delta = det[["x", "y"]].to_numpy()[d_idx] - cat[["x", "y"]].to_numpy()[c_idx]
    cat_d = cat["diameter"].to_numpy()[c_idx]
    matches = pd.DataFrame(
        {
            "detection": d_idx,
            "catalogue": c_idx,
            "distance": np.hypot(*delta.T) if len(pairs) else np.zeros(0),
            "diameter_error": (det["diameter"].to_numpy()[d_idx] - cat_d) / cat_d,
            "scored": scored,
        }
    )
    tp = int(np.sum(det_status == "tp"))
    fp = int(np.sum(det_status == "fp"))
    fn = int(np.sum(cat_status == "fn"))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    curve = _pr_curve(det["score"].to_numpy(), det_status, tp + fn)
    return Bunch(
        matches=matches,
        detection_status=det_status.astype(str),
        catalogue_status=cat_status.astype(str),
        tp=tp,
        fp=fp,
        fn=fn,
        precision=precision,
        recall=recall,
        f1=f1,
        **curve,
    )


def _pr_curve(scores, status, n_true):
    """Precision and recall when keeping detections with score >= each distinct score."""
    counted = status != "ignored"
    scores, hits = scores[counted], (status[counted] == "tp")
    order = np.argsort(-scores, kind="stable")
    scores, hits = scores[order], hits[order]
    # one point per distinct score: the last detection of each run of equal scores
    last = np.r_[np.flatnonzero(np.diff(scores) != 0), scores.size - 1] if scores.size else []
    tps = np.cumsum(hits)[last].astype(float)
    kept = np.asarray(last, dtype=float) + 1
    precision = tps / kept if scores.size else np.zeros(0)
    recall = tps / n_true if n_true else np.zeros(len(tps))
    steps = np.diff(np.r_[0.0, recall])
    return {
        "thresholds": scores[last] if scores.size else np.zeros(0),
        "precision_curve": precision,
        "recall_curve": recall,
        "average_precision": float(np.sum(steps * precision)),
    }
