"""Synthetic crater tiles, the course data layout and the submission format.

* :func:`make_craters` draws realistic synthetic crater / no-crater tiles.
* :func:`make_crater_scene` draws a whole image with its crater catalogue.
* :func:`load_course_data` reads a folder in the course layout
  (``Xtrain1.npy``, ``Ytrain1.npy``, ``Xtrain1_extra.npy``, ``Xtest1.npy``).
* :func:`load_hrsc48` reads the labelled HRSC48 Mars tiles (``west_*.npy``).
* :func:`save_predictions` writes predicted labels in the submission format.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from ._files import atomic_writer
from ._render import render_scene, render_tiles

__all__ = [
    "make_craters",
    "make_crater_scene",
    "load_course_data",
    "load_hrsc48",
    "save_predictions",
]


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "image_size": [Interval(Integral, 8, None, closed="left")],
        "weights": ["array-like"],
        "noise": [Interval(Real, 0, None, closed="left")],
        "diameter_range": ["array-like"],
        "light_angle": [Real, None],
        "n_unlabeled": [Interval(Integral, 0, None, closed="left")],
        "unlabeled_weights": ["array-like", None],
        "random_state": ["random_state", np.random.Generator],
    },
    prefer_skip_nested_validation=True,
)
def make_craters(
    n_samples=1000,
    *,
    image_size=48,
    weights=(0.36, 0.64),
    noise=0.1,
    diameter_range=(0.33, 0.8),
    light_angle=135.0,
    n_unlabeled=0,
    unlabeled_weights=None,
    random_state=None,
):
    """Generate synthetic grayscale crater (1) / no-crater (0) tiles.

    Each tile is rendered from a height map lit by a low sun (Lambertian
    shading with self-shadow): a crater is a bowl with a raised rim, so its
    wall on the side of the sun is in shadow and the far wall is bright.
    The terrain is multi-scale (fractal) relief with albedo patches.

    * **Crater tiles (1)** hold one crater whose diameter lies in
      ``diameter_range``, centred at a random offset of up to a quarter of
      the tile from its centre (large ones are cut by the tile edge),
      sometimes with one or two more craters of that size anywhere (cut or
      not). Craters range from fresh (deep, sharp rim) to degraded (shallow,
      partly filled), so some are faint.
    * **No-crater tiles (0)** hold no crater of that size.
    * **Both classes** show the same distractors with the same
      probabilities: ridges (straight or arcs), dunes, dark streaks, boulder
      fields and small pits (craters smaller than ``diameter_range``, some
      close to its lower end). Only the crater makes the class.
    * **Exposure**: every tile gets a random mean grey level and gain drawn
      from the same distribution for both classes, as real images differ
      in exposure, so brightness is no shortcut. Crater tiles still show
      more contrast on average, because their shadows add it (as in real
      tiles).

    Parameters
    ----------
    n_samples : int, default=1000
        Number of labelled tiles.
    image_size : int, default=48
        Side of the square tiles in pixels (>= 8; 16 or more gives
        recognisable craters). Every size-like property scales with it.
    weights : array-like of 2 floats, default=(0.36, 0.64)
        Proportions of class 0 (no crater) and class 1 (crater); normalised
        to sum to 1. The counts are exact (rounded), the order shuffled.
    noise : float, default=0.1
        Standard deviation of the white sensor noise, as a fraction of the
        typical pixel standard deviation of a tile (0.1 adds about 3 grey
        levels).
    diameter_range : array-like of 2 floats, default=(0.33, 0.8)
        Smallest and largest crater diameter, as fractions of
        ``image_size``; ``0 < low <= high <= 1.5``. The default is the
        16-40 px range of HRSC48 on 48 px tiles.
    light_angle : float or None, default=135.0
        Direction the sun shines from, in degrees counter-clockwise from the
        right edge of the tile (90 = from the top, 135 = from the top left),
        the same for the whole data set as in one orbital image. None draws
        a random direction for each tile (a harder task).
    n_unlabeled : int, default=0
        Number of extra tiles drawn from the same generator whose labels
        are dropped (a pool for semi-supervised learning). When positive a
        third array is returned.
    unlabeled_weights : array-like of 2 floats or None, default=None
        Class mix of the unlabelled pool; None uses ``weights``.
    random_state : int, RandomState instance, Generator or None, default=None
        Seed of the draw; an int gives the same tiles on every call.

    Returns
    -------
    X : ndarray of shape (n_samples, image_size ** 2), dtype uint8
        The tiles, flattened row-major (``X.reshape(-1, image_size,
        image_size)`` gives the images).
    y : ndarray of shape (n_samples,), dtype int64
        1 for a crater tile, 0 for a no-crater tile.
    X_unlabeled : ndarray of shape (n_unlabeled, image_size ** 2), dtype uint8
        Returned only when ``n_unlabeled > 0``: the unlabelled pool, whose
        classes follow ``unlabeled_weights`` (``weights`` by default).

    See Also
    --------
    load_hrsc48 : Real labelled Mars tiles of the same kind.

    Notes
    -----
    The classes overlap on purpose: small pits near the lower end of
    ``diameter_range`` resemble the smallest craters, and degraded craters
    fade into rough terrain, so no classifier should be perfect.

    How a small CNN and logistic regression on the pixels score on these
    tiles, and how long drawing them takes, were measured once; the figures
    are in ``benchmarks/README.md`` (section "Synthetic tiles").

    Examples
    --------
    >>> from skcrater.datasets import make_craters
    >>> X, y = make_craters(10, image_size=28, random_state=0)
    >>> X.shape, X.dtype, int(y.sum())
    ((10, 784), dtype('uint8'), 6)
    >>> X, y, X_pool = make_craters(10, image_size=28, n_unlabeled=5, random_state=0)
    >>> X_pool.shape
    (5, 784)
    """
    weights = _check_weights(weights, "weights")
    pool_weights = (
        weights
        if unlabeled_weights is None
        else _check_weights(unlabeled_weights, "unlabeled_weights")
    )
    diameter_range = _check_diameter_range(diameter_range)
    _check_light_angle(light_angle)
    rng = _check_rng(random_state)

    y = _draw_labels(n_samples, weights, rng)
    labels = y if not n_unlabeled else np.r_[y, _draw_labels(n_unlabeled, pool_weights, rng)]
    tiles = render_tiles(
        labels,
        int(image_size),
        rng,
        noise=noise,
        diameter_range=diameter_range,
        light_angle=light_angle,
    )
    X = tiles.reshape(len(labels), -1)
    if n_unlabeled:
        return X[:n_samples], y, X[n_samples:]
    return X, y


@validate_params(
    {
        "size": [Interval(Integral, 16, None, closed="left")],
        "n_craters": [Interval(Integral, 0, None, closed="left")],
        "diameter_range": ["array-like"],
        "noise": [Interval(Real, 0, None, closed="left")],
        "light_angle": [Real, None],
        "random_state": ["random_state", np.random.Generator],
    },
    prefer_skip_nested_validation=True,
)
def make_crater_scene(
    size=512,
    *,
    n_craters=60,
    diameter_range=(6, 80),
    noise=0.05,
    light_angle=135.0,
    random_state=None,
):
    """Generate a synthetic grayscale image of cratered terrain and its catalogue.

    The image is rendered like the tiles of :func:`make_craters` (fractal
    relief and albedo under a low sun, one exposure and sensor noise for the
    whole image), with ``n_craters`` craters placed uniformly, free to
    overlap, their diameters log-uniform in ``diameter_range`` (pixels).
    Unlike a real catalogue, this one is complete: every crater drawn is
    listed, however small.

    Parameters
    ----------
    size : int, default=512
        Side of the square image, in pixels.
    n_craters : int, default=60
        Number of craters.
    diameter_range : tuple of float, default=(6, 80)
        Smallest and largest diameter, in pixels.
    noise : float, default=0.05
        Sensor noise, relative to the image's contrast.
    light_angle : float or None, default=135.0
        Direction the sun shines from, in degrees counter-clockwise from the
        +x axis (135: from the upper left); None draws one.
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds everything drawn.

    Returns
    -------
    image : ndarray of shape (size, size), dtype uint8
        The image.
    catalogue : pandas.DataFrame
        ``x`` (column), ``y`` (row) and ``diameter`` of every crater, in
        pixels, origin at the centre of the top-left pixel (the catalogue
        convention of :mod:`skcrater.detection`).

    Examples
    --------
    >>> from skcrater.datasets import make_crater_scene
    >>> image, catalogue = make_crater_scene(128, n_craters=5, random_state=0)
    >>> image.shape, image.dtype, list(catalogue.columns), len(catalogue)
    ((128, 128), dtype('uint8'), ['x', 'y', 'diameter'], 5)
    """
    import pandas as pd

    low, high = _check_diameter_range_pixels(diameter_range, size)
    _check_light_angle(light_angle)
    rng = _check_rng(random_state)
    diameter = np.exp(rng.uniform(math.log(low), math.log(high), n_craters))
    x, y = rng.uniform(0, size, (2, n_craters))
    image = render_scene(
        int(size), rng, x=x, y=y, diameter=diameter, noise=noise, light_angle=light_angle
    )
    # scene coordinates put pixel i at [i, i + 1); catalogues put its centre at i
    return image, pd.DataFrame({"x": x - 0.5, "y": y - 0.5, "diameter": diameter})


def _check_diameter_range_pixels(diameter_range, size):
    values = np.asarray(diameter_range, dtype=float).ravel()
    if values.size != 2 or not np.isfinite(values).all() or not 0 < values[0] <= values[1]:
        raise ValueError(
            f"diameter_range must be (low, high) pixels with 0 < low <= high; got {diameter_range}."
        )
    if values[1] > size:
        raise ValueError(f"diameter_range {diameter_range} reaches beyond the {size}-pixel image.")
    return float(values[0]), float(values[1])


# --------------------------------------------------------------------------
# Files.

#: File names of the course layout: (attribute, file, required when labelled).
_COURSE_FILES = (
    ("X", "Xtrain1.npy"),
    ("y", "Ytrain1.npy"),
    ("X_extra", "Xtrain1_extra.npy"),
    ("X_test", "Xtest1.npy"),
)


def load_course_data(path, *, labeled=True):
    """Load a folder in the course layout.

    The layout of the IST machine-learning course crater task: flattened
    48x48 grey images, one per row.

    ======================= =========== ========================================
    file                    attribute   content
    ======================= =========== ========================================
    ``Xtrain1.npy``         ``X``       labelled images, (n, side * side)
    ``Ytrain1.npy``         ``y``       their labels, (n,): 1 crater, 0 none
    ``Xtrain1_extra.npy``   ``X_extra`` unlabelled images (optional)
    ``Xtest1.npy``          ``X_test``  images to predict (optional)
    ======================= =========== ========================================

    Parameters
    ----------
    path : str or path-like
        The folder.
    labeled : bool, default=True
        When True, ``Xtrain1.npy`` and ``Ytrain1.npy`` must be present. When
        False every file is optional (a folder holding only unlabelled
        images, such as the public IST 2024/25 copy, which lacks
        ``Xtrain1.npy``), but at least one image file must be present;
        ``y`` is still loaded when ``Ytrain1.npy`` exists (it then gives the
        class prior even without its images).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With attributes ``X``, ``y``, ``X_extra`` and ``X_test``; each is an
        ndarray as stored, or None for a missing optional file.

    Raises
    ------
    FileNotFoundError
        The folder or a required file is missing (the message names it).
    ValueError
        A file is unreadable or inconsistent: image arrays that are not 2-D
        with a square number of columns, different image sizes between
        files, ``y`` not 1-D, or ``X`` and ``y`` with different row counts.
        The message names the file.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from skcrater.datasets import load_course_data, make_craters
    >>> X, y = make_craters(6, image_size=48, random_state=0)
    >>> folder = tempfile.mkdtemp()
    >>> np.save(f"{folder}/Xtrain1.npy", X); np.save(f"{folder}/Ytrain1.npy", y)
    >>> data = load_course_data(folder)
    >>> data.X.shape, data.y.shape, data.X_test is None
    ((6, 2304), (6,), True)
    """
    folder = _check_folder(path)
    required = {"X", "y"} if labeled else set()
    data = Bunch(
        **{key: _load_npy(folder / name, required=key in required) for key, name in _COURSE_FILES}
    )
    images = {name: data[key] for key, name in _COURSE_FILES if key != "y"}
    if not any(value is not None for value in images.values()):
        raise FileNotFoundError(
            f"No image file in {folder}: expected at least one of " + ", ".join(images) + "."
        )
    _check_images_consistent(folder, images)
    _check_labels(folder, "Ytrain1.npy", data.y, "Xtrain1.npy", data.X)
    return data


def load_hrsc48(path):
    """Load the HRSC48 labelled Mars crater tiles.

    ========================== ================= ================================
    file                       attribute         content
    ========================== ================= ================================
    ``west_X.npy``             ``X``             tiles, (n, 2304) uint8
    ``west_y.npy``             ``y``             labels, (n,): 1 crater, 0 none
    ``west_groups.npy``        ``groups``        spatial block of each tile, (n,)
    ``west_unlabeled_X.npy``   ``X_unlabeled``   unlabelled tiles (optional)
    ========================== ================= ================================

    Tiles close on the ground share pixels, so cross-validate with the
    groups (e.g. :class:`~sklearn.model_selection.StratifiedGroupKFold`).

    Parameters
    ----------
    path : str or path-like
        The folder (``shared/data/hrsc48`` beside the project).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With attributes ``X``, ``y``, ``groups`` and ``X_unlabeled`` (None
        when ``west_unlabeled_X.npy`` is missing).

    Raises
    ------
    FileNotFoundError
        The folder or a required file is missing (the message names it).
    ValueError
        A file is unreadable or shapes disagree (the message names the file).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from skcrater.datasets import load_hrsc48, make_craters
    >>> X, y = make_craters(6, random_state=0)
    >>> folder = tempfile.mkdtemp()
    >>> for name, a in [("X", X), ("y", y), ("groups", np.arange(6) // 2)]:
    ...     np.save(f"{folder}/west_{name}.npy", a)
    >>> data = load_hrsc48(folder)
    >>> data.X.shape, data.groups.shape, data.X_unlabeled is None
    ((6, 2304), (6,), True)
    """
    folder = _check_folder(path)
    data = Bunch(
        X=_load_npy(folder / "west_X.npy", required=True),
        y=_load_npy(folder / "west_y.npy", required=True),
        groups=_load_npy(folder / "west_groups.npy", required=True),
        X_unlabeled=_load_npy(folder / "west_unlabeled_X.npy", required=False),
    )
    _check_images_consistent(
        folder, {"west_X.npy": data.X, "west_unlabeled_X.npy": data.X_unlabeled}
    )
    _check_labels(folder, "west_y.npy", data.y, "west_X.npy", data.X)
    _check_labels(folder, "west_groups.npy", data.groups, "west_X.npy", data.X)
    return data


def save_predictions(y_pred, path, *, overwrite=False):
    """Write predicted labels in the submission format: a 1-D int ``.npy`` of 0/1.

    The file is written to a temporary file in the same folder and then
    moved into place, so an interrupted write never leaves a partial file,
    and an existing file is replaced only when ``overwrite=True``.

    Parameters
    ----------
    y_pred : array-like of shape (n_samples,)
        Predicted labels: 0/1 integers, floats equal to 0 or 1, or booleans.
    path : str or path-like
        Destination; ``.npy`` is appended when the name lacks it (as
        :func:`numpy.save` does). Its folder must exist.
    overwrite : bool, default=False
        Replace an existing file.

    Returns
    -------
    path : pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        ``y_pred`` is empty, not 1-D, not finite or holds values other than
        0 and 1.
    TypeError
        ``y_pred`` is not numeric.
    FileExistsError
        The file exists and ``overwrite`` is False.
    FileNotFoundError
        The destination folder does not exist.
    IsADirectoryError
        ``path`` is a folder.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from skcrater.datasets import save_predictions
    >>> path = save_predictions([0, 1, 1], f"{tempfile.mkdtemp()}/Ytest1")
    >>> path.name, np.load(path)
    ('Ytest1.npy', array([0, 1, 1]))
    """
    labels = _check_binary_labels(y_pred)
    path = Path(path)
    if path.suffix != ".npy":
        path = path.with_name(path.name + ".npy")
    with atomic_writer(path, overwrite=overwrite) as file:
        np.save(file, labels, allow_pickle=False)
    return path


def _check_binary_labels(y_pred):
    labels = np.asarray(y_pred)
    if labels.dtype.kind not in "biuf":
        raise TypeError(
            f"y_pred must hold numeric 0/1 labels or booleans; got dtype {labels.dtype}."
        )
    if labels.ndim != 1:
        raise ValueError(f"y_pred must be 1-D, one label per image; got shape {labels.shape}.")
    if not labels.size:
        raise ValueError("y_pred is empty.")
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        raise ValueError("y_pred holds NaN or infinite values.")
    bad = labels[(labels != 0) & (labels != 1)]
    if bad.size:
        raise ValueError(f"y_pred must hold only 0 and 1; found {np.unique(bad)[:5].tolist()}.")
    return labels.astype(np.int64)


def _check_folder(path):
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"Data folder {folder} does not exist or is not a folder.")
    return folder


def _load_npy(file, *, required):
    if not file.is_file():
        if required:
            raise FileNotFoundError(f"Required file {file.name} is missing from {file.parent}.")
        return None
    try:
        return np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"Cannot read {file}: {exc}") from exc


def _check_images_consistent(folder, images):
    """Image files: 2-D, a square number of columns, the same in every file."""
    n_features = {}
    for name, X in images.items():
        if X is None:
            continue
        if X.ndim != 2 or math.isqrt(X.shape[1]) ** 2 != X.shape[1]:
            raise ValueError(
                f"{folder / name} must hold flattened square images, shape (n, side * side); "
                f"got shape {X.shape}."
            )
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{folder / name} must hold numbers; got dtype {X.dtype}.")
        n_features[name] = X.shape[1]
    if len(set(n_features.values())) > 1:
        found = ", ".join(f"{name}: {n}" for name, n in n_features.items())
        raise ValueError(f"Image files in {folder} have different numbers of pixels ({found}).")


def _check_labels(folder, name, y, x_name, X):
    """A per-image vector: 1-D with one entry per row of X (when X is present)."""
    if y is None:
        return
    if y.ndim != 1:
        raise ValueError(f"{folder / name} must be 1-D, one value per image; got shape {y.shape}.")
    if X is not None and len(y) != len(X):
        raise ValueError(f"{folder / name} has {len(y)} entries but {x_name} has {len(X)} images.")


# --------------------------------------------------------------------------
# make_craters: arguments.


def _check_weights(weights, name):
    try:
        w = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be two numbers; got {weights!r}.") from None
    if w.shape != (2,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(
            f"{name} must be two non-negative numbers (proportions of class 0 and class 1) "
            f"with a positive sum; got {weights!r}."
        )
    return w / w.sum()


def _check_diameter_range(diameter_range):
    try:
        d = np.asarray(diameter_range, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"diameter_range must be two numbers; got {diameter_range!r}.") from None
    if d.shape != (2,) or not (0 < d[0] <= d[1] <= 1.5):
        raise ValueError(
            "diameter_range must be (low, high) fractions of image_size with "
            f"0 < low <= high <= 1.5; got {diameter_range!r}."
        )
    return float(d[0]), float(d[1])


def _check_light_angle(light_angle):
    if light_angle is not None and not math.isfinite(light_angle):
        raise ValueError(
            f"light_angle must be a finite number of degrees or None; got {light_angle}."
        )


def _check_rng(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, Integral):
        return np.random.default_rng(random_state)
    # A RandomState instance: draw the seed from it, as scikit-learn does.
    return np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))


def _draw_labels(n, weights, rng):
    n_pos = int(round(weights[1] * n))
    y = np.zeros(n, dtype=np.int64)
    y[:n_pos] = 1
    return rng.permutation(y)
