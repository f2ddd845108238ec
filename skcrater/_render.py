"""Synthetic relief under a low sun, rendered as grey image tiles (private).

The building blocks of :func:`skcrater.datasets.make_craters`, kept apart so
that other generators can compose them:

* :class:`Scene` holds the height maps and cast shadows of a batch of
  images and lights them (:meth:`Scene.render`); :meth:`Scene.add_craters`
  puts craters at given centres and diameters.
* The layer functions (``add_terrain``, ``add_class_craters``, ``add_pits``,
  ``add_ridges``, ``add_dunes``, ``add_boulders``) each add one kind of
  relief to a scene's images (to all, or to those drawn to show it),
  drawing from the scene's generator.
* :func:`expose` turns rendered light into uint8 grey levels with a random
  exposure and sensor noise.
* :func:`render_tiles` is the crater / no-crater tile recipe built from them.

All images of a batch are drawn at once on a canvas a little larger than the
image (so that blur, gradients and periodic noise have no edge effects).
Distances and heights are in pixels, so slopes are plain ratios. The order of
the random draws is part of the behaviour: ``make_craters`` gives the same
tiles for the same seed only as long as it stays the same.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np

__all__ = [
    "Scene",
    "add_boulders",
    "add_class_craters",
    "add_dunes",
    "add_pits",
    "add_ridges",
    "add_terrain",
    "expose",
    "render_scene",
    "render_tiles",
    "sun_azimuth",
]

# Sun elevation above the horizon: low, as in orbital images taken for relief
# (a flat surface then gets sin(22 deg) = 0.37 of full light). Cast shadows keep
# 1 - _SHADOW_DEPTH of the direct light; _AMBIENT is scattered light everywhere.
_SUN_ELEVATION = math.radians(22.0)
_SHADOW_DEPTH, _AMBIENT = 0.85, 0.08
# Exposure of a tile: mean grey ~ N(mean, std) and gain ~ lognormal, the same
# for both classes. Rendered tiles have a pixel std of about _TYPICAL_STD, so
# the gain is about the pixel std in grey levels (HRSC48: mean grey 159 +- 30,
# pixel std 31 for no-crater and 42 for crater tiles).
_EXPOSURE_MEAN = (155.0, 28.0)
_GAIN_LOG, _TYPICAL_STD = (math.log(30.0), 0.3), 0.1
# Probability that a tile shows each distractor (the same for both classes).
_P_RIDGE, _P_DUNES, _P_STREAK, _P_BOULDERS = 0.3, 0.15, 0.15, 0.3
# Pits: mean count per tile (at most _MAX_PITS) and their diameters relative
# to the smallest crater; crater tiles hold up to _MAX_EXTRA_CRATERS more.
_PIT_RATE, _PIT_SIZE, _MAX_PITS = 0.9, (0.3, 0.9), 4
_P_EXTRA_CRATER, _MAX_EXTRA_CRATERS = 0.2, 2


def render_tiles(labels, size, rng, *, noise, diameter_range, light_angle):
    """Render crater (1) / no-crater (0) tiles as uint8 of shape (len(labels), size, size).

    ``diameter_range`` is (low, high) in fractions of ``size``; ``light_angle``
    is in degrees, or None for a random direction per tile; ``rng`` is a
    :class:`numpy.random.Generator`.
    """
    scene = Scene(len(labels), size, rng, sun_azimuth(len(labels), rng, light_angle))
    add_terrain(scene)
    add_class_craters(scene, labels, diameter_range)
    add_pits(scene, diameter_range)
    add_ridges(scene)
    add_dunes(scene)
    add_boulders(scene)
    return expose(scene.render(), rng, noise)


def render_scene(size, rng, *, x, y, diameter, noise, light_angle, blur=1.4):
    """Render one ``size x size`` uint8 image holding craters at the given centres.

    ``x`` (columns) and ``y`` (rows) are in the scene's coordinates, where
    pixel ``i`` spans ``[i, i + 1)``; ``diameter`` in pixels. Each crater is
    drawn on the region within three radii of its centre, where all but a
    percent of its raised rim lies, so that a large scene costs what its
    craters cover.
    """
    scene = Scene(1, size, rng, sun_azimuth(1, rng, light_angle), blur=blur)
    add_terrain(scene)
    for cx, cy, d in zip(x, y, diameter, strict=True):
        reach = 1.5 * d + 2
        rows = _span(cy + scene.pad, reach, scene.canvas)
        cols = _span(cx + scene.pad, reach, scene.canvas)
        scene.crop(rows, cols).add_craters(
            np.zeros(1, dtype=np.intp), np.array([cy]), np.array([cx]), np.array([d])
        )
    return expose(scene.render(), rng, noise)[0]


def _span(centre, reach, length):
    return slice(max(0, int(centre - reach)), min(length, int(centre + reach) + 1))


def sun_azimuth(n, rng, light_angle):
    """Direction of the sun for ``n`` images, in radians: ``light_angle`` degrees, or random."""
    if light_angle is None:
        return rng.uniform(0.0, 2 * np.pi, n)
    return np.full(n, math.radians(light_angle))


class Scene:
    """Height map and cast shadows of a batch of tiles under a low sun.

    ``n`` images of ``size`` x ``size`` pixels, drawn from the
    :class:`numpy.random.Generator` ``rng``, each lit from its own
    ``azimuth`` (radians, counter-clockwise from the right edge; see
    :func:`sun_azimuth`).
    """

    def __init__(self, n, size, rng, azimuth, blur=None):
        self.n, self.size, self.rng = n, size, rng
        # the optics blur a 48 px tile by 1.4 px; a whole scene keeps that blur in pixels
        self.blur = 1.4 * size / 48 if blur is None else float(blur)
        self.pad = math.ceil(2 * self.blur) + 2  # room for the blur and the gradient
        self.canvas = size + 2 * self.pad
        # Coordinates of pixel centres; the tile itself spans [0, size).
        grid = np.arange(self.canvas, dtype=np.float32) - self.pad + 0.5
        self.yy, self.xx = grid[:, None], grid[None, :]
        self.height = np.zeros((n, self.canvas, self.canvas), dtype=np.float32)
        self.shadow = np.ones_like(self.height)
        # Horizontal unit vector towards the sun; rows run downwards, so a sun
        # "from the top" lies towards negative rows.
        self.sun_x = np.cos(azimuth).astype(np.float32)
        self.sun_y = -np.sin(azimuth).astype(np.float32)

    def crop(self, rows, cols):
        """A view of the canvas region ``rows x cols`` (slices): layers drawn on it
        land in this scene, and cost only that region."""
        view = copy.copy(self)
        view.yy, view.xx = self.yy[rows], self.xx[:, cols]
        view.height, view.shadow = self.height[:, rows, cols], self.shadow[:, rows, cols]
        return view

    def uniform(self, low, high, k):
        """Draw k floats as a column broadcastable against (k, canvas, canvas)."""
        return self.rng.uniform(low, high, k).astype(np.float32)[:, None, None]

    def pick(self, probability):
        """Indices of the images that show a feature drawn with ``probability`` for each."""
        return np.flatnonzero(self.rng.random(self.n) < probability)

    def add_craters(self, idx, cy, cx, diameter):
        """Add one crater to each tile of ``idx``: centres and diameters in pixels."""
        k = len(idx)
        if not k:
            return
        col = (slice(None), None, None)
        radius = (diameter / 2).astype(np.float32)[col]
        # Depth/diameter from 0.2 (fresh) down to 0.04 (degraded); degraded
        # craters also lose most of their rim and get a flat, filled floor.
        freshness = self.uniform(0.0, 1.0, k) ** 0.4
        depth = 2 * radius * (0.04 + 0.16 * freshness)
        rim = depth * self.uniform(0.15, 0.4, k)
        floor = 1.0 - (1.0 - freshness) * self.uniform(0.0, 0.6, k)
        u = (self.xx - cx.astype(np.float32)[col]) / radius
        v = (self.yy - cy.astype(np.float32)[col]) / radius
        q2 = u * u + v * v
        inside = q2 < 1.0
        below_rim = depth * np.minimum(1.0 - q2, floor)
        self.height[idx] += np.where(inside, rim - below_rim, rim / np.maximum(q2, 1.0) ** 2)
        # The sunward rim casts a shadow on the bowl: a point is dark when it
        # lies deeper below the rim than the sun rises over the distance to it.
        toward_sun = u * self.sun_x[idx][col] + v * self.sun_y[idx][col]
        reach = radius * (np.sqrt(np.maximum(toward_sun**2 - q2 + 1.0, 0.0)) - toward_sun)
        depth_in_shadow = below_rim - reach * math.tan(_SUN_ELEVATION)
        cast = np.clip(depth_in_shadow + 0.5, 0.0, 1.0) * inside
        self.shadow[idx] *= 1.0 - _SHADOW_DEPTH * cast

    def render(self):
        """Lit, blurred tiles as float arrays of shape (n, size, size)."""
        from scipy.ndimage import gaussian_filter

        inner = (slice(None), slice(1, -1), slice(1, -1))
        light = _hillshade(self.height, self.sun_x, self.sun_y) * self.shadow[inner]
        image = _albedo(self)[inner] * (light + _AMBIENT)
        image = gaussian_filter(image, sigma=(0, self.blur, self.blur), mode="nearest")
        start = self.pad - 1  # the gradient took one pixel off each side
        return image[:, start : start + self.size, start : start + self.size]


def _fractal(n, canvas, rng, beta):
    """Gaussian noise with power spectrum 1 / f**beta (one exponent per tile), unit std."""
    from scipy import fft

    white = rng.standard_normal((n, canvas, canvas), dtype=np.float32)
    f = np.hypot(fft.fftfreq(canvas)[:, None], fft.rfftfreq(canvas)[None, :])
    f[0, 0] = 1.0
    log_f = np.log(f).astype(np.float32)
    spectrum = fft.rfft2(white)
    spectrum *= np.exp(np.asarray(-beta / 2, np.float32)[:, None, None] * log_f)
    spectrum[:, 0, 0] = 0.0
    field = fft.irfft2(spectrum, s=(canvas, canvas))
    return field / field.std(axis=(1, 2), keepdims=True)


def add_terrain(scene):
    """Multi-scale relief, scaled to a random r.m.s. slope per tile."""
    n = scene.n
    height = _fractal(n, scene.canvas, scene.rng, scene.rng.uniform(2.8, 3.6, n))
    gy, gx = _gradient(height)
    slope = np.sqrt(np.mean(gy**2 + gx**2, axis=(1, 2), keepdims=True))
    scene.height += height * (scene.uniform(0.03, 0.12, n) / slope)


def add_class_craters(scene, labels, diameter_range):
    """One crater near the centre of each crater tile, sometimes more anywhere."""
    size, rng = scene.size, scene.rng
    low, high = diameter_range[0] * size, diameter_range[1] * size
    tiles = np.flatnonzero(labels == 1)
    centre = size / 2 + rng.uniform(-size / 4, size / 4, (2, len(tiles)))
    scene.add_craters(tiles, centre[0], centre[1], _log_uniform(rng, low, high, len(tiles)))
    for _ in range(_MAX_EXTRA_CRATERS):
        extra = tiles[rng.random(len(tiles)) < _P_EXTRA_CRATER]
        centre = rng.uniform(0, size, (2, len(extra)))
        scene.add_craters(extra, centre[0], centre[1], _log_uniform(rng, low, high, len(extra)))


def add_pits(scene, diameter_range):
    """Craters smaller than the crater class, in tiles of both classes."""
    size, rng = scene.size, scene.rng
    counts = rng.poisson(_PIT_RATE, scene.n)
    for j in range(_MAX_PITS):
        tiles = np.flatnonzero(counts > j)
        diameter = diameter_range[0] * size * rng.uniform(*_PIT_SIZE, len(tiles))
        centre = rng.uniform(0, size, (2, len(tiles)))
        scene.add_craters(tiles, centre[0], centre[1], diameter)


def _on_some(probability):
    """Make ``layer(scene, tiles)`` a layer of the images that each show it with ``probability``."""

    def decorate(layer):
        @functools.wraps(layer)
        def add(scene):
            tiles = scene.pick(probability)
            if len(tiles):
                layer(scene, tiles)

        return add

    return decorate


@_on_some(_P_RIDGE)
def add_ridges(scene, tiles):
    """Ridges or troughs along straight lines or circular arcs (arcs mimic rims)."""
    size, rng, k = scene.size, scene.rng, len(tiles)
    # A straight ridge is an arc of a very large circle.
    curved = rng.random(k) < 0.5
    arc_radius = np.where(curved, rng.uniform(0.3, 1.0, k), rng.uniform(4.0, 8.0, k)) * size
    theta = rng.uniform(0, 2 * np.pi, k)
    point = rng.uniform(0.2, 0.8, (2, k)) * size
    cy = (point[0] + arc_radius * np.sin(theta)).astype(np.float32)[:, None, None]
    cx = (point[1] + arc_radius * np.cos(theta)).astype(np.float32)[:, None, None]
    arc_radius = arc_radius.astype(np.float32)[:, None, None]
    dist = np.hypot(scene.yy - cy, scene.xx - cx) - arc_radius
    width = np.maximum(scene.uniform(0.04, 0.12, k) * size, 1.5)  # no sub-pixel ridges
    amp = width * scene.uniform(0.3, 0.8, k) * np.where(rng.random(k) < 0.7, 1, -1)[:, None, None]
    scene.height[tiles] += amp * np.exp(-((dist / width) ** 2))


@_on_some(_P_DUNES)
def add_dunes(scene, tiles):
    """Asymmetric periodic dunes over part or all of the tile."""
    size, k = scene.size, len(tiles)
    theta = scene.uniform(0, np.pi, k)
    wavelength = np.maximum(scene.uniform(0.12, 0.3, k) * size, 4.0)
    phase = (scene.yy * np.sin(theta) + scene.xx * np.cos(theta)) / wavelength
    phase += scene.uniform(0.0, 1.0, k)
    profile = np.abs(phase % 1.0) ** 1.5  # gentle stoss slope, steep lee face
    amp = wavelength * scene.uniform(0.05, 0.15, k)
    dy = scene.yy - scene.uniform(0, size, k)
    dx = scene.xx - scene.uniform(0, size, k)
    envelope = np.exp(-(dy**2 + dx**2) / (scene.uniform(0.3, 1.5, k) * size) ** 2)
    scene.height[tiles] += amp * profile * envelope


@_on_some(_P_BOULDERS)
def add_boulders(scene, tiles):
    """Fields of small bumps: random impulses blurred to a pixel or two."""
    from scipy.ndimage import gaussian_filter

    rng, k = scene.rng, len(tiles)
    shape = (k, scene.canvas, scene.canvas)
    scale = scene.size / 48
    sigma = max(0.6 * scale, 0.4)
    heights = rng.uniform(2.0, 6.0, shape).astype(np.float32) * np.float32(scale)
    bumps = np.where(rng.random(shape) < scene.uniform(0.002, 0.012, k), heights, 0.0)
    # A blurred impulse of height h peaks at h / (2 pi sigma^2); bring it back to ~h / 4.
    bumps = gaussian_filter(bumps.astype(np.float32), sigma=(0, sigma, sigma), mode="wrap")
    scene.height[tiles] += bumps * np.float32(2 * np.pi * sigma**2 / 4)


def _gradient(height):
    """Central differences; the result is one pixel smaller on each side."""
    gy = 0.5 * (height[:, 2:, 1:-1] - height[:, :-2, 1:-1])
    gx = 0.5 * (height[:, 1:-1, 2:] - height[:, 1:-1, :-2])
    return gy, gx


def _hillshade(height, sun_x, sun_y):
    """Lambertian reflectance (with self-shadow) of the relief under the sun."""
    gy, gx = _gradient(height)
    col = (slice(None), None, None)
    cos_e, sin_e = math.cos(_SUN_ELEVATION), math.sin(_SUN_ELEVATION)
    lit = (sin_e - cos_e * (gx * sun_x[col] + gy * sun_y[col])) / np.sqrt(1.0 + gx**2 + gy**2)
    return np.maximum(lit, 0.0)


def _albedo(scene):
    """Multiplicative brightness patches, with a dark streak on some tiles."""
    n, size, rng = scene.n, scene.size, scene.rng
    patches = _fractal(n, scene.canvas, rng, np.full(n, 3.0))
    albedo = np.exp(scene.uniform(0.05, 0.3, n) * patches)
    tiles = scene.pick(_P_STREAK)
    k = len(tiles)
    if k:
        theta = scene.uniform(0, np.pi, k)
        dist = (scene.yy - size / 2) * np.cos(theta) - (scene.xx - size / 2) * np.sin(theta)
        dist += scene.uniform(-0.35, 0.35, k) * size
        width = np.maximum(scene.uniform(0.05, 0.2, k) * size, 1.5)
        albedo[tiles] *= 1.0 - scene.uniform(0.2, 0.5, k) * np.exp(-((dist / width) ** 2))
    return albedo


def expose(image, rng, noise):
    """Apply a random exposure (mean grey and gain) and sensor noise to each tile.

    The mean grey level is entirely exposure. The contrast is the gain times
    the relief seen in the tile, so that, as in real images, a crater's
    shadow adds contrast to a tile.
    """
    n = len(image)
    image = (image - image.mean(axis=(1, 2), keepdims=True)) / _TYPICAL_STD
    if noise:
        image += noise * rng.standard_normal(image.shape, dtype=np.float32)
    grey = rng.normal(*_EXPOSURE_MEAN, (n, 1, 1))
    gain = rng.lognormal(*_GAIN_LOG, (n, 1, 1))
    return np.clip(np.rint(grey + gain * image), 0, 255).astype(np.uint8)


def _log_uniform(rng, low, high, size):
    return np.exp(rng.uniform(math.log(low), math.log(high), size))
