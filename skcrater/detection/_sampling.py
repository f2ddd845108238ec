"""Image pyramids and the training windows a detector cuts from catalogued images.

Coordinates follow the catalogues: ``x`` is the column and ``y`` the row of a
pixel's centre, origin at the top-left pixel. A pixel centre ``u`` of the
original image sits at ``(u + 0.5) * scale - 0.5`` in the image rescaled by
``scale`` (:class:`ScaledImage`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ScaledImage", "rescale", "to_scaled", "from_scaled", "cut_windows", "TrainingWindows"]


class ScaledImage:
    """One level of an image pyramid, computed band by band on request.

    The image resized by ``scale``: pixel ``(r, c)`` takes the bilinear value
    of the original at ``((r + 0.5) / scale - 0.5, (c + 0.5) / scale - 0.5)``
    (edges repeated), after a Gaussian blur of ``sigma = (1 / scale - 1) / 2``
    when shrinking (anti-aliasing, as :func:`skimage.transform.rescale`
    does). Every band is computed from the original rows it needs plus the
    blur's reach, so bands give exactly the rows of the whole level, and a
    level of a huge image never exists in memory at once.

    Parameters
    ----------
    image : ndarray of shape (rows, cols)
        The original image, any numeric dtype; it is not copied.
    scale : float
        The level.
    divisor : float, default=1.0
        Pixel values are divided by it (e.g. 255 for uint8 images).
    """

    def __init__(self, image, scale, divisor=1.0):
        self.image, self.scale, self.divisor = image, float(scale), np.float32(divisor)
        rows, cols = image.shape
        self.shape = (max(1, round(rows * self.scale)), max(1, round(cols * self.scale)))
        self.sigma = max(0.0, (1 / self.scale - 1) / 2)
        self._cols = _linear_weights(self.shape[1], self.scale, cols)

    def rows(self, start, stop):
        """Rows ``start:stop`` of the level, float32."""
        from scipy.ndimage import gaussian_filter

        if self.scale == 1.0:
            # the interpolation would give every pixel weight 1 on itself
            return self.image[start:stop].astype(np.float32) / self.divisor
        index, weight = _linear_weights(self.shape[0], self.scale, self.image.shape[0])
        index, weight = index[start:stop], weight[start:stop]
        reach = int(4 * self.sigma + 0.5) + 1 if self.sigma else 0
        low = max(0, int(index.min()) - reach)
        high = min(self.image.shape[0], int(index.max()) + 2 + reach)
        band = self.image[low:high].astype(np.float32) / self.divisor
        if self.sigma:
            band = gaussian_filter(band, self.sigma, mode="reflect", truncate=4.0)
        index = index - low
        below = np.minimum(index + 1, band.shape[0] - 1)
        band = band[index] * (1 - weight)[:, None] + band[below] * weight[:, None]
        col_index, col_weight = self._cols
        right = np.minimum(col_index + 1, band.shape[1] - 1)
        return band[:, col_index] * (1 - col_weight) + band[:, right] * col_weight

    def array(self):
        """The whole level, float32."""
        return self.rows(0, self.shape[0])


def _linear_weights(n_out, scale, n_in):
    """Source index and weight of the next pixel for each output pixel (edges repeated)."""
    position = np.clip((np.arange(n_out) + 0.5) / scale - 0.5, 0, n_in - 1)
    index = np.floor(position).astype(np.intp)
    return index, (position - index).astype(np.float32)


def rescale(image, scale):
    """``image`` resized by ``scale`` as float32 (see :class:`ScaledImage`)."""
    return ScaledImage(np.asarray(image), scale).array()


def to_scaled(coordinates, scale):
    """Original pixel coordinates -> coordinates in the image rescaled by ``scale``."""
    return (np.asarray(coordinates, dtype=np.float64) + 0.5) * scale - 0.5


def from_scaled(coordinates, scale):
    """Coordinates in the image rescaled by ``scale`` -> original pixel coordinates."""
    return (np.asarray(coordinates, dtype=np.float64) + 0.5) / scale - 0.5


def cut_windows(image, centres, window):
    """Square tiles of side ``window`` centred (to the nearest pixel) at ``(x, y)`` centres.

    Returns ``(tiles, kept)``: tiles of shape ``(n_kept, window, window)``
    and the boolean mask of the centres whose window lies inside the image.
    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    top_left = np.rint(centres[:, ::-1] - (window - 1) / 2).astype(np.intp)
    rows, cols = image.shape
    kept = (top_left >= 0).all(axis=1)
    kept &= (top_left[:, 0] + window <= rows) & (top_left[:, 1] + window <= cols)
    view = np.lib.stride_tricks.sliding_window_view(image, (window, window))
    return view[top_left[kept, 0], top_left[kept, 1]], kept


