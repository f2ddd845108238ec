"""Reading whole images and crater catalogues from files.

Images: PGM/PPM, PNG and TIFF (8 or 16 bit) through Pillow; TIFF files that
Pillow cannot read (BigTIFF, tiled, compressed scientific TIFF) through
tifffile when it is installed. Mosaics larger than memory: TIFF files and
Zarr stores opened lazily as Dask arrays (:func:`open_image`). Catalogues:
CSV files with ``x, y, diameter`` columns, with a header or without one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["read_image", "read_catalogue", "IMAGE_SUFFIXES"]

#: File suffixes :func:`read_image` reads.
IMAGE_SUFFIXES = (".pgm", ".pnm", ".ppm", ".png", ".tif", ".tiff")

#: Side of the chunks a lazily opened file is cut into (in whole chunks of the file): large
#: enough that the overlap between chunks is a small part of them, small enough for a worker.
LAZY_CHUNK = 4096

_DASK_MISSING = "{what} needs Dask: pip install skcrater[dask]"

# Pillow's decompression-bomb guard stops at about 179 megapixels; planetary
# mosaics are larger by design, and a file's header size is checked below instead.
_MAX_PIXELS = 2**34


def read_image(path):
    """Read a grayscale image file as a 2-D array.

    Parameters
    ----------
    path : str or path-like
        A ``.pgm``/``.pnm``, ``.png`` or ``.tif``/``.tiff`` file, 8 or 16 bits
        per pixel, one channel.

    Returns
    -------
    image : ndarray of shape (rows, columns)
        ``uint8`` or ``uint16`` (or the TIFF's own numeric type), as stored.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        For an unknown suffix, an unreadable file, or a colour image (with
        the way to convert it).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from PIL import Image
    >>> from skcrater.detection import read_image
    >>> path = f"{tempfile.mkdtemp()}/scene.pgm"
    >>> Image.fromarray(np.full((4, 6), 7, dtype=np.uint8)).save(path)
    >>> read_image(path).shape
    (4, 6)
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"No image file at {path}.")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(
            f"{path}: unknown image format {suffix!r}; skcrater reads "
            f"{', '.join(IMAGE_SUFFIXES)} files (convert others, e.g. with GDAL or Pillow)."
        )
    image = _read_tiff(path) if suffix in (".tif", ".tiff") else _read_pillow(path)
    return _grayscale(image, path)


def open_image(path, *, lazy=False):
    """An image file as an array: lazily (a Dask array) for mosaics when ``lazy``.

    A Zarr store (a ``.zarr`` path, or a folder holding ``zarr.json`` or
    ``.zarray``) is always opened with Dask. With ``lazy``, a TIFF file is
    opened lazily too when Dask and tifffile are installed (and read whole
    otherwise); other files are read whole by :func:`read_image`.

    Raises
    ------
    ImportError
        For a Zarr store without Dask installed.
    """
    path = Path(os.fspath(path))
    if _is_zarr(path):
        return _lazy_zarr(path)
    if lazy and path.suffix.lower() in (".tif", ".tiff") and path.is_file() and _has_lazy_tiff():
        return _lazy_tiff(path)
    return read_image(path)


def _is_zarr(path):
    return path.suffix.lower() == ".zarr" or (
        path.is_dir() and ((path / "zarr.json").is_file() or (path / ".zarray").is_file())
    )


def _has_lazy_tiff():
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in ("dask", "tifffile", "zarr"))


def _lazy_zarr(path):
    try:
        import dask.array as da
    except ImportError:
        raise ImportError(_DASK_MISSING.format(what=f"Reading the Zarr store {path}")) from None
    if not path.exists():
        raise FileNotFoundError(f"No Zarr store at {path}.")
    try:
        array = da.from_zarr(str(path))
    except Exception as exc:  # zarr's errors differ between versions 2 and 3
        raise ValueError(f"{path} is not a readable Zarr array: {exc}") from exc
    return _grayscale(_lazy_chunks(array), path)


class _TiffPixels:
    """A TIFF file's pixels, read through tifffile's Zarr view on each access.

    tifffile's store holds an open file and a lock, which cannot be pickled
    to a ``dask.distributed`` worker; this object holds only the path and
    opens the file again in each process that reads it.
    """

    def __init__(self, path):
        self.path = str(path)
        array = self._array()
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.chunks = array.chunks

    def _array(self):
        import tifffile
        import zarr

        array = getattr(self, "_open", None)
        if array is None:
            # level 0: the full resolution of a pyramidal TIFF
            store = tifffile.imread(self.path, aszarr=True, level=0)
            array = self._open = zarr.open(store, mode="r")
        return array

    def __getitem__(self, key):
        return self._array()[key]

    def __getstate__(self):
        return {k: v for k, v in vars(self).items() if k != "_open"}


