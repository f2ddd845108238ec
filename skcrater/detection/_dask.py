"""Crater detection in mosaics larger than memory, chunk by chunk with Dask.

Every chunk of the image is given the pixels around it that its windows,
the pyramid's resampling and the peak search near its border need
(:func:`dask.array.map_overlap`). The cells of each level's whole score map
are shared out among the chunks by where their window's centre lies: in a
chunk's *core*, the part of the image the chunk holds without the overlap.
A chunk computes its cells plus a margin at the very positions the whole
map has them (in the whole level's coordinates, so every level's scan grid
stays aligned whatever the chunk sizes), finds the peaks there as the
in-memory path does, and keeps those in its core: each peak of the whole
map is found by one chunk, once, and a crater on a chunk border is reported
once. The detector's suppression then runs over the candidates of all
chunks, as for an image in memory.

The fitted detector is one key of the task graph (:func:`dask.delayed`),
which every chunk's task depends on: a ``dask.distributed`` cluster sends
it to each worker once, not once per chunk.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from ._detector import _divisor, _empty_table, candidate_order
from ._sampling import ScaledImage, from_scaled

__all__ = ["check_dask_image", "dask_candidates", "dask_score_map"]


def check_dask_image(image, window, name):
    """``image`` (a Dask array) if its shape, type and chunks suit a ``window``, without
    computing it; a ValueError (a TypeError for non-numbers) naming ``name`` otherwise."""
    if image.ndim != 2:
        colour = image.ndim == 3 and image.shape[-1] in (3, 4)
        hint = " (a colour image? take one channel, e.g. image.mean(axis=-1))" if colour else ""
        raise ValueError(
            f"{name} must be a 2-D grayscale image; got a Dask array of shape {image.shape}{hint}."
        )
    if image.dtype.kind not in "iuf":  # a TypeError, as for an image in memory
        raise TypeError(
            f"{name} must hold numbers (integers or floats); got a Dask array of dtype "
            f"{image.dtype}."
        )
    if min(image.shape) < window:
        raise ValueError(
            f"{name} is {image.shape[0]}x{image.shape[1]} pixels, smaller than the "
            f"{window}-pixel window."
        )
    for axis, sizes in zip(("rows", "columns"), image.chunks, strict=True):
        # the last chunk of an axis is what is left over: it is merged with its neighbour
        inner = sizes[:-1] if len(sizes) > 1 else sizes
        if min(inner) < window:
            raise ValueError(
                f"{name} has chunks of {min(inner)} {axis}, fewer than the {window}-pixel "
                f"window; give larger chunks, e.g. {name}.rechunk(2048)."
            )
    return image


def dask_candidates(detector, image, threshold, name):
    """The candidates of :meth:`CraterDetector._candidates` for a Dask ``image``
    (called ``name`` in errors), computed chunk by chunk on Dask's current scheduler."""
    import pandas as pd

    # a peak is a maximum over min_distance cells each side, and map_peaks then drops equal
    # peaks within min_distance of each other; + 2: the neighbour levels' nearest cells
    margin = 2 * max(1, int(detector._radius())) + 2
    image, grid = _chunk_grid(detector, image, detector.scales_, margin, name)
    meta = np.empty((0, 0), dtype=object)
    tables = _map_chunks(
        _chunk_candidates, image, grid, detector, chunks=(1, 1), meta=meta, threshold=threshold
    )
    found = [table for table in tables.compute().ravel() if len(table)]
    return candidate_order(pd.concat(found, ignore_index=True)) if found else _empty_table()


def dask_score_map(detector, image, scale, name):
    """:meth:`CraterDetector.score_map` of a Dask ``image``, as a lazy Dask array."""
    image, grid = _chunk_grid(detector, image, [scale], 0, name)
    level_shape = _level_shape(image.shape, scale)
    chunks = tuple(
        tuple(hi - lo for lo, hi in grid.cells(axis, level_shape[axis], detector, scale))
        for axis in (0, 1)
    )
    meta = np.empty((0, 0), dtype=np.float32)
    return _map_chunks(_chunk_scores, image, grid, detector, chunks=chunks, meta=meta, scale=scale)