class TrainingWindows:
    """Where to cut positive and negative training windows in one rescaled image.

    Parameters
    ----------
    catalogue : DataFrame
        The image's catalogue in original pixels (``x``, ``y``, ``diameter``).
    scale : float
        The pyramid level: the image was rescaled by it.
    shape : tuple of int
        ``(rows, cols)`` of the rescaled image.
    window : int
        Tile side.
    diameter_range : tuple of float
        Diameters (pixels at this scale) that count as craters of the window.
    margin : float
        Craters within this factor outside ``diameter_range`` are "don't care":
        never positives, never near a negative's centre.
    rng : numpy.random.Generator
        Draws offsets and random windows.

    Notes
    -----
    The rule for negatives (:meth:`clear`): no catalogued crater whose
    diameter at this scale lies in the range or its margin has its centre
    within 0.6 of its diameter from the window's centre (a detection there
    would match it); and no crater that is small in the original image
    (below the range's lower margin, where catalogues are incomplete) but
    still visible (3 pixels or more at this scale) has its centre anywhere in
    the window. Craters larger than the range may be anywhere: windows on
    their rims and floors are the hard negatives.
    """

    def __init__(self, catalogue, *, scale, shape, window, diameter_range, margin, rng):
        self.scale, self.shape, self.window, self.rng = scale, shape, window, rng
        self.xy = to_scaled(catalogue[["x", "y"]].to_numpy(), scale)
        self.original_d = catalogue["diameter"].to_numpy(dtype=np.float64)
        self.d = self.original_d * scale
        lo, hi = diameter_range
        self.lo, self.hi, self.margin = lo, hi, margin
        self.in_range = (self.d >= lo) & (self.d <= hi)
        self.near_range = (self.d >= lo / margin) & (self.d <= hi * margin)
        self.small = (self.original_d < lo / margin) & (self.d >= 3)

    # ------------------------------------------------------------ positives
    def positives(self, per_crater, max_offset):
        """Centres near every crater of the range: offsets uniform in a disc of
        ``max_offset`` diameters."""
        return self._around(self.in_range, per_crater, 0.0, max_offset)

    # ------------------------------------------------------------ negatives
    def random_negatives(self, n):
        """``n`` (or fewer) uniformly drawn clear centres."""
        half = (self.window - 1) / 2
        low = np.array([half, half])
        high = np.array([self.shape[1] - 1 - half, self.shape[0] - 1 - half])
        if n <= 0 or (high < low).any():
            return np.zeros((0, 2))
        centres = self.rng.uniform(low, high, size=(4 * n, 2))
        return centres[self.clear(centres)][:n]

    def off_centre(self, per_crater):
        """Windows that show a crater of the range too far from their centre."""
        return self._keep_clear(self._around(self.in_range, per_crater, 0.7, 1.1))

    def rims_and_floors(self, per_crater):
        """Windows on the rim and on the floor of every crater larger than the range."""
        big = self.d > self.hi * self.margin
        rims = self._around(big, per_crater, 0.45, 0.55)
        floors = self._around(big, per_crater, 0.1, 0.35)
        return self._keep_clear(np.concatenate([rims, floors]))

    def wrong_scale(self):
        """Windows centred on well-catalogued craters too small or too large for
        this scale (they are found at another level of the pyramid)."""
        reliable = self.original_d >= self.lo / self.margin
        wrong = reliable & ~self.near_range & (self.d >= self.lo / 2.5) & (self.d <= 2.5 * self.hi)
        return self._keep_clear(self.xy[wrong])

    def clear(self, centres):
        """Mask of the centres whose windows obey the rule for negatives."""
        from scipy.spatial import cKDTree

        centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
        ok = np.ones(len(centres), dtype=bool)
        if not len(centres):
            return ok
        near = np.flatnonzero(self.near_range)
        if near.size:
            pairs = cKDTree(centres).sparse_distance_matrix(
                cKDTree(self.xy[near]), 0.6 * self.d[near].max(), output_type="ndarray"
            )
            close = pairs["v"] <= 0.6 * self.d[near][pairs["j"]]
            ok[pairs["i"][close]] = False
        small = np.flatnonzero(self.small)
        if small.size:
            distance, _ = cKDTree(self.xy[small]).query(
                centres, k=1, p=np.inf, distance_upper_bound=self.window / 2
            )
            ok &= ~np.isfinite(distance)
        return ok

    # -------------------------------------------------------------- helpers
    def _around(self, which, per_crater, low, high):
        """``per_crater`` centres per selected crater at ``low..high`` diameters away
        (uniform over the annulus' area)."""
        xy, d = self.xy[which], self.d[which]
        if not len(d) or per_crater <= 0:
            return np.zeros((0, 2))
        xy, d = np.repeat(xy, per_crater, axis=0), np.repeat(d, per_crater)
        radius = d * np.sqrt(self.rng.uniform(low**2, high**2, size=d.size))
        angle = self.rng.uniform(0, 2 * np.pi, size=d.size)
        return xy + radius[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])

    def _keep_clear(self, centres):
        return centres[self.clear(centres)]
