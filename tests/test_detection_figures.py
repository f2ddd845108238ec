"""Tests of skcrater.detection's figures."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from matplotlib.patches import Circle  # noqa: E402

from skcrater.detection import (  # noqa: E402
    match_craters,
    plot_detection_pr,
    plot_detections,
    plot_score_map,
)

CATALOGUE = pd.DataFrame({"x": [20.0, 60.0, 100.0], "y": [20.0, 60.0, 100.0], "diameter": 20.0})
FOUND = pd.DataFrame({"x": [21.0, 140.0], "y": [20.0, 30.0], "diameter": 18.0, "score": [0.9, 0.7]})


def _circles(fig):
    return [p for p in fig.axes[0].patches if isinstance(p, Circle)]


def test_detections_matched_false_and_missed_in_three_colours():
    match = match_craters(FOUND, CATALOGUE)
    fig = plot_detections(np.zeros((160, 160)), FOUND, CATALOGUE, match=match)
    circles = _circles(fig)
    assert len(circles) == match.tp + match.fp + match.fn == 4
    assert len({tuple(c.get_edgecolor()) for c in circles}) == 3
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["matched (1)", "false (1)", "missed (2)"]


def test_detections_without_a_catalogue():
    fig = plot_detections(np.zeros((160, 160)), FOUND)
    assert len(_circles(fig)) == 2
    assert fig.axes[0].get_title() == "2 detections"


def test_score_map_is_placed_at_window_centres():
    fig = plot_score_map(np.zeros((10, 20)), stride=6, window=48)
    left, right, bottom, top = fig.axes[0].images[0].get_extent()
    assert (left, top) == (23.5 - 3, 23.5 - 3)
    assert right == pytest.approx(23.5 + 19.5 * 6) and bottom == pytest.approx(23.5 + 9.5 * 6)


def test_precision_recall_figure_marks_the_kept_detections():
    match = match_craters(FOUND, CATALOGUE)
    fig = plot_detection_pr(match)
    ax = fig.axes[0]
    assert ax.get_title() == "Detection precision-recall"
    assert [t.get_text() for t in ax.get_legend().get_texts()][1] == f"kept: F1 = {match.f1:.3f}"