def _map_chunks(function, image, grid, detector, *, chunks, meta, **kwargs):
    """``function(block, detector=, grid=, **kwargs)`` on every chunk with its overlap.

    The detector is one key of the graph that every chunk's task depends on,
    so that a cluster sends it to each worker once.
    """
    import dask
    import dask.array as da

    model = dask.delayed(detector, name=f"crater-detector-{uuid.uuid4().hex}", traverse=False)
    return da.map_overlap(
        function,
        image,
        depth=grid.depth,
        boundary="none",
        trim=False,  # each chunk gives only its own share of the cells: it trims the overlap
        chunks=chunks,
        meta=meta,
        detector=model,
        grid=grid,
        **kwargs,
    )


@dataclass(frozen=True)
class _Grid:
    """Where the chunks of an image lie, and how much overlap each one is given.

    ``edges[axis]`` are the pixel indices where the cores start, and the
    image's size; ``depth[axis]`` the overlap in pixels; ``margin`` the
    map cells of every level that each chunk scans past its core.
    """

    edges: tuple
    depth: tuple
    shape: tuple
    margin: int
    name: str

    def core(self, axis, k):
        """Positions (pixel coordinates) of the centres that chunk ``k`` holds."""
        edges = self.edges[axis]
        low = -np.inf if k == 0 else edges[k] - 0.5
        high = np.inf if k == len(edges) - 2 else edges[k + 1] - 0.5
        return low, high

    def block_start(self, axis, k):
        """Pixel index of the first pixel of chunk ``k``'s block (with its overlap)."""
        return max(0, self.edges[axis][k] - self.depth[axis])

    def cells(self, axis, level_size, detector, scale, margin=0):
        """``(first, stop)`` cells of a level's map along ``axis`` for every chunk: those whose
        window centre lies in the chunk's core, widened by ``margin`` pixels."""
        window, stride = detector.window, detector.stride_
        n = max(0, (level_size - window) // stride + 1)
        centres = from_scaled(np.arange(n) * stride + (window - 1) / 2, scale)
        out = []
        for k in range(len(self.edges[axis]) - 1):
            low, high = self.core(axis, k)
            out.append(tuple(np.searchsorted(centres, [low - margin, high + margin]).tolist()))
        return out


def _chunk_grid(detector, image, scales, margin, name):
    """``(image, grid)``: the image rechunked where its chunks are thinner than the overlap."""
    from dask.array.overlap import ensure_minimum_chunksize

    window, stride = detector.window, detector.stride_
    # a level's margin cells, half a window and the blur, in the original image's pixels
    need = max((margin * stride + (window - 1) / 2) / s + _blur_reach(s) for s in scales)
    # + 3: the interpolation's next pixel, and rounding a centre to a pixel
    depth = int(np.ceil(need)) + 3
    chunks, depths = [], []
    for sizes, size in zip(image.chunks, image.shape, strict=True):
        if len(sizes) > 1 and size > 2 * depth:
            sizes = ensure_minimum_chunksize(depth, sizes)
        else:
            sizes = (size,)
        chunks.append(sizes)
        depths.append(depth if len(sizes) > 1 else 0)
    image = image.rechunk(tuple(chunks))
    edges = tuple(tuple(np.concatenate([[0], np.cumsum(c)]).tolist()) for c in chunks)
    grid = _Grid(edges, tuple(depths), image.shape, margin, name)
    return image, grid


def _blur_reach(scale):
    """Original pixels a level's anti-aliasing blur reaches (:class:`ScaledImage`)."""
    sigma = max(0.0, (1 / scale - 1) / 2)
    return int(4 * sigma + 0.5) + 1 if sigma else 0


def _chunk_candidates(block, detector, *, grid, threshold, block_info=None):
    """One chunk's candidates (its core's peaks), as a 1 x 1 object array of a table."""
    location = tuple(block_info[0]["chunk-location"])
    _check_finite(block, grid, location)
    levels = {}
    for scale in detector.scales_:
        # the margin is in cells of each level: few pixels at the finest, many at the coarsest
        margin = grid.margin * detector.stride_ / scale
        piece = _piece(detector, block, grid, scale, location, margin)
        if piece is not None:
            levels[scale] = piece
    table = detector._peak_table(detector._scan_levels(levels, None), threshold)
    (y0, y1), (x0, x1) = grid.core(0, location[0]), grid.core(1, location[1])
    inside = table["y"].between(y0, y1, inclusive="left")
    inside &= table["x"].between(x0, x1, inclusive="left")
    out = np.empty((1, 1), dtype=object)
    out[0, 0] = table[inside]
    return out


def _chunk_scores(block, detector, *, grid, scale, block_info=None):
    """The cells of a level's map that one chunk holds."""
    location = tuple(block_info[0]["chunk-location"])
    _check_finite(block, grid, location)
    piece = _piece(detector, block, grid, scale, location, 0)
    if piece is None:  # the chunk holds no cell of the map along one axis
        n = [hi - lo for lo, hi in _cell_ranges(detector, grid, scale, location, 0)]
        return np.zeros(n, dtype=np.float32)
    return detector._scan(piece, None)


def _cell_ranges(detector, grid, scale, location, margin):
    size = _level_shape(grid.shape, scale)
    return [
        grid.cells(axis, size[axis], detector, scale, margin)[location[axis]] for axis in (0, 1)
    ]


def _level_shape(shape, scale):
    # a level's shape is ScaledImage's to say; a broadcast array of that shape costs nothing
    return ScaledImage(np.broadcast_to(np.uint8(0), shape), scale).shape


def _piece(detector, block, grid, scale, location, margin):
    """The part of a level that one chunk scans, or None when it holds no cell of it."""
    if min(_level_shape(grid.shape, scale)) < detector.window:
        return None
    (i0, i1), (j0, j1) = _cell_ranges(detector, grid, scale, location, margin)
    if i1 <= i0 or j1 <= j0:
        return None
    origin = tuple(grid.block_start(axis, location[axis]) for axis in (0, 1))
    return _LevelPiece(block, origin, grid.shape, scale, ((i0, i1), (j0, j1)), detector)


class _LevelPiece:
    """Cells ``cells`` of a pyramid level, computed from one chunk's block of pixels.

    It is what :class:`ScaledImage` gives for those rows and columns of the
    whole image's level (same resampling positions, same blur), read from
    ``block``, whose first pixel is ``origin`` of an image of ``shape``;
    ``cell_origin`` tells the detector which cell of the whole map its
    first one is.
    """

    def __init__(self, block, origin, shape, scale, cells, detector):
        (i0, i1), (j0, j1) = cells
        window, stride = detector.window, detector.stride_
        self.cell_origin = (i0, j0)
        self.shape = ((i1 - 1 - i0) * stride + window, (j1 - 1 - j0) * stride + window)
        self._first_row = i0 * stride
        first_col = j0 * stride
        columns = slice(None)
        if scale == 1.0:
            # ScaledImage takes the pixels themselves at scale 1: hand it just these columns
            columns = slice(first_col - origin[1], first_col - origin[1] + self.shape[1])
            _check_inside(columns.start, columns.stop, block.shape[1], "columns")
        rows = _BlockRows(block, origin[0], columns, shape)
        self._level = ScaledImage(rows, scale, divisor=_divisor(block))
        if scale != 1.0:
            # the whole level's resampling of these columns, in the block's own columns
            index, weight = self._level._cols
            wanted = slice(first_col, first_col + self.shape[1])
            index = index[wanted] - origin[1]
            _check_inside(index.min(), index.max() + 1, block.shape[1], "columns")
            self._level._cols = (index, weight[wanted])

    def rows(self, start, stop):
        """Rows ``start:stop`` of the piece, float32."""
        return self._level.rows(self._first_row + start, self._first_row + stop)


class _BlockRows:
    """An image of ``shape`` as :class:`ScaledImage` reads it (whole rows), from one block.

    Only the rows of the block can be read; asking for others is a bug
    (too little overlap), and raises instead of giving wrong scores.
    """

    def __init__(self, block, first_row, columns, shape):
        self.block, self.first_row, self.columns, self.shape = block, first_row, columns, shape
        self.dtype = block.dtype

    def __getitem__(self, rows):
        start, stop = rows.start - self.first_row, rows.stop - self.first_row
        _check_inside(start, stop, self.block.shape[0], "rows")
        return self.block[start:stop, self.columns]


def _check_inside(start, stop, size, what):
    # negative indices would wrap around and give wrong scores without a word
    if start < 0 or stop > size:
        raise RuntimeError(
            f"{what} {start}:{stop} of a chunk's block of {size} {what}: too little overlap."
        )


def _check_finite(block, grid, location):
    if block.dtype.kind == "f" and not np.isfinite(block).all():
        row, col = (grid.block_start(axis, location[axis]) for axis in (0, 1))
        raise ValueError(
            f"{grid.name} holds NaN or infinite pixels (in rows {row}:"
            f"{row + block.shape[0]}, columns {col}:{col + block.shape[1]})."
        )
