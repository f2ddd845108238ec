"""Tests of skcrater._imageio: image and catalogue files."""

import numpy as np
import pytest
from PIL import Image

from skcrater._imageio import read_catalogue, read_image


@pytest.fixture
def gray():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(30, 40), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".pgm", ".png", ".tif"])
def test_8_bit_images_round_trip(tmp_path, gray, suffix):
    path = tmp_path / f"image{suffix}"
    Image.fromarray(gray).save(path)
    image = read_image(path)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, gray)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".pgm"])
def test_16_bit_images_keep_their_range(tmp_path, suffix):
    values = (np.arange(30 * 40, dtype=np.uint16) * 53).reshape(30, 40)
    path = tmp_path / f"image{suffix}"
    Image.fromarray(values).save(path)
    image = read_image(path)
    assert image.dtype.kind == "u" and image.dtype.itemsize == 2
    np.testing.assert_array_equal(image, values)


def test_colour_image_is_refused_with_the_way_to_convert(tmp_path, gray):
    path = tmp_path / "colour.png"
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(path)
    with pytest.raises(ValueError, match="colour image.*convert\\('L'\\)"):
        read_image(path)


def test_unknown_suffix_missing_file_and_garbage(tmp_path):
    with pytest.raises(ValueError, match="unknown image format '.jpg'"):
        (tmp_path / "a.jpg").write_bytes(b"x")
        read_image(tmp_path / "a.jpg")
    with pytest.raises(FileNotFoundError, match="No image file"):
        read_image(tmp_path / "none.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        read_image(tmp_path / "bad.png")


def test_catalogue_with_header_keeps_its_three_columns(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_text("id,diameter,x,y\n7,20.5,10,12\n8,30,40,41\n")
    cat = read_catalogue(path)
    assert list(cat.columns) == ["x", "y", "diameter"]
    np.testing.assert_allclose(cat.to_numpy(), [[10, 12, 20.5], [40, 41, 30]])


def test_headerless_catalogue_is_x_y_diameter(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_text("298.33,1178.5,4.8\n804.56, 1639.1, 4.8\n")
    cat = read_catalogue(path)
    np.testing.assert_allclose(cat.to_numpy(), [[298.33, 1178.5, 4.8], [804.56, 1639.1, 4.8]])


def test_empty_catalogue_file_is_an_image_without_craters(tmp_path):
    path = tmp_path / "none.csv"
    path.write_text("")
    assert len(read_catalogue(path)) == 0
    path.write_text("x,y,diameter\n")
    assert len(read_catalogue(path)) == 0


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("1,2,3,4\n", {}, "4 columns and no header"),
        ("a,b,c\n1,2,3\n", {}, "does not name the columns"),
        ("x,y,diameter\n1,2,-3\n", {}, "non-positive diameter"),
        ("x,y,diameter\n1,,3\n", {}, "missing, NaN or non-numeric"),
        ("x,y,diameter\n1,abc,3\n", {}, "missing, NaN or non-numeric"),
        ("5,50,3\n", {"image_shape": (40, 40)}, "outside the 40x40 image"),
    ],
)
def test_bad_catalogues_are_refused(tmp_path, text, kwargs, message):
    path = tmp_path / "cat.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_catalogue(path, **kwargs)
