"""CraterDetector: a tile classifier turned into a crater detector for whole images."""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
import weakref
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._catalogue import check_catalogue
from ._dense import dense_scores, fully_convolutional, scan_function, total_stride
from ._peaks import map_peaks, refine_log_scale, suppress_overlaps
from ._sampling import ScaledImage, TrainingWindows, cut_windows, from_scaled, to_scaled
from ._validation import best_f1_threshold, fit_diameter_calibration, side_by_side, split_rows

__all__ = ["CraterDetector"]

#: Preprocessing modes of CraterCNNClassifier that act on each pixel alone (or
#: inside the network), so that a whole image can be scored densely.
_DENSE_PREPROCESSING = ("scale", "local")

#: Lowest score kept while detecting in the validation rows: the threshold is chosen above it.
_VALIDATION_FLOOR = 0.02

#: Columns of a detection table (before the internal ones are dropped).
_TABLE = ["x", "y", "diameter", "score"]


class CraterDetector(BaseEstimator):
    """Find craters in whole grayscale images with a tile classifier.

    ``fit`` cuts training windows from images and their crater catalogues
    and trains ``estimator`` on them; ``predict`` scans every image at
    several scales, keeps the local maxima of the crater score and returns a
    table of craters per image.

    **Windows and scales.** The classifier sees ``window x window`` tiles and
    is trained to call a tile a crater when a catalogued crater of a diameter
    in ``diameter_range`` (pixels) sits near its centre. An image pyramid
    (``scales``) brings larger craters into that range: at scale ``s`` the
    image is resized by ``s``, so a crater of diameter ``D`` appears with
    diameter ``D * s``.

    **Training windows** (at every scale):

    * positives: ``positives_per_crater`` windows around each crater of the
      range, their centres drawn uniformly within ``max_offset`` diameters
      of the crater's centre;
    * random negatives, ``negative_ratio`` times as many as positives, clear
      of catalogued craters by the rule below;
    * hard negatives (``hard_negatives=True``): windows on the rims and
      floors of craters larger than the range, windows showing a crater of
      the range off-centre (0.7 to 1.1 diameters away), and windows centred
      on craters too small or too large for the scale;
    * optionally (``hard_negative_rounds=1``), a second training round adds
      the first model's false detections on the training images.

    The rule for negatives: catalogues are incomplete below some size, so a
    catalogued crater smaller than the range (by more than ``margin``) is
    never a positive, and no negative window contains its centre; no
    negative window has the centre of a crater of the range, or within
    ``margin`` of it, within 0.6 of its diameter from the window's centre.

    **Detections.** Each scale's score map is searched for local maxima of
    at least the score threshold. A peak at scale ``s`` stands for the
    diameter ``sqrt(low * high) / s`` (the geometric middle of
    ``diameter_range``); the parabola through the scores at the two
    neighbouring scales (in log scale) moves that by ``offset`` in log
    diameter, and the diameter is ``exp(log(sqrt(low * high) / s) + a + b *
    offset)``, with ``(a, b)`` fitted on the validation rows (below; ``(0,
    1)`` without them). A detection is kept when no higher-scoring detection
    overlaps it (centres at most ``overlap`` times the larger diameter apart,
    diameters within a factor 2), across positions and scales.

    **Validation rows.** A network's scores on the craters it was trained on
    are over-confident, so ``fit`` holds the last ``validation_fraction`` of
    the rows of each training image out of training (an image too short for
    two window-high parts is used whole), detects craters there, and fits on
    them the diameter rule's ``(a, b)`` (a robust line over the matched
    craters; kept at ``(0, 1)`` with fewer than 20) and, with
    ``threshold="auto"``, the score threshold of the best F1 for craters
    from ``low`` to the largest diameter looked for. The classifier is not
    retrained on those rows. A frozen estimator is validated on the whole
    images.

    Parameters
    ----------
    estimator : classifier or None, default=None
        The tile classifier: any classifier with ``predict_proba`` that takes
        ``(n, window, window)`` tiles: floats in [0, 1] (grey levels divided
        by the image type's maximum), times its ``input_scale_`` if it has
        one (a :class:`~skcrater.CraterCNNClassifier` fitted on 0..255
        tiles is given 0..255 floats). None uses
        ``CraterCNNClassifier.recommended(preprocessing="local",
        class_weight="balanced", upsample_to=None)``. An
        already fitted classifier in :class:`sklearn.frozen.FrozenEstimator`
        is used as it is (``fit`` then only checks its input). A
        :class:`~skcrater.CraterCNNClassifier` with 'valid' padding, a
        pointwise preprocessing (``"scale"`` or ``"local"``) and windows it
        does not enlarge (``upsample_to``) is evaluated fully convolutionally
        over the image, and so is a soft
        :class:`~sklearn.ensemble.VotingClassifier` of such CNNs (the
        weighted mean of their score maps, as its ``predict_proba`` is);
        anything else is given the cut windows.
    window : int, default=48
        Side of the tiles, in pixels.
    diameter_range : tuple of float, default=(16, 40)
        Crater diameters (pixels, at the scan's scale) the window detects.
    scales : sequence of float or None, default=None
        Pyramid levels. None: ``r ** -k`` for ``k = 0, 1, ...`` with
        ``r = sqrt(high / low)``, until craters of ``max_diameter`` pixels
        are in range.
    max_diameter : float, default=300
        Largest crater to look for when ``scales`` is None.
    stride : int or None, default=None
        Step of the scan in pixels (at each scale). None uses the network's
        own step (the product of its pooling sizes) for a CNN (a vote's
        first network's), 4 otherwise.
    threshold : float or "auto", default="auto"
        Smallest score of a detection. ``"auto"``: the best-F1 threshold on
        the validation rows (0.5, with a warning, when no image is tall
        enough for them or they hold no catalogued crater of the range).
    positives_per_crater : int, default=4
        Positive windows cut around each catalogued crater, per scale.
    max_offset : float, default=0.15
        Largest distance of a positive window's centre from the crater's,
        in crater diameters.
    negative_ratio : float, default=3.0
        Random negative windows per positive window.
    hard_negatives : bool, default=True
        Add the hard negatives listed above.
    hard_negative_rounds : int, default=0
        Rounds of retraining with the model's own false detections on the
        training images added as negatives.
    margin : float, default=1.25
        Factor around ``diameter_range`` within which craters are neither
        positives nor allowed near a negative's centre.
    overlap : float, default=0.5
        Suppression distance between detections, in diameters.
    validation_fraction : float in [0, 0.5), default=0.2
        Fraction of each training image's rows held out of training to fit
        the threshold and the diameter rule; 0 trains on all rows (then
        ``threshold`` must be a number, unless the estimator is frozen).
    band_pixels : int, default=1048576
        The dense scan runs over bands of about this many pixels, so that
        memory stays bounded whatever the image size.
    random_state : int, RandomState instance or None, default=None
        Seeds the training windows (and the estimator, if it has a
        ``random_state`` left at None).
    verbose : int, default=0
        1: a progress bar over the rows of the score maps while detecting
        (:class:`keras.utils.Progbar`), and the training windows; 2: also
        one line per pyramid level.

    Attributes
    ----------
    estimator_ : classifier
        The fitted tile classifier.
    scales_ : ndarray of float
        The pyramid levels used, largest first.
    stride_ : int
        The scan step used.
    training_counts_ : dict of str to int
        Training windows of each kind.
    threshold_ : float
        The score threshold used by ``predict``: ``threshold``, or the one
        chosen on the validation rows.
    diameter_calibration_ : tuple of float
        ``(a, b)`` of the diameter rule.
    validation_ : dict
        What the validation rows gave at ``threshold_`` (``rows``,
        ``craters`` scored, ``precision``, ``recall``, ``f1``,
        ``average_precision``, ``median_diameter_error`` and the same
        before calibration); empty without validation rows.

    Examples
    --------
    >>> from skcrater.detection import CraterDetector
    >>> CraterDetector(window=32, diameter_range=(10, 24)).get_params()["window"]
    32
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "window": [Interval(Integral, 4, None, closed="left")],
        "diameter_range": [tuple, list],
        "scales": ["array-like", None],
        "max_diameter": [Interval(Real, 0, None, closed="neither")],
        "stride": [Interval(Integral, 1, None, closed="left"), None],
        "threshold": [Interval(Real, 0, 1, closed="both"), StrOptions({"auto"})],
        "positives_per_crater": [Interval(Integral, 1, None, closed="left")],
        "max_offset": [Interval(Real, 0, 0.5, closed="both")],
        "negative_ratio": [Interval(Real, 0, None, closed="left")],
        "hard_negatives": ["boolean"],
        "hard_negative_rounds": [Interval(Integral, 0, None, closed="left")],
        "margin": [Interval(Real, 1, None, closed="left")],
        "overlap": [Interval(Real, 0, None, closed="neither")],
        "validation_fraction": [Interval(Real, 0, 0.5, closed="left")],
        "band_pixels": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        window=48,
        diameter_range=(16, 40),
        scales=None,
        max_diameter=300,
        stride=None,
        threshold="auto",
        positives_per_crater=4,
        max_offset=0.15,
        negative_ratio=3.0,
        hard_negatives=True,
        hard_negative_rounds=0,
        margin=1.25,
        overlap=0.5,
        validation_fraction=0.2,
        band_pixels=2**20,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.window = window
        self.diameter_range = diameter_range
        self.scales = scales
        self.max_diameter = max_diameter
        self.stride = stride
        self.threshold = threshold
        self.positives_per_crater = positives_per_crater
        self.max_offset = max_offset
        self.negative_ratio = negative_ratio
        self.hard_negatives = hard_negatives
        self.hard_negative_rounds = hard_negative_rounds
        self.margin = margin
        self.overlap = overlap
        self.validation_fraction = validation_fraction
        self.band_pixels = band_pixels
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, images, catalogues):
        """Cut training windows from catalogued images and train the classifier.

        Parameters
        ----------
        images : 2-D array, path, or list of them
            Grayscale images (integers or floats; paths to PGM, PNG or TIFF
            files, or Zarr stores). Dask arrays and Zarr stores are read into
            memory: training images are small.
        catalogues : table, path, or list of them
            One crater table per image (``x``, ``y``, ``diameter`` in pixels;
            DataFrames, 3-column arrays or CSV paths); may be empty.

        Returns
        -------
        self : CraterDetector
            The fitted detector.
        """
        images = _check_images(images, self.window)
        catalogues = _check_catalogues(catalogues, images)
        self.scales_ = self._check_scales()
        rng = check_random_state(self.random_state)
        estimator = self._make_estimator(rng)
        self.diameter_calibration_ = (0.0, 1.0)
        self.threshold_ = 0.5 if self.threshold == "auto" else float(self.threshold)
        if type(estimator).__name__ == "FrozenEstimator":
            self.estimator_, self.training_counts_ = estimator, {}
            self.stride_ = self._scan_stride()
            held_out = list(zip(images, catalogues, strict=True))
        else:
            train, held_out = self._split(images, catalogues)
            self._train(estimator, train, rng)
        self.validation_ = self._validate(held_out)
        return self

    def _split(self, images, catalogues):
        """(training parts, validation parts) of the catalogued images."""
        train, held_out = [], []
        for pair in zip(images, catalogues, strict=True):
            parts = None
            if self.validation_fraction > 0:
                parts = split_rows(*pair, self.validation_fraction, self.window)
            train.append(pair if parts is None else parts[0])
            held_out.extend([] if parts is None else [parts[1]])
        if self.threshold == "auto" and not held_out:
            if self.validation_fraction == 0:
                raise ValueError(
                    "threshold='auto' is chosen on validation rows, but validation_fraction=0 "
                    "leaves none: give a number as threshold, or validation_fraction > 0."
                )
            warnings.warn(
                f"No training image is tall enough for validation rows (each part must be at "
                f"least {self.window} rows with validation_fraction={self.validation_fraction}),"
                " so threshold='auto' fell back to 0.5 and the diameters are not calibrated.",
                UserWarning,
                stacklevel=3,
            )
        return train, held_out

    def _train(self, estimator, parts, rng):
        images, catalogues = (list(t) for t in zip(*parts, strict=True))
        tiles, labels, counts = self._training_windows(images, catalogues, rng)
        self._fit_estimator(estimator, tiles, labels)
        for _ in range(self.hard_negative_rounds):
            extra = self._false_detections(images, catalogues)
            counts["own_false_detections"] = counts.get("own_false_detections", 0) + len(extra)
            tiles = np.concatenate([tiles, extra])
            labels = np.concatenate([labels, np.zeros(len(extra), dtype=labels.dtype)])
            self._fit_estimator(estimator, tiles, labels)
        self.training_counts_ = counts

    def _fit_estimator(self, estimator, tiles, labels):
        self.estimator_ = clone(estimator).fit(tiles, labels)
        self.stride_ = self._scan_stride()

    def _validate(self, held_out):
        """Fit the diameter rule and the threshold on the validation parts; their scores."""
        from ._matching import match_craters

        if not held_out:
            return {}
        widths = [image.shape[1] for image, _ in held_out]
        gap = 4 * max([self._largest(), *(c["diameter"].max() for _, c in held_out if len(c))])
        found = [self._candidates(image, _VALIDATION_FLOOR) for image, _ in held_out]
        found = side_by_side(found, widths, gap)
        truth = side_by_side([catalogue for _, catalogue in held_out], widths, gap)
        low, _ = self._check_range()
        scored = dict(min_diameter=low, max_diameter=self._largest(), margin=self.margin)

        def at(threshold, calibration):
            table = self._finish(found[found["score"] >= threshold], calibration)
            return table, match_craters(table[_TABLE], truth, **scored)

        raw, result = at(_VALIDATION_FLOOR, (0.0, 1.0))
        self.diameter_calibration_ = fit_diameter_calibration(raw, truth, result.matches)
        _, result = at(_VALIDATION_FLOOR, self.diameter_calibration_)
        if self.threshold == "auto":
            if result.tp + result.fn == 0:
                warnings.warn(
                    "The validation rows hold no catalogued crater of the range, so "
                    "threshold='auto' fell back to 0.5.",
                    UserWarning,
                    stacklevel=3,
                )
            self.threshold_ = best_f1_threshold(result, default=0.5)
        summary = {"rows": int(sum(image.shape[0] for image, _ in held_out))}
        for key, calibration in (("", self.diameter_calibration_), ("uncalibrated_", (0.0, 1.0))):
            _, result = at(self.threshold_, calibration)
            summary.update({f"{key}{k}": v for k, v in _scores(result).items()})
        return summary

    def _largest(self):
        """The largest crater diameter the pyramid looks for."""
        return self._check_range()[1] / float(np.min(self.scales_))

    def _check_scales(self):
        low, high = self._check_range()
        if self.scales is None:
            step = np.sqrt(high / low)
            n = int(np.ceil(np.log(max(self.max_diameter, high) / high) / np.log(step))) + 1
            return step ** -np.arange(n)
        scales = np.asarray(self.scales, dtype=np.float64).ravel()
        if not scales.size or not np.isfinite(scales).all() or (scales <= 0).any():
            raise ValueError(f"scales must be positive numbers, got {self.scales!r}.")
        return np.sort(np.unique(scales))[::-1]

    def _check_range(self):
        try:
            low, high = (float(v) for v in self.diameter_range)
        except (TypeError, ValueError):
            raise ValueError(
                f"diameter_range must be two numbers (low, high), got {self.diameter_range!r}."
            ) from None
        if not 0 < low < high or high > self.window:
            raise ValueError(
                f"diameter_range must satisfy 0 < low < high <= window ({self.window}), got "
                f"{self.diameter_range!r}."
            )
        return low, high

    def _make_estimator(self, rng):
        if self.estimator is not None:
            return self.estimator
        return default_classifier(random_state=rng.randint(np.iinfo(np.int32).max))

    def _training_windows(self, images, catalogues, rng):
        tiles, labels, counts = [], [], {}
        for image, catalogue in zip(images, catalogues, strict=True):
            for scale in self.scales_:
                level = self._level(image, scale)
                if min(level.shape) < self.window:
                    break
                scaled = level.array()
                sampler = TrainingWindows(
                    catalogue,
                    scale=scale,
                    shape=scaled.shape,
                    window=self.window,
                    diameter_range=self._check_range(),
                    margin=self.margin,
                    rng=np.random.default_rng(rng.randint(np.iinfo(np.int32).max)),
                )
                for kind, label, centres in self._centres(sampler):
                    cut, _ = cut_windows(scaled, centres, self.window)
                    tiles.append(cut)
                    labels.append(np.full(len(cut), label, dtype=np.int64))
                    counts[kind] = counts.get(kind, 0) + len(cut)
        tiles = np.concatenate(tiles) if tiles else np.zeros((0, self.window, self.window))
        labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
        if not (labels == 1).any() or not (labels == 0).any():
            raise ValueError(
                f"The catalogues give {int((labels == 1).sum())} positive and "
                f"{int((labels == 0).sum())} negative training windows; both are needed. "
                f"Are there catalogued craters of {self.diameter_range} pixels (at some scale)?"
            )
        if self.verbose:
            print(f"CraterDetector: training windows {counts}", file=sys.stderr)
        return tiles, labels, counts

    def _centres(self, sampler):
        positives = sampler.positives(self.positives_per_crater, self.max_offset)
        yield "positive", 1, positives
        n_random = int(round(self.negative_ratio * max(len(positives), 1)))
        yield "random_negative", 0, sampler.random_negatives(n_random)
        if self.hard_negatives:
            yield "rim_or_floor", 0, sampler.rims_and_floors(1)
            yield "off_centre", 0, sampler.off_centre(1)
            yield "wrong_scale", 0, sampler.wrong_scale()

    def _false_detections(self, images, catalogues):
        from ._matching import match_craters

        tiles = []
        for image, catalogue in zip(images, catalogues, strict=True):
            found = self._detect(image)
            result = match_craters(found[_TABLE], catalogue, margin=self.margin)
            false = found[result.detection_status == "fp"]
            for scale in self.scales_:
                # the level at which each false crater was seen
                at = false[np.isclose(false["scale"], scale)]
                if len(at):
                    scaled = self._level(image, scale).array()
                    centres = to_scaled(at[["x", "y"]].to_numpy(), scale)
                    tiles.append(cut_windows(scaled, centres, self.window)[0])
        if not tiles:
            return np.zeros((0, self.window, self.window), dtype=np.float32)
        return np.concatenate(tiles)

    # -------------------------------------------------------------- predict
    def predict(self, images):
        """Detect craters.

        Parameters
        ----------
        images : 2-D array, dask.array.Array, path, or list of them
            Grayscale images, as in :meth:`fit`. A 2-D
            :class:`dask.array.Array`, a Zarr store (a ``.zarr`` path) or,
            with Dask installed, a TIFF file is scanned chunk by chunk on
            Dask's current scheduler (threads, or a ``dask.distributed``
            client), so that a mosaic need not fit in memory; the craters
            are the same as the whole image in memory gives. See
            :ref:`detection-dask`.

        Returns
        -------
        craters : list of pandas.DataFrame
            One table per image, highest score first: ``x`` (column), ``y``
            (row), ``diameter`` (pixels of the image) and ``score``.

        Raises
        ------
        ValueError
            For an image that is not 2-D, not numeric, smaller than the
            window, holds NaN or infinite pixels, or a Dask array with chunks
            smaller than the window.
        ImportError
            For a Zarr path without Dask installed.
        """
        check_is_fitted(self)
        images = _check_images(images, self.window, lazy=True)
        return [
            self._detect(image, f"images[{k}]")[_TABLE].reset_index(drop=True)
            for k, image in enumerate(images)
        ]

    def score_map(self, image, scale=1.0):
        """Crater score of every window position of one image.

        Parameters
        ----------
        image : 2-D array, dask.array.Array or path
            A grayscale image; a Dask array, a Zarr store or (with Dask
            installed) a TIFF file is scanned chunk by chunk, as in
            :meth:`predict`.
        scale : float, default=1.0
            Pyramid level: the image is resized by ``scale`` first.

        Returns
        -------
        scores : ndarray or dask.array.Array of shape (n_rows, n_cols)
            Element ``[i, j]`` is the probability of a crater in the window
            whose top-left pixel is ``(i * stride_, j * stride_)`` in the
            image at that scale. A lazy image gives a lazy Dask array (one
            chunk per chunk of the image), whose values are the ones the
            image in memory gives.
        """
        check_is_fitted(self)
        if not isinstance(scale, Real) or isinstance(scale, bool) or not scale > 0:
            raise ValueError(f"scale must be a positive number, got {scale!r}.")
        (image,) = _check_images(image, self.window, lazy=True)
        level = self._level(image, float(scale))
        if min(level.shape) < self.window:
            raise ValueError(
                f"At scale {scale} the image is {level.shape[0]}x{level.shape[1]} pixels, "
                f"smaller than the {self.window}-pixel window."
            )
        if _is_dask_array(image):
            from ._dask import dask_score_map

            return dask_score_map(self, image, float(scale), "image")
        return self._scan(level, None)

    def _detect(self, image, name="image"):
        """All detections of one image (with the ``scale`` they were found at)."""
        threshold = self.threshold_ if self.threshold == "auto" else float(self.threshold)
        if _is_dask_array(image):
            from ._dask import dask_candidates

            candidates = dask_candidates(self, image, threshold, name)
        else:
            candidates = self._candidates(image, threshold)
        return self._finish(candidates, self.diameter_calibration_)

    def _candidates(self, image, threshold):
        """The peaks of every scale's map at or above ``threshold``, before suppression.

        Rows come level by level (largest scale first), each level's highest
        score first, ties in raster order (:func:`candidate_order`).
        """
        levels = {scale: self._level(image, scale) for scale in self.scales_}
        levels = {s: level for s, level in levels.items() if min(level.shape) >= self.window}
        maps = self._scan_levels(levels, self._progress(levels.values()))
        return self._peak_table(maps, threshold)

    def _scan_levels(self, levels, progress):
        """``{scale: ScoreMap}`` of ``{scale: level}``, the levels largest first.

        A level may be a piece of the whole level (the Dask path): its
        ``cell_origin`` says which cell of the whole map its first one is.
        """
        maps = {}
        for k, (scale, level) in enumerate(levels.items()):
            start = time.perf_counter()
            origin = getattr(level, "cell_origin", (0, 0))
            maps[scale] = ScoreMap(self._scan(level, progress), origin)
            if self.verbose > 1:
                print(
                    f"CraterDetector: scale {k + 1}/{len(self.scales_)} ({scale:.3g}, "
                    f"{level.shape[0]}x{level.shape[1]} px) scanned in "
                    f"{time.perf_counter() - start:.1f} s",
                    file=sys.stderr,
                )
        return maps

    def _peak_table(self, maps, threshold):
        import pandas as pd

        rows = [self._peaks(maps, k, threshold) for k in range(len(maps))]
        return pd.concat(rows, ignore_index=True) if rows else _empty_table()

    def _progress(self, levels):
        """A progress bar over the rows of all levels' score maps, or None."""
        if not self.verbose:
            return None
        from keras.utils import Progbar

        rows = sum((level.shape[0] - self.window) // self.stride_ + 1 for level in levels)
        bar = Progbar(rows, unit_name="row")
        return lambda done: bar.add(done)

    def _finish(self, table, calibration):
        """Calibrated diameters, overlaps suppressed, highest score first."""
        intercept, slope = calibration
        log_d = table["log_level"] + intercept + slope * table["log_offset"]
        table = table.assign(diameter=np.exp(log_d.to_numpy(dtype=np.float64)))
        keep = suppress_overlaps(
            table["x"].to_numpy(),
            table["y"].to_numpy(),
            table["diameter"].to_numpy(),
            table["score"].to_numpy(),
            overlap=self.overlap,
        )
        return (
            table[keep].sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
        )

    def _peaks(self, maps, k, threshold):
        import pandas as pd

        scales = list(maps)
        scale, (scores, (row0, col0)) = scales[k], maps[scales[k]]
        low, high = self._check_range()
        rows, cols, values = map_peaks(scores, threshold=threshold, min_distance=self._radius())
        rows, cols = rows + row0, cols + col0
        centre = (self.window - 1) / 2
        x = from_scaled(cols * self.stride_ + centre, scale)
        y = from_scaled(rows * self.stride_ + centre, scale)
        log_scale = refine_log_scale(*self._neighbours(maps, k, x, y, values))
        return pd.DataFrame(
            {
                "x": x,
                "y": y,
                "score": values.astype(np.float64),
                "scale": scale,
                # the level's diameter, and how far the parabola across levels moves it
                "log_level": np.full(len(x), np.log(np.sqrt(low * high) / scale)),
                "log_offset": np.log(scale) - log_scale,
            }
        )

    def _neighbours(self, maps, k, x, y, values):
        """(log scales, scores) of each peak at levels k-1, k, k+1 (NaN where absent)."""
        scales = list(maps)
        logs = np.full((len(values), 3), np.nan)
        found = np.full((len(values), 3), np.nan)
        centre = (self.window - 1) / 2
        for column, level in enumerate((k - 1, k, k + 1)):
            if not 0 <= level < len(scales):
                continue
            scale, (scores, (row0, col0)) = scales[level], maps[scales[level]]
            i = np.rint((to_scaled(y, scale) - centre) / self.stride_).astype(np.intp) - row0
            j = np.rint((to_scaled(x, scale) - centre) / self.stride_).astype(np.intp) - col0
            inside = (i >= 0) & (i < scores.shape[0]) & (j >= 0) & (j < scores.shape[1])
            logs[:, column] = np.log(scale)
            found[inside, column] = scores[i[inside], j[inside]]
        found[:, 1] = values
        return logs, found

    def _radius(self):
        """Fewest map cells between two peaks of one level (:func:`map_peaks`)."""
        low, high = self._check_range()
        return 0.25 * np.sqrt(low * high) / self.stride_

    # ----------------------------------------------------------------- scan
    def _scan_stride(self):
        if self.stride is not None:
            return int(self.stride)
        members = _dense_networks(self.estimator_)
        return total_stride(members[0][0]) if members else 4

    @staticmethod
    def _level(image, scale):
        """The pyramid level of a checked image, in the [0, 1] grey levels of the tiles."""
        return ScaledImage(image, scale, divisor=_divisor(image))

    def _scan(self, level, progress):
        members = _dense_networks(self.estimator_)
        if members is None:
            return self._scan_windows(level, progress)
        total, out = sum(weight for _, weight in members), 0.0
        for number, (network, weight) in enumerate(members):
            dense, period = _dense_version(network)
            # the network sees tiles divided by the classifier's input_scale_, and
            # the classifier is given the level times input_scale_: the level itself
            scores = dense_scores(
                dense,
                level,
                window=self.window,
                stride=self.stride_,
                period=period,
                band_pixels=self.band_pixels,
                # a vote's progress counts its first network's rows, once per level
                progress=progress if number == 0 else None,
            )
            # the soft vote's own average (np.average), so dense and cut windows agree
            out = out + scores * np.float32(weight / total)
        return out.astype(np.float32, copy=False)

    def _scan_windows(self, level, progress):
        """Cut every window and ask ``predict_proba`` (any classifier), band by band."""
        step, window = self.stride_, self.window
        n_rows = (level.shape[0] - window) // step + 1
        n_cols = (level.shape[1] - window) // step + 1
        out = np.empty((n_rows, n_cols), dtype=np.float32)
        per_band = max(1, self.band_pixels // (window**2 * n_cols))
        units = np.float32(network_scale(self.estimator_))
        for start in range(0, n_rows, per_band):
            stop = min(start + per_band, n_rows)
            rows = level.rows(start * step, (stop - 1) * step + window)
            view = np.lib.stride_tricks.sliding_window_view(rows, (window, window))
            band = view[::step, ::step][:, :n_cols].reshape(-1, window, window)
            proba = self.estimator_.predict_proba(band * units)[:, 1]
            out[start:stop] = proba.reshape(-1, n_cols)
            if progress is not None:
                progress(stop - start)
        return out


class ScoreMap(NamedTuple):
    """Scores of a level's windows, or of a block of them that starts at cell ``origin``."""

    scores: np.ndarray
    origin: tuple


def candidate_order(table):
    """``table``'s rows in the order :meth:`CraterDetector._candidates` gives them.

    Suppression lets the earlier of two equal scores win, so candidates
    gathered in another order (chunk by chunk) are put back in this one.
    """
    return table.sort_values(
        ["scale", "score", "y", "x"], ascending=[False, False, True, True], kind="stable"
    ).reset_index(drop=True)


def default_classifier(**params):
    """The tile classifier of ``CraterDetector(estimator=None)``, unfitted.

    ``CraterCNNClassifier.recommended()`` with local contrast normalisation
    (so that it scans whole images densely), balanced classes (about four
    negative windows per positive, by design) and windows kept at their own
    size (``upsample_to=None``: windows below 48 px enlarged would rule out
    the dense scan); ``params`` override any of these.
    """
    from ..cnn import CraterCNNClassifier

    defaults = dict(preprocessing="local", class_weight="balanced", upsample_to=None)
    return CraterCNNClassifier.recommended(**{**defaults, **params})


def seed_vote(estimator, seeds):
    """A soft :class:`~sklearn.ensemble.VotingClassifier` of clones of ``estimator``, one per seed.

    The clones differ only in ``random_state``; the vote averages their
    p(crater), and a detector scans it densely when ``estimator`` scans so
    (at the cost of one scan per network). One seed gives ``estimator``'s
    clone itself, not a vote of one.
    """
    from sklearn.ensemble import VotingClassifier

    seeds = list(seeds)
    if len(seeds) == 1:
        return clone(estimator).set_params(random_state=seeds[0])
    voters = [(f"seed{s}", clone(estimator).set_params(random_state=s)) for s in seeds]
    return VotingClassifier(voters, voting="soft")


#: The dense rewrite of each fitted network, built once and dropped with the network.
_DENSE_VERSIONS = weakref.WeakKeyDictionary()
# the chunks of a Dask image are scanned on several threads at once, each wanting the rewrite
_DENSE_LOCK = threading.Lock()


def _dense_version(network):
    """(compiled fully convolutional network, its step) of a fitted Keras network, cached."""
    with _DENSE_LOCK:
        if network not in _DENSE_VERSIONS:
            dense = scan_function(fully_convolutional(network))
            _DENSE_VERSIONS[network] = (dense, total_stride(network))
        return _DENSE_VERSIONS[network]


def network_scale(estimator):
    """The grey value a CNN maps to 1 before its network (``input_scale_``); 1 otherwise.

    Tiles are given to the classifier in its own units: the level's [0, 1]
    grey levels times this (0..255 for a CNN fitted on 8-bit tiles).
    """
    inner = getattr(estimator, "estimator", estimator)
    voters = _soft_voters(inner)
    if voters is None:
        return float(getattr(inner, "input_scale_", 1.0))
    # a vote passes the same tiles to every voter: they must read them alike
    scales = {network_scale(voter) for voter, _ in voters}
    if len(scales) > 1:
        raise ValueError(
            f"The voters of the estimator's VotingClassifier were fitted on tiles of different "
            f"grey scales (input_scale_ {sorted(scales)}); fit them on tiles of one scale."
        )
    return scales.pop() if scales else 1.0


def _divisor(image):
    """What the detector divides pixels by: the type's maximum for integers."""
    return float(np.iinfo(image.dtype).max) if image.dtype.kind in "iu" else 1.0


def _dense_networks(estimator):
    """``[(network, weight), ...]`` of a classifier that can be evaluated densely, else None.

    One network of weight 1 for a CNN; for a soft
    :class:`~sklearn.ensemble.VotingClassifier` whose every voter is one, each
    voter's network and vote weight, so that its score map is the weighted
    mean of theirs, as its ``predict_proba`` is.
    """
    inner = getattr(estimator, "estimator", estimator)  # through a FrozenEstimator
    voters = _soft_voters(inner)
    if voters is None:
        model = _dense_network(inner)
        return None if model is None else [(model, 1.0)]
    members = [(_dense_network(voter), weight) for voter, weight in voters]
    return members if members and all(model is not None for model, _ in members) else None


def _soft_voters(vote):
    """``[(fitted voter, weight), ...]`` of a fitted soft VotingClassifier, else None."""
    from sklearn.ensemble import VotingClassifier

    if type(vote) is not VotingClassifier or vote.voting != "soft":
        return None
    if not hasattr(vote, "estimators_"):
        return None
    kept = [i for i, (_, est) in enumerate(vote.estimators) if est != "drop"]
    weights = [1.0] * len(kept) if vote.weights is None else [vote.weights[i] for i in kept]
    return list(zip(vote.estimators_, map(float, weights), strict=True))


def _dense_network(estimator):
    """The Keras network of a CNN that can be evaluated densely, else None."""
    inner = getattr(estimator, "estimator", estimator)  # through a FrozenEstimator
    model = getattr(inner, "model_", None)
    if model is None or getattr(inner, "preprocessing", None) not in _DENSE_PREPROCESSING:
        return None
    # a network that enlarges its tiles (upsample_to) sees pixels a whole image does not have
    if any(type(layer).__name__ == "Resizing" for layer in model.layers):
        return None
    return model if getattr(inner, "padding", "valid") == "valid" else None


def _empty_table():
    import pandas as pd

    columns = ("x", "y", "score", "scale", "log_level", "log_offset")
    return pd.DataFrame({c: np.zeros(0) for c in columns})


def _scores(result):
    """The figures of a ``match_craters`` result worth keeping."""
    errors = result.matches.loc[result.matches["scored"], "diameter_error"].abs()
    return {
        "craters": int(result.tp + result.fn),
        "precision": float(result.precision),
        "recall": float(result.recall),
        "f1": float(result.f1),
        "average_precision": float(result.average_precision),
        "median_diameter_error": float(errors.median()) if len(errors) else float("nan"),
    }


def _is_dask_array(x):
    # without dask imported, nothing can be a dask array: no need to import it to ask
    array = sys.modules.get("dask.array")
    return array is not None and isinstance(x, array.Array)


def _check_images(images, window, lazy=False):
    """A list of checked 2-D images, as given (integers are divided by their type's
    maximum band by band, when they are scanned).

    ``lazy``: Dask arrays stay lazy (checked without computing them) and
    Zarr stores and TIFF files are opened lazily (TIFF only with Dask
    installed); otherwise everything is read into memory.
    """
    from .._imageio import open_image

    if (
        isinstance(images, str | os.PathLike)
        or (isinstance(images, np.ndarray) and images.ndim == 2)
        or _is_dask_array(images)
    ):
        images = [images]
    if isinstance(images, np.ndarray) and images.ndim == 3 and images.shape[-1] in (3, 4):
        raise ValueError(
            f"images has shape {images.shape}: a colour image? skcrater needs 2-D grayscale "
            "images; convert with e.g. image.mean(axis=-1) or PIL's .convert('L')."
        )
    out = []
    for k, image in enumerate(images):
        if isinstance(image, str | os.PathLike):
            image = open_image(image, lazy=lazy)
        if _is_dask_array(image) and lazy:
            from ._dask import check_dask_image

            out.append(check_dask_image(image, window, f"images[{k}]"))
        else:
            out.append(_check_image(image, window, f"images[{k}]"))
    if not out:
        raise ValueError("images is empty: give at least one image.")
    return out


def _check_image(image, window, name):
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        raise ValueError(
            f"{name} has shape {image.shape}: a colour image? Convert it to one grayscale "
            "channel, e.g. image.mean(axis=-1) or PIL's .convert('L')."
        )
    if image.ndim != 2:
        raise ValueError(f"{name} must be a 2-D grayscale image; got shape {image.shape}.")
    if image.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold numbers (integers or floats); got dtype {image.dtype}.")
    if min(image.shape) < window:
        raise ValueError(
            f"{name} is {image.shape[0]}x{image.shape[1]} pixels, smaller than the "
            f"{window}-pixel window."
        )
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError(f"{name} holds NaN or infinite pixels.")
    return image


def _check_catalogues(catalogues, images):
    from .._imageio import read_catalogue

    single = (
        isinstance(catalogues, str | os.PathLike)
        or hasattr(catalogues, "columns")
        or catalogues is None
        or (isinstance(catalogues, np.ndarray) and catalogues.ndim == 2)
    )
    if single:
        catalogues = [catalogues]
    catalogues = list(catalogues)
    if len(catalogues) != len(images):
        raise ValueError(
            f"Got {len(images)} image(s) but {len(catalogues)} catalogue(s); give one "
            "catalogue per image."
        )
    out = []
    for k, (catalogue, image) in enumerate(zip(catalogues, images, strict=True)):
        if isinstance(catalogue, str | os.PathLike):
            out.append(read_catalogue(catalogue, image_shape=image.shape))
        else:
            out.append(check_catalogue(catalogue, image_shape=image.shape, name=f"catalogues[{k}]"))
    return out
