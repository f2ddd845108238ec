"""Crater tables: the one check of a catalogue or a detection table."""

from __future__ import annotations

import numpy as np

__all__ = ["COLUMNS", "check_catalogue"]

#: Columns of a crater catalogue, in pixels: centre column, centre row, diameter.
COLUMNS = ("x", "y", "diameter")


def check_catalogue(catalogue, *, image_shape=None, name="catalogue", extra=()):
    """Validate a crater table and return it as a new ``pandas.DataFrame``.

    Parameters
    ----------
    catalogue : DataFrame, array-like of shape (n, 3) or None
        Columns ``x`` (column of the centre), ``y`` (row), ``diameter``, in
        pixels of the image, origin at the top-left pixel. A 3-column array is
        read in that order. None or an empty table is a valid catalogue: an
        image without craters.
    image_shape : tuple of int, default=None
        ``(rows, columns)`` of the image: centres must lie inside it, that
        is within ``[-1, columns]`` and ``[-1, rows]`` (the pixel area and
        half a pixel more, for catalogues that count from pixel corners).
    name : str, default="catalogue"
        Named in error messages.
    extra : tuple of str, default=()
        Further columns allowed (e.g. ``"score"`` for detections); they are
        kept, and must be numeric and finite too.

    Returns
    -------
    table : pandas.DataFrame
        Float64 columns ``x``, ``y``, ``diameter`` (then the ``extra`` ones
        present), a fresh 0..n-1 index.

    Examples
    --------
    >>> from skcrater.detection import check_catalogue
    >>> check_catalogue([[10, 12, 20.5]], image_shape=(64, 64)).to_dict("records")
    [{'x': 10.0, 'y': 12.0, 'diameter': 20.5}]
    """
    import pandas as pd

    table = _as_frame(catalogue, name, extra)
    for column in table.columns:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"{name} column {column!r} holds missing, NaN or non-numeric values.")
        table[column] = values
    if (table["diameter"] <= 0).any():
        bad = table.loc[table["diameter"] <= 0, "diameter"].iloc[0]
        raise ValueError(f"{name} has a non-positive diameter ({bad}); diameters are in pixels.")
    if image_shape is not None and len(table):
        rows, cols = image_shape
        # pixel i covers [i - 0.5, i + 0.5], so the image spans [-0.5, side - 0.5];
        # catalogues that count from pixel corners or from 1 reach half a pixel
        # further (the HRSC catalogue lists x = 1699.8 in a 1700-column image)
        x, y = table["x"], table["y"]
        outside = (x < -1) | (x > cols) | (y < -1) | (y > rows)
        if outside.any():
            x, y = table.loc[outside, ["x", "y"]].iloc[0]
            raise ValueError(
                f"{name} has {int(outside.sum())} crater centre(s) outside the {rows}x{cols} "
                f"image, e.g. x={x}, y={y} (x is the column, y the row, in pixels)."
            )
    return table.reset_index(drop=True)


def _as_frame(catalogue, name, extra):
    import pandas as pd

    # None, or a DataFrame without rows nor columns (pd.DataFrame()): no craters
    if catalogue is None or (isinstance(catalogue, pd.DataFrame) and catalogue.columns.empty):
        return pd.DataFrame({column: np.zeros(0) for column in COLUMNS})
    if isinstance(catalogue, pd.DataFrame):
        missing = [c for c in COLUMNS if c not in catalogue.columns]
        unknown = [c for c in catalogue.columns if c not in (*COLUMNS, *extra)]
        if missing or unknown:
            raise ValueError(
                f"{name} must have the columns {list(COLUMNS)}"
                + (f" (and optionally {list(extra)})" if extra else "")
                + f"; missing {missing}, unexpected {unknown}."
            )
        return catalogue[[c for c in (*COLUMNS, *extra) if c in catalogue.columns]].copy()
    array = np.asarray(catalogue)
    if array.size == 0:
        return pd.DataFrame({column: np.zeros(0) for column in COLUMNS})
    width = len(COLUMNS) + len(extra)
    if array.ndim != 2 or array.shape[1] not in (len(COLUMNS), width):
        raise ValueError(
            f"{name} must be a table of {len(COLUMNS)} columns (x, y, diameter); got an array "
            f"of shape {array.shape}."
        )
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers; got dtype {array.dtype}.")
    return pd.DataFrame(array, columns=[*COLUMNS, *extra][: array.shape[1]])
