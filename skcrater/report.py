"""Metrics, figures and a self-contained HTML report for a binary classifier.

:func:`evaluate` needs only scikit-learn. The ``plot_*`` functions and
:func:`write_report` need matplotlib (``pip install "skcrater[plot]"``); they
draw on :class:`matplotlib.figure.Figure` objects that pyplot does not track,
so that writing many reports leaks no figures and needs no display.

Everything works for any fitted binary classifier with ``predict`` and
``predict_proba`` (or ``decision_function``); the learning curve needs a
``history_`` (as :class:`~skcrater.CraterCNNClassifier` has) and the
pseudo-label figure a ``pseudo_label_counts_`` (as
:class:`~skcrater.SelfTrainingWrapper` has), looked up through pipelines'
final steps, wrappers' fitted ``estimator_`` and searches' ``best_estimator_``.
The threshold figure and the score histogram mark the decision threshold in
force (see :func:`write_report`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import time
from datetime import datetime, timezone
from numbers import Real
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._files import refuse_existing, write_bytes
from ._inner import find, walk

__all__ = [
    "evaluate",
    "write_report",
    "plot_confusion_matrix",
    "plot_precision_recall",
    "plot_threshold_f1",
    "plot_score_histogram",
    "plot_learning_curve",
    "plot_examples",
    "plot_pseudo_labels",
]

_PLOT_EXTRA = 'pip install "skcrater[plot]"'
#: File names of the figures, in the order of the report.
FIGURES = (
    "confusion_matrix",
    "precision_recall",
    "threshold_f1",
    "score_histogram",
    "learning_curve",
    "pseudo_labels",
    "examples",
)


# --------------------------------------------------------------------- metrics
def evaluate(estimator, X, y):
    """Score a fitted binary classifier on labelled data.

    Parameters
    ----------
    estimator : fitted classifier
        Two classes, with ``predict`` and ``predict_proba`` (or
        ``decision_function``); ``classes_[1]`` is the positive class
        (craters for skcrater's estimators).
    X : array-like
        Samples, as ``estimator.predict`` takes them.
    y : array-like of shape (n_samples,)
        True labels, among ``estimator.classes_``.

    Returns
    -------
    metrics : dict
        JSON-serialisable: ``n_samples``, ``labels`` (``[negative,
        positive]``), ``class_counts``; ``f1`` (of the positive class),
        ``f1_macro``, ``precision``, ``recall``, ``accuracy``,
        ``balanced_accuracy``, computed on ``estimator.predict``;
        ``roc_auc``, ``average_precision`` and ``log_loss`` (None when ``y``
        holds one class, or, for ``log_loss``, without ``predict_proba``);
        ``confusion_matrix`` (rows: true, columns: predicted, in ``labels``
        order); ``best_threshold`` and ``best_f1``, the score threshold with
        the highest F1 (predicting positive when the score is >= it); and
        ``threshold_curve``, a dict of lists ``threshold``, ``f1``,
        ``precision``, ``recall`` at every distinct score.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skcrater.report import evaluate
    >>> X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    >>> metrics = evaluate(LogisticRegression().fit(X, y), X, y)
    >>> metrics["f1"], metrics["confusion_matrix"]
    (1.0, [[2, 0], [0, 2]])
    """
    return _metrics(_predict(estimator, X, y))


def _predict(estimator, X, y, proba=None):
    """One pass over ``X``: a Bunch of y_true, y_pred, scores, labels, timings.

    ``proba``, probabilities computed elsewhere (out-of-fold ones), replaces
    the estimator's predictions; see :func:`write_report`.
    """
    from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

    check_is_fitted(estimator)
    classes = getattr(estimator, "classes_", None)
    if classes is None or len(classes) != 2:
        raise ValueError(
            "evaluate and write_report need a fitted binary classifier (classes_ of length 2); "
            f"got {type(estimator).__name__} with classes_={classes!r}."
        )
    y_true = column_or_1d(y)
    check_consistent_length(X, y_true)
    unknown = np.setdiff1d(np.unique(y_true), classes)
    if unknown.size:
        raise ValueError(
            f"y has labels {unknown.tolist()} that the estimator does not know "
            f"(classes_={np.asarray(classes).tolist()})."
        )
    if proba is not None:
        return _precomputed(estimator, y_true, proba, classes)
    start = time.perf_counter()
    if hasattr(estimator, "predict_proba"):
        proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
        scores = proba[:, 1]
    else:
        scores = np.asarray(estimator.decision_function(X), dtype=np.float64).reshape(-1)
    y_pred = np.asarray(estimator.predict(X))
    seconds = time.perf_counter() - start
    return Bunch(
        y_true=y_true,
        y_pred=y_pred,
        scores=scores,
        proba=proba,
        labels=np.asarray(classes),
        predict_s=seconds,
    )


def _precomputed(estimator, y_true, proba, classes):
    """The Bunch of :func:`_predict` for given probabilities, at the estimator's threshold."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (y_true.size, 2):
        raise ValueError(
            f"proba must have shape (n_samples, 2) = ({y_true.size}, 2); got {proba.shape}."
        )
    threshold = _decision_threshold(estimator)
    threshold = 0.5 if threshold is None else threshold
    y_pred = np.asarray(classes)[(proba[:, 1] >= threshold).astype(int)]
    return Bunch(
        y_true=y_true,
        y_pred=y_pred,
        scores=proba[:, 1],
        proba=proba,
        labels=np.asarray(classes),
        predict_s=0.0,
    )


def _metrics(p):
    from sklearn import metrics as m

    neg, pos = p.labels
    both = np.unique(p.y_true).size == 2
    binary = dict(pos_label=pos, zero_division=0)
    result = {
        "n_samples": int(p.y_true.size),
        "labels": p.labels.tolist(),
        "class_counts": [int(np.sum(p.y_true == label)) for label in p.labels],
        "f1": m.f1_score(p.y_true, p.y_pred, **binary),
        "f1_macro": m.f1_score(
            p.y_true, p.y_pred, average="macro", labels=p.labels, zero_division=0
        ),
        "precision": m.precision_score(p.y_true, p.y_pred, **binary),
        "recall": m.recall_score(p.y_true, p.y_pred, **binary),
        "accuracy": m.accuracy_score(p.y_true, p.y_pred),
        "balanced_accuracy": m.balanced_accuracy_score(p.y_true, p.y_pred) if both else None,
        "roc_auc": m.roc_auc_score(p.y_true == pos, p.scores) if both else None,
        "average_precision": (
            m.average_precision_score(p.y_true == pos, p.scores) if both else None
        ),
        "log_loss": (
            m.log_loss(p.y_true, p.proba, labels=p.labels) if p.proba is not None else None
        ),
        "confusion_matrix": m.confusion_matrix(p.y_true, p.y_pred, labels=p.labels).tolist(),
    }
    curve = _threshold_curve(p.y_true == pos, p.scores)
    best = int(np.argmax(curve["f1"])) if curve["f1"].size else None
    result["best_threshold"] = None if best is None else curve["threshold"][best]
    result["best_f1"] = None if best is None else curve["f1"][best]
    result["threshold_curve"] = {key: value.tolist() for key, value in curve.items()}
    return _plain(result)


def _threshold_curve(positive, scores):
    """Precision, recall and F1 when predicting positive for ``scores >= threshold``."""
    from sklearn.metrics import precision_recall_curve

    if not positive.any():
        empty = np.array([])
        return {"threshold": empty, "f1": empty, "precision": empty, "recall": empty}
    precision, recall, thresholds = precision_recall_curve(positive, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return {"threshold": thresholds, "f1": f1, "precision": precision, "recall": recall}


def _plain(value):
    """Python scalars instead of NumPy ones, so that ``json.dumps`` works."""
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------- figures
def _default_pos_label(y_true, pos_label):
    """``pos_label``, or by default 1 when it is a label, else the largest label."""
    if pos_label is not None:
        return pos_label
    return 1 if 1 in y_true else np.max(y_true)


def _require_matplotlib():
    try:
        import matplotlib.figure
    except ImportError as exc:
        raise ImportError(f"skcrater's figures and reports need matplotlib: {_PLOT_EXTRA}") from exc
    return matplotlib.figure.Figure


def _figure(ax=None, **kwargs):
    """Return (figure, axes): ``ax``'s, or a new pyplot-free figure."""
    Figure = _require_matplotlib()
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=kwargs.pop("figsize", (5.0, 4.0)), layout="constrained")
    return fig, fig.add_subplot()


def _class_names(labels):
    """Readable names of ``labels``: "no crater" and "crater" for 0 and 1, else the labels."""
    labels = list(labels)
    if len(labels) == 2 and all(isinstance(v, Real) for v in labels) and set(labels) == {0, 1}:
        return ["crater" if v == 1 else "no crater" for v in labels]
    return [str(v) for v in labels]


def plot_confusion_matrix(y_true, y_pred, *, labels=None, display_labels=None, ax=None):
    """Confusion matrix with scikit-learn's display: counts and row percentages.

    Each cell shows its count and, below it, the percentage of its true class
    (row) that it holds, e.g. ``"228\\n95%"``: the diagonal gives the recall
    of each class.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    labels : array-like, default=None
        Label order (default: sorted labels).
    display_labels : list of str, default=None
        Names of ``labels`` on the axes (default: "no crater" and "crater"
        for labels 0 and 1, else the labels themselves).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from skcrater.report import plot_confusion_matrix
    >>> fig = plot_confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0])
    >>> fig.axes[0].get_title()
    'Confusion matrix'
    >>> [text.get_text().split() for text in fig.axes[0].texts]
    [['2', '100%'], ['0', '0%'], ['1', '50%'], ['1', '50%']]
    >>> [tick.get_text() for tick in fig.axes[0].get_yticklabels()]
    ['no crater', 'crater']
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    if labels is None:
        labels = np.unique(np.concatenate([np.asarray(y_true), np.asarray(y_pred)]))
    if display_labels is None:
        display_labels = _class_names(labels)
    fig, ax = _figure(ax)
    display = ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=labels,
        display_labels=display_labels,
        ax=ax,
        cmap="Blues",
        colorbar=False,
        values_format="d",
    )
    counts = display.confusion_matrix
    totals = counts.sum(axis=1)
    for (i, j), text in np.ndenumerate(display.text_):
        share = f"{100 * counts[i, j] / totals[i]:.0f}%" if totals[i] else "n/a"
        text.set_text(f"{counts[i, j]}\n{share}")
    ax.set_title("Confusion matrix")
    return fig


def plot_precision_recall(y_true, y_score, *, pos_label=None, ax=None):
    """Precision-recall curve, with average precision and the chance level.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_score : array-like of shape (n_samples,)
        Score (probability) of the positive class.
    pos_label : int, float, bool or str, default=None
        The positive label (default: 1, or the larger label).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from skcrater.report import plot_precision_recall
    >>> fig = plot_precision_recall([0, 1, 1, 0], [0.1, 0.8, 0.4, 0.3])
    >>> fig.axes[0].get_xlabel()
    'Recall (Positive label: 1)'
    """
    from sklearn.metrics import PrecisionRecallDisplay

    fig, ax = _figure(ax)
    PrecisionRecallDisplay.from_predictions(
        y_true, y_score, pos_label=pos_label, ax=ax, plot_chance_level=True, name="model"
    )
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Precision-recall curve")
    ax.legend(loc="lower left")
    return fig


def plot_threshold_f1(y_true, y_score, *, pos_label=None, threshold=None, ax=None):
    """F1, precision and recall against the decision threshold, best F1 marked.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_score : array-like of shape (n_samples,)
        Score (probability) of the positive class; a sample is predicted
        positive when its score is >= the threshold.
    pos_label : int, float, bool or str, default=None
        The positive label (default: 1, or the larger label).
    threshold : float, default=None
        The threshold in use, drawn as a dotted line.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from skcrater.report import plot_threshold_f1
    >>> fig = plot_threshold_f1([0, 1, 1, 0], [0.1, 0.8, 0.4, 0.3], threshold=0.5)
    >>> fig.axes[0].get_xlabel()
    'Decision threshold'
    """
    y_true = np.asarray(y_true)
    pos_label = _default_pos_label(y_true, pos_label)
    curve = _threshold_curve(y_true == pos_label, np.asarray(y_score, dtype=float))
    fig, ax = _figure(ax)
    t = curve["threshold"]
    ax.plot(t, curve["precision"], color="tab:blue", lw=1, alpha=0.6, label="precision")
    ax.plot(t, curve["recall"], color="tab:orange", lw=1, alpha=0.6, label="recall")
    ax.plot(t, curve["f1"], color="black", lw=2, label="F1")
    if t.size:
        best = int(np.argmax(curve["f1"]))
        ax.axvline(t[best], color="tab:green", lw=1.5, ls="--")
        ax.plot(
            t[best], curve["f1"][best], "o", color="tab:green",
            label=f"best F1 {curve['f1'][best]:.3f} at {t[best]:.3f}",
        )  # fmt: skip
    if threshold is not None:
        ax.axvline(threshold, color="grey", lw=1, ls=":", label=f"threshold in use ({threshold:g})")
    ax.set(xlabel="Decision threshold", ylabel="Score", ylim=(-0.02, 1.02))
    ax.set_title("F1 against decision threshold")
    ax.legend(loc="lower left", fontsize="small")
    return fig


def plot_score_histogram(y_true, y_score, *, pos_label=None, threshold=None, ax=None):
    """Histograms of the positive class's score, one per true class, overlaid.

    Shows at a glance how well the scores separate the classes and where
    they lie: a network whose scores never fall below 0.45 is as visible as
    a threshold that cuts through one class.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_score : array-like of shape (n_samples,)
        Score (probability) of the positive class. Probabilities are binned
        on [0, 1]; other scores (a decision function) on their range.
    pos_label : int, float, bool or str, default=None
        The positive label (default: 1, or the larger label).
    threshold : float, default=None
        The threshold in use, drawn as a dotted vertical line.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from skcrater.report import plot_score_histogram
    >>> fig = plot_score_histogram([0, 1, 1, 0], [0.1, 0.8, 0.4, 0.3], threshold=0.5)
    >>> [patch.get_label() for patch in fig.axes[0].patches]
    ['true no crater (2)', 'true crater (2)']
    """
    y_true = np.asarray(y_true)
    scores = np.asarray(y_score, dtype=float)
    pos_label = _default_pos_label(y_true, pos_label)
    positive = y_true == pos_label
    others = np.unique(y_true[~positive])
    negative = others[0] if others.size == 1 else None
    if negative is None and isinstance(pos_label, Real) and pos_label == 1:
        negative = 0  # every tile is a crater: still "no crater" for the other histogram
    if negative is None:
        names = [f"not {pos_label}", str(pos_label)]
    else:
        names = _class_names([negative, pos_label])
    probabilities = scores.size == 0 or (scores.min() >= 0 and scores.max() <= 1)
    if probabilities:
        edges = np.linspace(0.0, 1.0, 21)
    else:
        low, high = scores.min(), scores.max()
        edges = np.linspace(low, high if high > low else low + 1.0, 21)
    fig, ax = _figure(ax)
    highest = 0
    for mask, name, color in ((~positive, names[0], "tab:blue"), (positive, names[1], "tab:red")):
        counts, _, _ = ax.hist(
            scores[mask], bins=edges, histtype="step", lw=1.5, color=color,
            label=f"true {name} ({int(mask.sum())})",
        )  # fmt: skip
        highest = max(highest, counts.max(initial=0))
    if threshold is not None:
        label = f"threshold in use ({threshold:g})"
        ax.axvline(threshold, color="black", lw=1.5, ls=":", label=label)
    ax.set_ylim(0, 1.35 * max(highest, 1))  # room for the legend above the bars
    ax.set(xlabel=f"Score of the positive class ({names[1]})", ylabel="Tiles")
    if probabilities:
        ax.set_xlim(0.0, 1.0)
    ax.set_title("Scores per true class")
    ax.legend(loc="upper center", fontsize="small")
    return fig


def plot_learning_curve(estimator, *, ax=None):
    """Training and validation loss (and F1 or accuracy) per epoch, with the kept epoch marked.

    The F1 scores (``f1``, ``val_f1``), or the accuracies when the history has
    no F1, are drawn dashed against a second y axis on the right, in the
    colours of the matching losses.

    Parameters
    ----------
    estimator : fitted estimator
        One with a ``history_`` (dict of per-epoch lists with ``loss`` and
        optionally ``val_loss``, ``f1``, ``val_f1``, ``accuracy`` and
        ``val_accuracy``) and
        ``best_epoch_`` (1-based), such as
        :class:`~skcrater.CraterCNNClassifier`, or one holding such an
        estimator: a pipeline's final step, a wrapper's fitted ``estimator_``
        or a search's ``best_estimator_`` is searched for it.

    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If no ``history_`` is found.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from skcrater.report import plot_learning_curve
    >>> fitted = SimpleNamespace(history_={"loss": [0.7, 0.5, 0.4], "val_loss": [0.6, 0.5, 0.55]},
    ...                          best_epoch_=2)
    >>> fig = plot_learning_curve(fitted)
    >>> fig.axes[0].get_xlabel()
    'Epoch'
    """
    owner = _find(estimator, "history_")
    if owner is None or "loss" not in owner.history_:
        raise ValueError(f"{type(estimator).__name__} has no training history (history_).")
    history = owner.history_
    fig, ax = _figure(ax)
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], marker=".", color="C0", label="training loss")
    if history.get("val_loss"):
        ax.plot(epochs, history["val_loss"], marker=".", color="C1", label="validation loss")
    best = getattr(owner, "best_epoch_", None)
    if best is not None:
        ax.axvline(best, color="tab:green", ls="--", lw=1.5, label=f"kept epoch ({best})")
    ax.set(xlabel="Epoch", ylabel="Loss")
    ax.xaxis.get_major_locator().set_params(integer=True)
    handles, names = ax.get_legend_handles_labels()
    name, curves = _metric_curves(history)
    if curves:
        right = ax.twinx()
        for key, label, color in curves:
            right.plot(epochs, history[key], ls="--", marker=".", color=color, label=label)
        right.set(ylabel=f"{name} (dashed)")
        more, more_names = right.get_legend_handles_labels()
        handles, names = handles + more, names + more_names
    title = "Learning curve"
    if owner is not estimator and _find(estimator, "pseudo_label_counts_") is not None:
        title += " (final self-training fit)"
    ax.set_title(title)
    # below the axes: curves of two scales leave no corner free for it
    ax.legend(
        handles, names, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=3
    )
    return fig


def _metric_curves(history):
    """(axis name, [(history key, legend label, colour)]) of the metric drawn beside the loss.

    F1 when the history has it (accuracy flatters a majority-class network on
    imbalanced tiles), accuracy otherwise; the colours are the losses'.
    """
    for key, name, in_legend in (("f1", "F1", "F1"), ("accuracy", "Accuracy", "accuracy")):
        curves = [
            (prefix + key, f"{label} {in_legend}", color)
            for prefix, label, color in (("", "training", "C0"), ("val_", "validation", "C1"))
            if history.get(prefix + key)
        ]
        if curves:
            return name, curves
    return None, []


def plot_pseudo_labels(estimator, *, ax=None):
    """Pseudo-labels added per self-training round, stacked by class.

    Parameters
    ----------
    estimator : fitted estimator
        One with ``pseudo_label_counts_`` of shape (n_rounds, n_classes) and
        ``classes_``, such as :class:`~skcrater.SelfTrainingWrapper`
        (searched through pipelines, wrappers and searches, as in
        :func:`plot_learning_curve`).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If no ``pseudo_label_counts_`` is found.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from skcrater.report import plot_pseudo_labels
    >>> fitted = SimpleNamespace(pseudo_label_counts_=np.array([[30, 50], [5, 9]]),
    ...                          classes_=np.array([0, 1]))
    >>> fig = plot_pseudo_labels(fitted)
    >>> fig.axes[0].get_xlabel()
    'Self-training round'
    """
    owner = _find(estimator, "pseudo_label_counts_")
    if owner is None:
        raise ValueError(f"{type(estimator).__name__} has no pseudo_label_counts_.")
    counts = np.asarray(owner.pseudo_label_counts_).reshape(-1, len(owner.classes_))
    fig, ax = _figure(ax)
    rounds = np.arange(1, counts.shape[0] + 1)
    bottom = np.zeros(counts.shape[0])
    for column, label in enumerate(owner.classes_):
        added = counts[:, column]
        bars = ax.bar(rounds, added, bottom=bottom, label=f"class {label}")
        ax.bar_label(bars, [str(n) if n else "" for n in added], label_type="center")
        bottom += added
    if not counts.sum():
        message = "no pseudo-label added" if counts.size else "no self-training round"
        ax.text(0.5, 0.5, message, ha="center", color="grey", transform=ax.transAxes)
    ax.set_ylim(0, max(1.0, 1.08 * bottom.max(initial=0)))
    ax.set(xlabel="Self-training round", ylabel="Pseudo-labels added")
    ax.set_xticks(rounds)
    ax.set_title("Pseudo-labels per round and class")
    ax.legend()
    return fig


def plot_examples(X, y_true, y_pred, y_score, *, pos_label=None, image_shape=None, n_per_row=8):
    """A grid of tiles: true positives, false positives, false negatives, true negatives.

    Each tile is titled with its score. Mistakes are shown worst first
    (false positives by decreasing score, false negatives by increasing
    score); correct tiles are picked evenly from the most confident to the
    least. Each tile is shown with its own grey range, as in the data.

    Parameters
    ----------
    X : array-like of shape (n_samples, h*w), (n_samples, h, w) or (n_samples, h, w, 1)
        The tiles.
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    y_score : array-like of shape (n_samples,)
        Score (probability) of the positive class.
    pos_label : int, float, bool or str, default=None
        The positive label (default: 1, or the larger label).
    image_shape : tuple of int, default=None
        ``(h, w)`` of flat tiles (default: square).
    n_per_row : int, default=8
        Tiles per row.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skcrater.report import plot_examples
    >>> X = np.random.default_rng(0).integers(0, 255, (6, 64))
    >>> fig = plot_examples(X, [0, 1, 1, 0, 1, 0], [0, 1, 0, 1, 1, 0], np.linspace(0, 1, 6))
    >>> len(fig.axes)
    32
    """
    from ._images import check_images

    images, _ = check_images(X, image_shape=image_shape, estimator_name="plot_examples")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = np.asarray(y_score, dtype=float)
    pos_label = _default_pos_label(y_true, pos_label)
    true_pos, pred_pos = y_true == pos_label, y_pred == pos_label
    order = np.argsort(-scores, kind="stable")  # most crater-like first
    rows = [
        ("true positives", _spread(order[(true_pos & pred_pos)[order]], n_per_row)),
        ("false positives", order[(~true_pos & pred_pos)[order]][:n_per_row]),
        ("false negatives", order[(true_pos & ~pred_pos)[order]][::-1][:n_per_row]),
        ("true negatives", _spread(order[(~true_pos & ~pred_pos)[order]][::-1], n_per_row)),
    ]
    fig, _ = _figure(figsize=(1.25 * n_per_row, 1.5 * len(rows)))
    fig.clear()
    grid = fig.add_gridspec(len(rows), n_per_row)
    for r, (name, picked) in enumerate(rows):
        for c in range(n_per_row):
            ax = fig.add_subplot(grid[r, c])
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(picked):
                ax.imshow(images[picked[c], :, :, 0], cmap="gray", interpolation="nearest")
                ax.set_title(f"p={scores[picked[c]]:.2f}", fontsize="small")
            else:
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if c == 0:
                    ax.text(0.5, 0.5, "none", ha="center", va="center", color="grey")
            if c == 0:
                ax.set_ylabel(name)
    fig.suptitle("Example tiles (p: score of the positive class)")
    return fig


def _spread(indices, n):
    """``n`` indices picked evenly along ``indices`` (all of them if fewer)."""
    if len(indices) <= n:
        return indices
    return indices[np.linspace(0, len(indices) - 1, n).round().astype(int)]


def _find(estimator, attribute):
    """The first estimator with ``attribute`` along the fitted :func:`~skcrater._inner.walk`."""
    return find(estimator, attribute, fitted=True)[1]


def _image_shape(estimator):
    owner = _find(estimator, "image_shape_")
    return None if owner is None else tuple(owner.image_shape_)


def _decision_threshold(estimator):
    """The threshold that ``estimator.predict`` applies to the report's scores, or None.

    ``classes_[1]`` is predicted where the score (p(class 1), or the decision
    function without ``predict_proba``) is >= it (> where a threshold
    classifier's ``pos_label`` is ``classes_[0]``). The rules are in the Notes
    of :func:`write_report`.
    """
    from sklearn.model_selection import FixedThresholdClassifier, TunedThresholdClassifierCV

    axis = "predict_proba" if hasattr(estimator, "predict_proba") else "decision_function"
    steps = [inner for _, inner in walk(estimator, fitted=True)]
    for inner in steps:
        if isinstance(inner, FixedThresholdClassifier | TunedThresholdClassifierCV):
            return _threshold_on(axis, inner)
    innermost = steps[-1]
    params = innermost.get_params(deep=False) if hasattr(innermost, "get_params") else {}
    value = params.get("threshold")
    if axis == "predict_proba" and isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    return None


def _threshold_on(axis, classifier):
    """A scikit-learn threshold classifier's threshold on ``axis`` for ``classes_[1]``, or None."""
    from sklearn.model_selection import FixedThresholdClassifier

    inner = getattr(classifier, "estimator_", classifier.estimator)
    methods = classifier.response_method
    methods = ["predict_proba", "decision_function"] if methods == "auto" else [methods]
    used = next((method for method in methods if hasattr(inner, method)), None)
    if used != axis:
        return None
    if isinstance(classifier, FixedThresholdClassifier):
        pos_label, threshold = classifier.pos_label, classifier.threshold
        if threshold == "auto":
            threshold = 0.5 if used == "predict_proba" else 0.0
    else:
        # the scorer's positive label, as TunedThresholdClassifierCV.predict reads it
        pos_label = classifier._curve_scorer._get_pos_label()
        threshold = classifier.best_threshold_
    if pos_label is None or pos_label == classifier.classes_[1]:
        return float(threshold)
    # thresholded on the score of classes_[0]: 1 - p(class 1), or -decision_function
    return float(1.0 - threshold if used == "predict_proba" else -threshold)


def _figures(estimator, X, p):
    """Draw every figure that applies; return {name: Figure}."""
    neg, pos = p.labels
    threshold = _decision_threshold(estimator)
    figures = {
        "confusion_matrix": plot_confusion_matrix(p.y_true, p.y_pred, labels=p.labels),
        "precision_recall": plot_precision_recall(p.y_true, p.scores, pos_label=pos),
        "threshold_f1": plot_threshold_f1(p.y_true, p.scores, pos_label=pos, threshold=threshold),
        "score_histogram": plot_score_histogram(
            p.y_true, p.scores, pos_label=pos, threshold=threshold
        ),
    }
    if _find(estimator, "history_") is not None:
        figures["learning_curve"] = plot_learning_curve(estimator)
    if _find(estimator, "pseudo_label_counts_") is not None:
        figures["pseudo_labels"] = plot_pseudo_labels(estimator)
    image_shape = _image_shape(estimator)
    if image_shape is not None or _looks_like_tiles(X):
        figures["examples"] = plot_examples(
            X, p.y_true, p.y_pred, p.scores, pos_label=pos, image_shape=image_shape
        )
    return figures


def _looks_like_tiles(X, min_side=8):
    """Images, or flat rows that are square images of at least ``min_side`` pixels a side."""
    shape = np.shape(X)
    if len(shape) != 2:
        return len(shape) in (3, 4)
    side = math.isqrt(shape[1])
    return side >= min_side and side * side == shape[1]


# ---------------------------------------------------------------------- report
def write_report(
    estimator,
    X,
    y,
    out_dir,
    *,
    title="skcrater report",
    timings=None,
    overwrite=False,
    proba=None,
    provenance=None,
    comparison=None,
):
    """Evaluate a classifier and write an HTML report, its figures and metrics.

    Writes into ``out_dir``: ``report.html`` (self-contained: figures are
    embedded, no network access needed to view it), one PNG per figure and
    ``metrics.json``.

    Parameters
    ----------
    estimator : fitted classifier
        As in :func:`evaluate`.
    X : array-like
        Labelled evaluation samples. The grid of example tiles is drawn when
        the estimator knows its ``image_shape_``, or ``X`` holds images
        (3-D or 4-D) or flat square tiles of at least 8x8 pixels.
    y : array-like of shape (n_samples,)
        Their true labels.
    out_dir : str or path-like
        Output folder, created if needed.
    title : str, default="skcrater report"
        Title of the page.
    timings : dict of str to float, default=None
        Extra timings in seconds to list (e.g. ``{"fit": 12.5}``); the
        prediction time on ``X`` is always measured and listed.
    overwrite : bool, default=False
        Replace the files of an earlier report in ``out_dir``; when False
        they raise ``FileExistsError``. Other files are never touched.
    proba : array-like of shape (n_samples, 2), default=None
        Probabilities of ``classes_`` computed elsewhere, such as the
        out-of-fold ones of :func:`~sklearn.model_selection.cross_val_predict`
        with ``method="predict_proba"``: they are scored instead of
        ``estimator``'s own predictions, a tile being predicted positive when
        p(class 1) >= the estimator's decision threshold (0.5 when unknown;
        see the Notes). The estimator still gives the classes, the
        threshold, the fitted summary and the parameters.
    provenance : dict of str to str, default=None
        What was scored and how, shown in a Provenance table at the top of
        the page and saved in ``metrics.json``: e.g. ``{"scored": "held
        out", "data": "Xtest.npy (sha256 1a2b3c4d5e6f, 200 tiles)",
        "command": "skcrater report ..."}``. A ``"warning"`` entry is shown
        as a red banner instead, e.g. when the scored tiles are the training
        tiles. When None the page is as without it.
    comparison : dict of str to dict, default=None
        Configurations scored on the same samples, shown side by side in a
        Comparison table after the provenance and saved in
        ``metrics.json``: configuration name to a dict of column to value,
        e.g. ``{"recommended()": {"f1": 0.95, "fit s": 40.2}, "recipe":
        {"f1": 0.91, "fit s": 35.0}}``. Columns missing from a row are
        shown as n/a.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``html`` and ``metrics_json`` (paths), ``figures`` (dict of name to
        PNG path) and ``metrics`` (the dict of :func:`evaluate`).

    Raises
    ------
    ImportError
        Without matplotlib (``pip install "skcrater[plot]"``).
    FileExistsError
        If a report is in ``out_dir`` and ``overwrite`` is False.

    Notes
    -----
    The threshold figure and the ``decision_threshold`` of the fitted summary
    give the threshold that ``estimator.predict`` applies, on the axis of the
    scores (p(class 1) from ``predict_proba``; the decision function without
    it), looked up through pipelines' final steps, wrappers' fitted
    ``estimator_`` (:class:`~skcrater.SelfTrainingWrapper`...) and searches'
    ``best_estimator_`` (:class:`~skcrater.OptunaSearch`...):

    * the outermost :class:`~sklearn.model_selection.FixedThresholdClassifier`
      decides with its ``threshold`` (``"auto"``: 0.5 on probabilities, 0 on
      a decision function), or a
      :class:`~sklearn.model_selection.TunedThresholdClassifierCV` with its
      ``best_threshold_``; where their positive label is ``classes_[0]``, a
      threshold ``t`` on p(class 0) is ``1 - t`` on p(class 1);
    * otherwise the ``threshold`` parameter of the innermost classifier
      (:class:`~skcrater.CraterCNNClassifier`'s); a wrapper's own
      ``threshold``, such as the self-training one, selects pseudo-labels and
      is not a decision threshold.

    It is left out when unknown, and when a threshold classifier thresholds
    ``decision_function`` while the scores are probabilities (a decision
    function has no general conversion to a probability).

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skcrater.report import write_report
    >>> X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    >>> result = write_report(LogisticRegression().fit(X, y), X, y, tempfile.mkdtemp())
    >>> result.html.name, sorted(result.figures)
    ('report.html', ['confusion_matrix', 'precision_recall', 'score_histogram', 'threshold_f1'])
    """
    _require_matplotlib()  # fail before any work
    out_dir = Path(os.fspath(out_dir))
    ours = [out_dir / "report.html", out_dir / "metrics.json"]
    ours += [out_dir / f"{name}.png" for name in FIGURES]
    refuse_existing(ours, overwrite=overwrite)
    timings = {key: float(value) for key, value in (timings or {}).items()}
    p = _predict(estimator, X, y, proba=proba)
    metrics = _metrics(p)
    timings["predict"] = p.predict_s
    start = time.perf_counter()
    figures = {name: _png(fig) for name, fig in _figures(estimator, X, p).items()}
    timings["figures"] = time.perf_counter() - start
    info = {
        "title": title,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "estimator": type(estimator).__name__,
        "data": _describe_data(X, p),
        "fitted": _fitted_summary(estimator),
        "timings_s": timings,
        "versions": _versions(),
        "metrics": metrics,
    }
    if provenance is not None:
        info["provenance"] = {str(key): str(value) for key, value in provenance.items()}
    if comparison is not None:
        info["comparison"] = {str(name): dict(row) for name, row in comparison.items()}
    page = _html(estimator, info, figures)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in FIGURES:
        path = out_dir / f"{name}.png"
        if name in figures:
            paths[name] = write_bytes(path, figures[name], overwrite=overwrite)
        elif path.exists():
            path.unlink()  # a stale figure of an earlier report
    metrics_json = json.dumps(_plain(info), indent=2, allow_nan=False).encode()
    write_bytes(ours[1], metrics_json, overwrite=overwrite)
    write_bytes(ours[0], page.encode(), overwrite=overwrite)
    return Bunch(html=ours[0], metrics_json=ours[1], figures=paths, metrics=metrics)


def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _describe_data(X, p):
    shape = list(np.shape(X))
    return {
        "shape": shape,
        "dtype": str(getattr(X, "dtype", np.asarray(X).dtype)),
        "n_samples": int(p.y_true.size),
        "class_counts": {str(label): int(np.sum(p.y_true == label)) for label in p.labels},
    }


_FITTED = (
    "classes_",
    "image_shape_",
    "input_scale_",
    "n_epochs_",
    "best_epoch_",
    "n_iter_",
    "termination_condition_",
)


def _fitted_summary(estimator):
    """A few telling fitted attributes, looked up through pipelines and wrappers."""
    summary = {}
    for name in _FITTED:
        owner = _find(estimator, name)
        if owner is not None:
            value = getattr(owner, name)
            summary[name] = value.tolist() if isinstance(value, np.ndarray) else value
    owner = _find(estimator, "pseudo_label_counts_")
    if owner is not None:
        summary["pseudo_labels_added"] = int(np.sum(owner.pseudo_label_counts_))
    threshold = _decision_threshold(estimator)
    if threshold is not None:
        summary["decision_threshold"] = threshold
    return _plain(summary)


def _versions():
    from importlib.metadata import PackageNotFoundError, version

    import skcrater

    found = {"skcrater": skcrater.__version__}
    for package in ("scikit-learn", "numpy", "keras", "tensorflow", "matplotlib"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


# ------------------------------------------------------------------------ HTML
_CAPTIONS = {
    "confusion_matrix": (
        "Rows: true class; columns: predicted class (at the threshold in use); "
        "each cell's percentage is of its row."
    ),
    "precision_recall": "Precision against recall over all thresholds; AP = average precision.",
    "threshold_f1": "F1, precision and recall if the decision threshold were moved.",
    "score_histogram": (
        "Scores of the positive class per true class; the dotted line is the threshold in use."
    ),
    "learning_curve": (
        "Loss per epoch, and accuracy (dashed, right axis) where recorded; "
        "the weights of the marked epoch are kept."
    ),
    "pseudo_labels": "Pseudo-labels of each class added in each self-training round.",
    "examples": "Tiles sorted by score; mistakes worst first.",
}

_CARDS = (
    ("f1", "F1 (positive class)"),
    ("f1_macro", "macro F1"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("accuracy", "accuracy"),
    ("roc_auc", "ROC AUC"),
    ("average_precision", "average precision"),
    ("log_loss", "log loss"),
    ("best_f1", "best F1"),
    ("best_threshold", "best threshold"),
)


def _esc(value):
    return html.escape(str(value))


def _fmt(value):
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return "n/a" if value is None else _esc(value)


def _table(rows, header=None):
    """An HTML table; numbers (after the first column) right-aligned."""

    def cell(i, value):
        number = i > 0 and isinstance(value, int | float) and not isinstance(value, bool)
        return f'<td class="num">{_fmt(value)}</td>' if number else f"<td>{_fmt(value)}</td>"

    head = "<tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join(
        "<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table>{head}{body}</table>"


def _params(estimator, deep=True):
    """(name, text) of every parameter; nested estimators by class name."""
    from sklearn.base import BaseEstimator

    rows = []
    for name, value in sorted(estimator.get_params(deep=deep).items()):
        if isinstance(value, BaseEstimator):
            text = type(value).__name__
        elif isinstance(value, list) and name.endswith("steps"):
            text = ", ".join(step for step, _ in value)
        else:
            text = repr(value)
        rows.append((name, text))
    return rows


def _html(estimator, info, figures):
    """The page: ``templates/report.html`` filled in, with ``templates/report.css`` inlined."""
    from string import Template

    m = info["metrics"]
    return Template(_template("report.html")).substitute(
        title=_esc(info["title"]),
        css=_template("report.css"),
        estimator=_esc(info["estimator"]),
        n_samples=info["data"]["n_samples"],
        positive=_esc(m["labels"][1]),
        created=_esc(info["created"]),
        provenance=_provenance(info.get("provenance")),
        comparison=_comparison(info.get("comparison")),
        cards=_cards(m),
        figures=_embedded_figures(figures),
        **_detail_tables(estimator, info),
        versions=_esc(", ".join(f"{k} {v}" for k, v in info["versions"].items())),
    )


def _provenance(provenance):
    """The warning banner and the Provenance table; nothing without provenance."""
    if not provenance:
        return ""  # the page of a report without provenance is unchanged
    rows = [(key, value) for key, value in provenance.items() if key != "warning"]
    banner = ""
    if "warning" in provenance:
        # styled inline: the shared stylesheet, and so every other page, stays as it is
        style = "background:#fdd;border:2px solid #c00;color:#900;padding:.6em;font-weight:bold"
        banner = (
            f'<p class="warning" role="alert" style="{style}">{_esc(provenance["warning"])}</p>'
        )
    table = f'<section id="provenance"><h2>Provenance</h2>{_table(rows)}</section>' if rows else ""
    return banner + table


def _comparison(comparison):
    """The Comparison table; nothing without one."""
    if not comparison:
        return ""
    columns = list(dict.fromkeys(column for row in comparison.values() for column in row))
    rows = [(name, *(row.get(c) for c in columns)) for name, row in comparison.items()]
    table = _table(rows, header=["configuration", *columns])
    return f'<section id="comparison"><h2>Comparison</h2>{table}</section>'


def _template(name):
    """The text of a template shipped as package data in ``skcrater/templates``."""
    from importlib.resources import files

    return (files("skcrater") / "templates" / name).read_text(encoding="utf-8")


def _cards(m, cards=_CARDS):
    """One card per (key of ``m``, label) of ``cards``."""
    return "".join(
        f'<div class="card"><b>{_fmt(m[key])}</b><span>{_esc(label)}</span></div>'
        for key, label in cards
    )


def _embedded_figures(figures, captions=_CAPTIONS, wide=("examples",)):
    """One <figure> per PNG, embedded as a data URI so the page needs no other file.

    ``captions`` gives each figure's caption by name; the figures named in
    ``wide`` span the page's width.
    """
    return "".join(
        f'<figure class="{"wide" if name in wide else ""}" id="{name}">'
        f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        f"<figcaption>{_esc(captions[name])}</figcaption></figure>"
        for name, data in figures.items()
    )


def _detail_tables(estimator, info):
    """The tables of the Details section, by template field."""
    m, data = info["metrics"], info["data"]
    neg, pos = m["labels"]
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    data_rows = [
        ("samples", data["n_samples"]),
        ("shape", " x ".join(map(str, data["shape"]))),
        ("dtype", data["dtype"]),
        *((f"class {label}", count) for label, count in data["class_counts"].items()),
    ]
    metric_rows = [(key, m[key]) for key, _ in _CARDS]
    metric_rows.append(("balanced_accuracy", m["balanced_accuracy"]))
    return {
        "confusion_matrix": _table(
            [(f"true {neg}", tn, fp), (f"true {pos}", fn, tp)],
            header=("", f"predicted {neg}", f"predicted {pos}"),
        ),
        "metrics_table": _table(metric_rows, header=("metric", "value")),
        "data_table": _table(data_rows),
        "timings_table": _table(list(info["timings_s"].items())),
        "fitted_table": _table(list(info["fitted"].items())),
        "parameters_table": _table(_params(estimator), header=("parameter", "value")),
    }
