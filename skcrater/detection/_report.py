"""A self-contained HTML report of the craters a fitted detector finds in one image.

The page, its figures and ``metrics.json`` are written as
:func:`skcrater.report.write_report` writes a classifier's report, with the
same machinery: the figures are embedded as data URIs, and every file goes
through the one atomic writer.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._files import refuse_existing, write_bytes
from ..report import (
    _cards,
    _embedded_figures,
    _esc,
    _params,
    _plain,
    _png,
    _require_matplotlib,
    _table,
    _template,
    _versions,
)

__all__ = ["write_detection_report"]

#: File names of the figures, in the order of the page.
FIGURES = ("detections", "score_map", "precision_recall")

#: (key of the metrics, label) of the cards, in page order; absent keys are skipped.
_CARDS = (
    ("n_detections", "detections"),
    ("threshold", "score threshold"),
    ("craters", "catalogued craters scored"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
    ("average_precision", "average precision"),
    ("median_diameter_error", "median diameter error (relative)"),
    ("tp", "matched"),
    ("fp", "false"),
    ("fn", "missed"),
)


def write_detection_report(
    detector,
    image,
    out_dir,
    *,
    catalogue=None,
    min_diameter=None,
    max_diameter=None,
    title="skcrater detection report",
    detections=None,
    timings=None,
    overwrite=False,
):
    """Detect craters in an image and write an HTML report, its figures and metrics.

    Writes into ``out_dir``: ``report.html`` (self-contained: figures are
    embedded, no network access needed to view it), one PNG per figure and
    ``metrics.json``. The figures are the detections over the image (with a
    catalogue: matched, false and missed craters in three colours), the
    score map at scale 1 (:meth:`CraterDetector.score_map`) and, with a
    catalogue, the precision-recall curve of the detections. The page also
    gives the number of detections and, with a catalogue, the precision,
    recall, F1, average precision and median diameter error of
    :func:`match_craters`; the detector's fitted summary (threshold,
    diameter calibration, scales, stride, training windows, validation
    rows), the image's shape and type, the timings, the detector's
    parameters and the library versions.

    Parameters
    ----------
    detector : CraterDetector
        A fitted detector.
    image : 2-D array or path
        One grayscale image, as :meth:`CraterDetector.predict` takes it.
    out_dir : str or path-like
        Output folder, created if needed.
    catalogue : table or path, default=None
        The image's true craters (as :func:`check_catalogue` or
        :func:`read_catalogue` take them), to score the detections against.
        Without it the page shows the detections and the score map only.
    min_diameter, max_diameter : float or None, default=None
        With ``catalogue``: the crater diameters scored, as in
        :func:`match_craters` (None: unbounded on that side).
    title : str, default="skcrater detection report"
        Title of the page.
    detections : DataFrame, default=None
        ``detector.predict(image)[0]`` if already computed: it is used
        instead of detecting again. Its scores must all be at or above the
        detector's threshold, as ``predict`` returns them.
    timings : dict of str to float, default=None
        Timings in seconds to list (e.g. ``{"predict": 12.5}`` with
        ``detections``); the prediction (unless ``detections`` is given),
        the score map and the figures are always timed.
    overwrite : bool, default=False
        Replace the files of an earlier report in ``out_dir``; when False
        they raise ``FileExistsError``. Other files are never touched.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``html`` and ``metrics_json`` (paths), ``figures`` (dict of name to
        PNG path), ``metrics`` (the dict saved under ``"metrics"`` in
        ``metrics.json``: ``n_detections``, ``threshold`` and, with a
        catalogue, ``craters`` scored, ``tp``, ``fp``, ``fn``,
        ``precision``, ``recall``, ``f1``, ``average_precision`` and
        ``median_diameter_error``, None when nothing matched), ``detections``
        and ``match`` (the :func:`match_craters` result, None without a
        catalogue).

    Raises
    ------
    ImportError
        Without matplotlib (``pip install "skcrater[plot]"``).
    TypeError
        If ``detector`` is not a :class:`CraterDetector`.
    sklearn.exceptions.NotFittedError
        If it is not fitted.
    ValueError
        For a bad image, catalogue, detection table or diameter range.
    FileExistsError
        If a report is in ``out_dir`` and ``overwrite`` is False, or
        ``out_dir`` is a file.

    All of them are raised before anything is computed or written.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from skcrater.datasets import make_crater_scene
    >>> from skcrater.detection import CraterDetector, write_detection_report
    >>> image, catalogue = make_crater_scene(160, n_craters=25, diameter_range=(6, 30),
    ...                                      random_state=0)
    >>> pixels = make_pipeline(FunctionTransformer(lambda X: np.reshape(X, (len(X), -1))),
    ...                        LogisticRegression(max_iter=200))  # a quick tile classifier
    >>> detector = CraterDetector(pixels, window=24, diameter_range=(8, 20), max_diameter=30,
    ...                           stride=6, random_state=0).fit(image, catalogue)
    >>> result = write_detection_report(detector, image, tempfile.mkdtemp(), catalogue=catalogue)
    >>> result.html.name, sorted(result.figures)
    ('report.html', ['detections', 'precision_recall', 'score_map'])
    """
    out_dir = _check_report_destination(out_dir, overwrite=overwrite)  # before any work
    image, catalogue, detections = _check_inputs(
        detector, image, catalogue, detections, min_diameter, max_diameter
    )
    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}.")
    timings = _check_timings(timings)
    threshold, source = _threshold(detector)
    if detections is not None:
        _check_scores(detections, threshold)
    detections, scores = _detect(detector, image, detections, timings)
    match = _match(detections, catalogue, min_diameter, max_diameter)
    start = time.perf_counter()
    drawn = _figures(detector, image, detections, catalogue, match, scores, threshold)
    figures = {name: _png(fig) for name, fig in drawn.items()}
    timings["figures"] = time.perf_counter() - start
    info = {
        "title": title,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "detector": type(detector).__name__,
        "estimator": type(detector.estimator_).__name__,
        "image": {"shape": list(image.shape), "dtype": str(image.dtype)},
        "threshold": {"value": threshold, "source": source},
        "scored": _scored(catalogue, min_diameter, max_diameter),
        "fitted": _fitted(detector),
        "timings_s": timings,
        "versions": _versions(),
        "metrics": _metrics(detections, match, threshold),
    }
    info = _finite(_plain(info))
    paths = _write(out_dir, info, figures, _html(detector, info, figures), overwrite)
    return Bunch(**paths, metrics=info["metrics"], detections=detections, match=match)


# ------------------------------------------------------------------ checks
def _check_inputs(detector, image, catalogue, detections, min_diameter, max_diameter):
    """The checked (image, catalogue, detections); raise on anything unusable."""
    from sklearn.utils.validation import check_is_fitted

    from ._detector import CraterDetector, _check_images
    from ._matching import _check_range

    if not isinstance(detector, CraterDetector):
        raise TypeError(
            f"detector must be a fitted CraterDetector, got {type(detector).__name__}; "
            "skcrater.write_report reports on tile classifiers."
        )
    check_is_fitted(detector)
    images = _check_images(image, detector.window)
    if len(images) != 1:
        raise ValueError(
            f"image must be one 2-D image (or the path of one), got {len(images)} images."
        )
    (image,) = images
    catalogue = _check_catalogue(catalogue, image.shape, min_diameter, max_diameter)
    _check_range(min_diameter, max_diameter, 1.0)
    if detections is not None:
        detections = _check_detections(detections, image.shape)
    return image, catalogue, detections


def _check_catalogue(catalogue, shape, min_diameter, max_diameter):
    from .._imageio import read_catalogue
    from ._catalogue import check_catalogue

    if catalogue is None:
        if min_diameter is not None or max_diameter is not None:
            raise ValueError(
                "min_diameter and max_diameter choose the catalogued craters the detections "
                "are scored against: give a catalogue too, or leave them None."
            )
        return None
    if isinstance(catalogue, str | os.PathLike):
        return read_catalogue(catalogue, image_shape=shape)
    return check_catalogue(catalogue, image_shape=shape)


def _check_detections(detections, shape):
    from ._catalogue import check_catalogue

    table = check_catalogue(detections, image_shape=shape, name="detections", extra=("score",))
    if "score" not in table.columns:
        raise ValueError(
            "detections need a 'score' column: give the table detector.predict(image)[0] returns."
        )
    return table


def _check_scores(detections, threshold):
    """Refuse detections that ``predict`` could not have returned: the page says it shows
    every score at or above the threshold, and only those."""
    # float32 score maps: a score equal to the threshold may differ from it by a rounding
    lowest = detections["score"].min() if len(detections) else math.inf
    if lowest < threshold - 1e-6:
        raise ValueError(
            f"detections hold scores down to {lowest:.4g}, below the detector's threshold "
            f"{threshold:.4g}: give detector.predict(image)[0] of this detector, or set the "
            "threshold they were found with (detector.set_params(threshold=...))."
        )


def _check_timings(timings):
    if timings is None:
        return {}
    if not isinstance(timings, Mapping):
        raise TypeError(f"timings must be a dict of str to seconds, got {type(timings).__name__}.")
    return {str(key): float(value) for key, value in timings.items()}


def _check_report_destination(out_dir, *, overwrite, how="pass overwrite=True"):
    """Refuse, before any work, a folder where the report could not be written; return it.

    ``how`` tells the caller's user how to allow replacing an earlier report
    (the command line says ``pass --overwrite``).
    """
    _require_matplotlib()
    out_dir = Path(os.fspath(out_dir))
    # the folder, or the nearest of its parents that exists, must be a folder
    existing = next(path for path in (out_dir, *out_dir.parents) if os.path.lexists(path))
    if not existing.is_dir():
        raise FileExistsError(
            f"{existing} is a file, so the report cannot be written in {out_dir}; give a folder."
        )
    refuse_existing(_files(out_dir).values(), overwrite=overwrite, how=how)
    return out_dir


def _files(out_dir):
    """The path of every file a report writes, by name (figures without suffix)."""
    names = {"html": "report.html", "metrics_json": "metrics.json"}
    return {key: out_dir / name for key, name in names.items()} | {
        figure: out_dir / f"{figure}.png" for figure in FIGURES
    }


# ----------------------------------------------------------------- content
def _threshold(detector):
    """(the smallest score ``predict`` keeps, where it comes from)."""
    if detector.threshold != "auto":  # as CraterDetector._detect reads it
        return float(detector.threshold), "the detector's threshold parameter"
    found, chosen = detector.validation_, float(detector.threshold_)
    if not found:
        return chosen, "threshold_: 0.5, for want of validation rows"
    if not found.get("craters", 1):
        rows = found["rows"]
        return chosen, f"threshold_: 0.5, for want of catalogued craters in {rows} validation rows"
    return chosen, f"threshold_, the best F1 on {found['rows']} validation rows"


def _detect(detector, image, detections, timings):
    """(the detections, given or predicted; the score map at scale 1), timed in ``timings``."""
    if detections is None:
        start = time.perf_counter()
        detections = detector.predict(image)[0]
        timings["predict"] = time.perf_counter() - start
    start = time.perf_counter()
    scores = detector.score_map(image)
    timings["score_map"] = time.perf_counter() - start
    return detections, scores


def _match(detections, catalogue, min_diameter, max_diameter):
    from ._matching import match_craters

    if catalogue is None:
        return None
    return match_craters(
        detections, catalogue, min_diameter=min_diameter, max_diameter=max_diameter
    )


def _metrics(detections, match, threshold):
    from ._detector import _scores  # the summary validation_ keeps, for the same numbers

    metrics = {"n_detections": len(detections), "threshold": threshold}
    if match is not None:
        metrics |= {"tp": match.tp, "fp": match.fp, "fn": match.fn} | _scores(match)
    return metrics


def _scored(catalogue, min_diameter, max_diameter):
    if catalogue is None:
        return None
    return {
        "catalogued": len(catalogue),
        "min_diameter": min_diameter,
        "max_diameter": max_diameter,
    }


def _fitted(detector):
    intercept, slope = detector.diameter_calibration_
    return {
        "threshold_": detector.threshold_,
        "diameter_calibration_": [intercept, slope],
        "scales_": np.asarray(detector.scales_).tolist(),
        "stride_": detector.stride_,
        "training_counts_": dict(detector.training_counts_),
        "validation_": dict(detector.validation_),
    }


def _finite(value):
    """None for NaN and infinities, which JSON cannot hold (e.g. a median of no matches)."""
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _figures(detector, image, detections, catalogue, match, scores, threshold):
    """Draw every figure that applies; return {name: Figure}."""
    from ._figures import plot_detection_pr, plot_detections, plot_score_map

    figures = {
        "detections": plot_detections(
            image,
            detections,
            catalogue,
            match=match,
            title=f"{len(detections)} detections (score >= {threshold:.3g})",
        ),
        "score_map": plot_score_map(
            scores, stride=detector.stride_, window=detector.window, title="Crater score, scale 1"
        ),
    }
    if match is not None:
        figures["precision_recall"] = plot_detection_pr(match)
    return figures


def _write(out_dir, info, figures, page, overwrite):
    """Write the PNGs, metrics.json and the page (last); return the paths."""
    files = _files(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in FIGURES:
        if name in figures:
            written[name] = write_bytes(files[name], figures[name], overwrite=overwrite)
        elif files[name].exists():
            files[name].unlink()  # a stale figure of an earlier report
    metrics_json = json.dumps(info, indent=2, allow_nan=False).encode()
    write_bytes(files["metrics_json"], metrics_json, overwrite=overwrite)
    write_bytes(files["html"], page.encode(), overwrite=overwrite)
    return {"html": files["html"], "metrics_json": files["metrics_json"], "figures": written}


# -------------------------------------------------------------------- HTML
def _html(detector, info, figures):
    """The page: ``templates/detection.html`` filled in, with ``templates/report.css`` inlined."""
    from string import Template

    metrics = info["metrics"]
    return Template(_template("detection.html")).substitute(
        title=_esc(info["title"]),
        css=_template("report.css"),
        detector=_esc(info["detector"]),
        estimator=_esc(info["estimator"]),
        shape=" x ".join(map(str, info["image"]["shape"])),
        created=_esc(info["created"]),
        threshold_note=_threshold_note(info),
        scoring_note=_scoring_note(info),
        cards=_cards(metrics, [(key, label) for key, label in _CARDS if key in metrics]),
        figures=_embedded_figures(figures, _captions(detector, info), wide=("detections",)),
        **_detail_tables(detector, info),
        versions=_esc(", ".join(f"{k} {v}" for k, v in info["versions"].items())),
    )


def _threshold_note(info):
    threshold = info["threshold"]
    return (
        f"The detections are the score peaks at or above the threshold "
        f"<b>{threshold['value']:.4g}</b> ({_esc(threshold['source'])}); every detection with "
        "a score at or above it is shown and scored, and no other."
    )


def _scoring_note(info):
    scored = info["scored"]
    if scored is None:
        return "No catalogue was given: the detections are not scored."
    rule = "centres within half the catalogued diameter, diameters within a factor 2"
    if scored["min_diameter"] is not None or scored["max_diameter"] is not None:
        rule += "; craters within a factor 1.25 outside the range are neither missed nor false"
    return _esc(
        f"Scored against a catalogue of {scored['catalogued']} craters, for {_range(scored)} "
        f"(match_craters: {rule})."
    )


def _range(scored):
    low, high = scored["min_diameter"], scored["max_diameter"]
    if low is None and high is None:
        return "every diameter"
    if high is None:
        return f"diameters of at least {low:g} px"
    if low is None:
        return f"diameters of at most {high:g} px"
    return f"diameters from {low:g} to {high:g} px"


def _captions(detector, info):
    threshold, scored = info["threshold"]["value"], info["scored"]
    low, high = detector.diameter_range
    shown = f"Detections (score >= {threshold:.3g}) over the image"
    if scored is None:
        detections = f"{shown}; no catalogue to tell matched from false ones."
    else:
        detections = (
            f"{shown}: matched (green), false (orange) and missed catalogued craters "
            "(purple, dashed)."
        )
        if scored["min_diameter"] is not None or scored["max_diameter"] is not None:
            detections += " Craters the scored range leaves aside are not drawn."
    return {
        "detections": detections,
        "score_map": (
            f"p(crater) of the window centred on each point (step {detector.stride_} px) at "
            f"scale 1, the image's own resolution, where craters of {low:g} to {high:g} px are "
            "looked for; the larger ones are found at the smaller scales."
        ),
        "precision_recall": (
            f"Precision against recall of the detections scoring at or above each score, down "
            f"to the threshold {threshold:.3g} (the dot: all the detections shown); lower "
            "scores were not kept. AP = average precision, missed craters counted."
        ),
    }


def _detail_tables(detector, info):
    """The tables of the Details section, by template field."""
    fitted = info["fitted"]
    a, b = fitted["diameter_calibration_"]
    fitted_rows = [
        ("threshold in use", info["threshold"]["value"]),
        ("threshold_", fitted["threshold_"]),
        ("diameter_calibration_", f"a = {a:.4g}, b = {b:.4g}"),
        ("scales_", ", ".join(f"{s:.4g}" for s in fitted["scales_"])),
        ("stride_", fitted["stride_"]),
    ]
    image = info["image"]
    image_rows = [("shape", " x ".join(map(str, image["shape"]))), ("dtype", image["dtype"])]
    return {
        "fitted_table": _table(fitted_rows),
        "training_table": _table_or_none(fitted["training_counts_"], "none (frozen estimator)"),
        "validation_table": _table_or_none(fitted["validation_"], "none"),
        "image_table": _table(image_rows),
        "timings_table": _table(list(info["timings_s"].items())),
        "parameters_table": _table(_params(detector, deep=False), header=("parameter", "value")),
    }


def _table_or_none(mapping, empty):
    return _table(list(mapping.items())) if mapping else f"<p>{_esc(empty)}</p>"
