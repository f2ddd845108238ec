"""Reading whole images and crater catalogues from files.

Images: PGM/PPM, PNG and TIFF (8 or 16 bit) through Pillow; TIFF files that
Pillow cannot read (BigTIFF, tiled, compressed scientific TIFF) through
tifffile when it is installed. Catalogues: CSV files with ``x, y, diameter``
columns, with a header or without one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["read_image", "read_catalogue", "IMAGE_SUFFIXES"]

#: File suffixes :func:`read_image` reads.
IMAGE_SUFFIXES = (".pgm", ".pnm", ".ppm", ".png", ".tif", ".tiff")

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
