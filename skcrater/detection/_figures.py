"""Figures of crater detections: the image with its craters, a score map, a PR curve.

Drawn on :class:`matplotlib.figure.Figure` objects that pyplot does not
track, as the figures of :mod:`skcrater.report` are.
"""

from __future__ import annotations

import numpy as np

from ..report import _figure

__all__ = ["plot_detections", "plot_score_map", "plot_detection_pr"]

#: Colours of matched, false and missed craters (colour-blind safe).
COLOURS = {"tp": "#1b9e77", "fp": "#d95f02", "fn": "#7570b3"}


def plot_detections(image, detections, catalogue=None, *, match=None, ax=None, title=None):
    """The image with its detections and, given a catalogue, what they missed.

    Parameters
    ----------
    image : ndarray of shape (rows, cols)
        The grayscale image.
    detections : DataFrame
        ``x``, ``y``, ``diameter`` (and ``score``), as
        :meth:`CraterDetector.predict` returns.
    catalogue : DataFrame, default=None
        The true craters; with ``match`` they are drawn as missed.
    match : Bunch, default=None
        :func:`match_craters` of these detections and that catalogue: its
        statuses colour matched (green), false (orange) and missed (purple)
        craters. Without it every detection is drawn in green.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    title : str, default=None
        The title (default: counts).

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from skcrater.datasets import make_crater_scene
    >>> from skcrater.detection import match_craters, plot_detections
    >>> image, truth = make_crater_scene(128, n_craters=6, diameter_range=(8, 30), random_state=0)
    >>> found = truth.assign(score=1.0).iloc[:4]
    >>> fig = plot_detections(image, found, truth, match=match_craters(found, truth))
    >>> fig.axes[0].get_title()
    '4 detections'
    """
    from matplotlib.patches import Circle

    rows, cols = np.shape(image)
    size = min(10.0, 4.0 + cols / 300), min(10.0, 4.0 + rows / 300)
    fig, ax = _figure(ax, figsize=size)
    ax.imshow(image, cmap="gray", interpolation="nearest")
    status = np.full(len(detections), "tp") if match is None else match.detection_status
    drawn = {"tp": 0, "fp": 0, "fn": 0}
    for (x, y, d), kind in zip(detections[["x", "y", "diameter"]].to_numpy(), status, strict=True):
        if kind in COLOURS:
            ax.add_patch(Circle((x, y), d / 2, fill=False, lw=1.0, color=COLOURS[kind]))
            drawn[kind] += 1
    if catalogue is not None and match is not None:
        missed = catalogue[match.catalogue_status == "fn"]
        for x, y, d in missed[["x", "y", "diameter"]].to_numpy():
            ax.add_patch(Circle((x, y), d / 2, fill=False, lw=1.0, ls="--", color=COLOURS["fn"]))
            drawn["fn"] += 1
    labels = {"tp": "matched" if match is not None else "detected", "fp": "false", "fn": "missed"}
    for kind, colour in COLOURS.items():
        if drawn[kind]:
            ax.plot([], [], "o", mfc="none", color=colour, label=f"{labels[kind]} ({drawn[kind]})")
    if any(drawn.values()):
        ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_axis_off()
    ax.set_title(title or f"{len(detections)} detections")
    return fig


def plot_score_map(scores, *, stride=1, window=0, ax=None, title="Crater score"):
    """A score map of :meth:`CraterDetector.score_map` over image coordinates.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, n_cols)
        The map.
    stride, window : int, default=1, 0
        Its scan step and window, to put cell ``[i, j]`` at the centre of
        its window, ``(i * stride + (window - 1) / 2, ...)``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    title : str, default="Crater score"
        The title.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skcrater.detection import plot_score_map
    >>> fig = plot_score_map(np.zeros((8, 8)), stride=6, window=48)
    >>> fig.axes[0].get_title()
    'Crater score'
    """
    fig, ax = _figure(ax, figsize=(6.0, 5.0))
    offset = (window - 1) / 2 if window else 0.0
    rows, cols = scores.shape
    extent = (
        offset - stride / 2,
        offset + (cols - 0.5) * stride,
        offset + (rows - 0.5) * stride,
        offset - stride / 2,
    )
    shown = ax.imshow(scores, cmap="magma", vmin=0, vmax=1, extent=extent, interpolation="nearest")
    fig.colorbar(shown, ax=ax, label="p(crater)")
    ax.set_title(title)
    return fig


def plot_detection_pr(match, *, ax=None, label=None):
    """Precision against recall of detections over score thresholds.

    Parameters
    ----------
    match : Bunch
        :func:`match_craters`'s result.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    label : str, default=None
        Legend label (default: the average precision).

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from skcrater.detection import match_craters, plot_detection_pr
    >>> truth = pd.DataFrame({"x": [10.0], "y": [10.0], "diameter": [20.0]})
    >>> fig = plot_detection_pr(match_craters(truth.assign(score=0.9), truth))
    >>> fig.axes[0].get_xlabel()
    'Recall (catalogued craters found)'
    """
    fig, ax = _figure(ax)
    recall = np.r_[0.0, match.recall_curve]
    precision = np.r_[
        match.precision_curve[:1] if len(match.precision_curve) else [1.0], match.precision_curve
    ]
    ax.step(recall, precision, where="post", label=label or f"AP = {match.average_precision:.3f}")
    ax.plot(
        [match.recall],
        [match.precision],
        "o",
        color=COLOURS["tp"],
        label=f"kept: F1 = {match.f1:.3f}",
    )
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("Recall (catalogued craters found)")
    ax.set_ylabel("Precision (detections matched)")
    ax.set_title("Detection precision-recall")
    ax.legend(loc="lower left")
    return fig