def _lazy_tiff(path):
    import dask.array as da
    import tifffile

    try:
        pixels = _TiffPixels(path)
    except (ValueError, OSError, KeyError, tifffile.TiffFileError) as exc:
        raise ValueError(f"{path} is not a readable TIFF file: {exc}") from exc
    stat = path.stat()
    name = f"tiff-{da.core.tokenize(str(path.resolve()), stat.st_size, stat.st_mtime_ns)}"
    array = da.from_array(pixels, chunks=pixels.chunks, name=name, asarray=True)
    return _grayscale(_lazy_chunks(array), path)


def _lazy_chunks(array):
    """``array`` in chunks of about :data:`LAZY_CHUNK` pixels a side, each whole chunks of
    the file (a file's own tiles or strips may be far smaller than a detector's window)."""
    chunks = tuple(max(c[0], LAZY_CHUNK // c[0] * c[0]) if len(c) else 1 for c in array.chunks[:2])
    return array.rechunk(chunks + array.chunksize[2:])


def _read_pillow(path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.width * img.height > _MAX_PIXELS:
                raise ValueError(f"{path}: {img.width}x{img.height} pixels is too large.")
            img.load()
            mode = img.mode
            array = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path} is not a readable image file: {exc}") from exc
    # Pillow opens 16-bit PGM as 32-bit integers ("I") and big-endian ones as "I;16B"
    if mode == "I;16B" or (mode == "I" and array.size and 0 <= array.min() <= array.max() < 2**16):
        array = array.astype(np.uint16)
    return array


def _read_tiff(path):
    try:
        import tifffile
    except ImportError:
        return _read_pillow(path)
    try:
        return tifffile.imread(path)
    except (ValueError, OSError, tifffile.TiffFileError) as exc:
        raise ValueError(f"{path} is not a readable TIFF file: {exc}") from exc


def _grayscale(image, path):
    """``image`` as one grayscale channel, checked on its shape and type only, so that a
    lazy (Dask) array is checked without reading it."""
    if not hasattr(image, "dtype"):
        image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        raise ValueError(
            f"{path} is a colour image ({image.shape[-1]} channels); skcrater needs one "
            "grayscale channel. Convert it first, e.g. "
            "PIL.Image.open(path).convert('L').save('gray.png')."
        )
    if image.ndim != 2:
        raise ValueError(f"{path} holds an array of shape {image.shape}, not a 2-D image.")
    if image.dtype.kind not in "biuf":
        raise ValueError(f"{path} holds pixels of dtype {image.dtype}, not numbers.")
    return image


def read_catalogue(path, *, image_shape=None):
    """Read a crater catalogue from a CSV file.

    Parameters
    ----------
    path : str or path-like
        Comma-separated values: either a header naming (at least) ``x``,
        ``y`` and ``diameter`` (other columns are dropped), or no header and
        exactly three columns in that order. Pixels, origin at the top-left
        pixel, ``x`` the column. An empty file is an image without craters.
    image_shape : tuple of int, default=None
        ``(rows, columns)`` of the image: centres must lie inside it.

    Returns
    -------
    catalogue : pandas.DataFrame
        Float columns ``x``, ``y``, ``diameter``.

    Examples
    --------
    >>> import tempfile
    >>> from skcrater.detection import read_catalogue
    >>> path = f"{tempfile.mkdtemp()}/craters.csv"
    >>> _ = open(path, "w").write("298.3,1178.5,4.8\\n804.6,1639.1,21.0\\n")
    >>> read_catalogue(path)["diameter"].tolist()
    [4.8, 21.0]
    """
    import pandas as pd

    from .detection._catalogue import COLUMNS, check_catalogue

    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"No catalogue file at {path}.")
    try:
        table = pd.read_csv(path, header=None, skipinitialspace=True, dtype=str)
    except pd.errors.EmptyDataError:
        return check_catalogue(None, name=str(path))
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable CSV file: {exc}") from exc
    first = [str(v).strip().lower() for v in table.iloc[0]]
    if set(COLUMNS) <= set(first):
        table = table.iloc[1:].set_axis(first, axis=1)[list(COLUMNS)]
    elif any(_is_text(v) for v in first):
        raise ValueError(
            f"{path}: the header {first} does not name the columns {list(COLUMNS)}; give "
            "them, or no header and exactly three columns x, y, diameter."
        )
    elif table.shape[1] != len(COLUMNS):
        raise ValueError(
            f"{path} has {table.shape[1]} columns and no header; a headerless catalogue has "
            "exactly three: x, y, diameter."
        )
    else:
        table.columns = list(COLUMNS)
    return check_catalogue(table, image_shape=image_shape, name=str(path))


def _is_text(value):
    try:
        float(value)
    except ValueError:
        return True
    return False
