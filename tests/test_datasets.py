"""Tests of skcrater.datasets: the synthetic generator, the loaders and the submission writer."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import require_shared
from sklearn.metrics import roc_auc_score

from skcrater.datasets import load_course_data, load_hrsc48, make_craters, save_predictions

# ---------------------------------------------------------------- make_craters


@pytest.mark.parametrize("image_size", [8, 16, 28, 48])
def test_make_craters_shapes_and_dtypes(image_size):
    X, y = make_craters(30, image_size=image_size, random_state=0)
    assert X.shape == (30, image_size**2)
    assert X.dtype == np.uint8
    assert y.shape == (30,)
    assert y.dtype.kind == "i"
    assert set(np.unique(y)) <= {0, 1}
    # Not a blank or saturated image: grey levels vary inside tiles.
    assert np.all(X.std(axis=1) > 1)


@pytest.mark.parametrize(
    "weights, n_craters",
    [((0.36, 0.64), 64), ((0.5, 0.5), 50), ((1.0, 0.0), 0), ((0.0, 1.0), 100), ((1, 3), 75)],
)
def test_class_counts_follow_weights(weights, n_craters):
    _, y = make_craters(100, image_size=16, weights=weights, random_state=0)
    assert y.sum() == n_craters


def test_labels_are_shuffled():
    _, y = make_craters(100, image_size=16, random_state=0)
    assert 0 < y[:50].sum() < 50


def test_same_seed_same_tiles_other_seed_other_tiles():
    X1, y1 = make_craters(20, image_size=16, random_state=3)
    X2, y2 = make_craters(20, image_size=16, random_state=3)
    X3, _ = make_craters(20, image_size=16, random_state=4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize(
    "make_state", [np.random.RandomState, np.random.default_rng], ids=["RandomState", "Generator"]
)
def test_random_state_objects_are_reproducible(make_state):
    X1, _ = make_craters(10, image_size=16, random_state=make_state(7))
    X2, _ = make_craters(10, image_size=16, random_state=make_state(7))
    np.testing.assert_array_equal(X1, X2)


def test_unlabeled_pool():
    X, y, X_pool = make_craters(20, image_size=16, n_unlabeled=12, random_state=0)
    assert X.shape == (20, 256) and y.shape == (20,)
    assert X_pool.shape == (12, 256) and X_pool.dtype == np.uint8
    assert not any(np.array_equal(row, X[0]) for row in X_pool)


def test_unlabeled_weights_set_the_pool_class_mix():
    # Crater shadows add contrast, so a pool of crater tiles is more contrasted.
    kwargs = dict(n_samples=1, image_size=28, n_unlabeled=200, random_state=0)
    *_, craters = make_craters(**kwargs, unlabeled_weights=(0, 1))
    *_, no_craters = make_craters(**kwargs, unlabeled_weights=(1, 0))
    assert craters.std(axis=1).mean() > 1.2 * no_craters.std(axis=1).mean()


@pytest.fixture(scope="module")
def tiles28():
    return make_craters(600, image_size=28, random_state=0)


def test_classes_differ_but_not_in_mean_brightness(tiles28):
    X, y = tiles28
    X = X.astype(float)
    mean_grey = X.mean(axis=1)
    # Exposure is drawn alike for both classes: mean grey says nothing.
    assert 0.4 < roc_auc_score(y, mean_grey) < 0.6
    assert abs(mean_grey[y == 1].mean() - mean_grey[y == 0].mean()) < 0.25 * mean_grey.std()
    # ...but a crater's shadow is a patch much darker than the rest of the tile.
    darkest = mean_grey - np.percentile(X, 2, axis=1)
    assert roc_auc_score(y, darkest / X.std(axis=1).mean()) > 0.7


@pytest.mark.parametrize("light_angle, dark_side", [(180.0, "left"), (0.0, "right")])
def test_crater_shadow_lies_on_the_sunward_side(light_angle, dark_side):
    X, _ = make_craters(300, image_size=28, weights=(0, 1), light_angle=light_angle, random_state=0)
    images = X.reshape(-1, 28, 28).astype(float)
    mean = (images - images.mean(axis=(1, 2), keepdims=True)).mean(axis=0)
    left, right = mean[8:20, 6:14].mean(), mean[8:20, 14:22].mean()
    assert (left < right) == (dark_side == "left")
    assert abs(left - right) > 2


def test_random_light_angle_has_no_preferred_side():
    X, _ = make_craters(300, image_size=28, weights=(0, 1), light_angle=None, random_state=0)
    images = X.reshape(-1, 28, 28).astype(float)
    mean = (images - images.mean(axis=(1, 2), keepdims=True)).mean(axis=0)
    fixed, _ = make_craters(300, image_size=28, weights=(0, 1), light_angle=180, random_state=0)
    fixed = fixed.reshape(-1, 28, 28).astype(float)
    fixed_mean = (fixed - fixed.mean(axis=(1, 2), keepdims=True)).mean(axis=0)
    assert np.abs(mean).max() < 0.5 * np.abs(fixed_mean).max()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_samples=0), ValueError, "n_samples"),
        (dict(n_samples=2.5), ValueError, "n_samples"),
        (dict(image_size=7), ValueError, "image_size"),
        (dict(weights=(0.5,)), ValueError, "weights"),
        (dict(weights=(-0.5, 1.5)), ValueError, "weights"),
        (dict(weights=(0, 0)), ValueError, "weights"),
        (dict(weights=(np.nan, 1)), ValueError, "weights"),
        (dict(weights=("a", "b")), TypeError, "weights"),
        (dict(unlabeled_weights=(1, 1, 1)), ValueError, "unlabeled_weights"),
        (dict(noise=-0.1), ValueError, "noise"),
        (dict(diameter_range=(0.5, 0.2)), ValueError, "diameter_range"),
        (dict(diameter_range=(0.0, 0.5)), ValueError, "diameter_range"),
        (dict(diameter_range=(0.2,)), ValueError, "diameter_range"),
        (dict(light_angle=np.inf), ValueError, "light_angle"),
        (dict(light_angle="north"), ValueError, "light_angle"),
        (dict(n_unlabeled=-1), ValueError, "n_unlabeled"),
        (dict(random_state="seed"), ValueError, "random_state"),
    ],
)
def test_make_craters_rejects_bad_arguments(kwargs, error, match):
    kwargs = {"n_samples": 4, "image_size": 16, **kwargs}
    with pytest.raises(error, match=match):
        make_craters(**kwargs)


def test_import_loads_neither_tensorflow_nor_keras():
    code = (
        "import sys, skcrater.datasets; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------- load_course_data


def _write_course(folder, n=6, side=4, extra=3, test=2):
    rng = np.random.default_rng(0)
    files = {
        "Xtrain1.npy": rng.integers(0, 256, (n, side * side), dtype=np.uint8),
        "Ytrain1.npy": rng.integers(0, 2, n),
        "Xtrain1_extra.npy": rng.integers(0, 256, (extra, side * side), dtype=np.uint8),
        "Xtest1.npy": rng.integers(0, 256, (test, side * side), dtype=np.uint8),
    }
    for name, array in files.items():
        np.save(folder / name, array)
    return files


def test_load_course_data_round_trip(tmp_path):
    files = _write_course(tmp_path)
    data = load_course_data(tmp_path)
    assert set(data) == {"X", "y", "X_extra", "X_test"}
    for key, name in [("X", "Xtrain1"), ("y", "Ytrain1"), ("X_extra", "Xtrain1_extra")]:
        np.testing.assert_array_equal(data[key], files[f"{name}.npy"])
        assert data[key].dtype == files[f"{name}.npy"].dtype
    np.testing.assert_array_equal(data.X_test, files["Xtest1.npy"])


@pytest.mark.parametrize("missing", ["Xtrain1_extra.npy", "Xtest1.npy"])
def test_load_course_data_optional_files_may_be_missing(tmp_path, missing):
    _write_course(tmp_path)
    (tmp_path / missing).unlink()
    data = load_course_data(tmp_path)
    key = {"Xtrain1_extra.npy": "X_extra", "Xtest1.npy": "X_test"}[missing]
    assert data[key] is None
    assert data.X.shape == (6, 16)


@pytest.mark.parametrize("missing", ["Xtrain1.npy", "Ytrain1.npy"])
def test_load_course_data_missing_required_file_is_named(tmp_path, missing):
    _write_course(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        load_course_data(tmp_path)


def test_load_course_data_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_course_data(tmp_path / "nowhere")


def test_load_course_data_unlabeled_folder(tmp_path):
    files = _write_course(tmp_path)
    (tmp_path / "Xtrain1.npy").unlink()
    data = load_course_data(tmp_path, labeled=False)
    assert data.X is None
    np.testing.assert_array_equal(data.y, files["Ytrain1.npy"])
    assert data.X_extra.shape == (3, 16) and data.X_test.shape == (2, 16)


def test_load_course_data_unlabeled_needs_some_images(tmp_path):
    np.save(tmp_path / "Ytrain1.npy", np.zeros(3, dtype=int))
    with pytest.raises(FileNotFoundError, match="Xtest1.npy"):
        load_course_data(tmp_path, labeled=False)


@pytest.mark.parametrize(
    "name, array, match",
    [
        ("Ytrain1.npy", np.zeros(5, dtype=int), "Ytrain1.npy has 5 entries"),
        ("Ytrain1.npy", np.zeros((6, 1), dtype=int), "Ytrain1.npy must be 1-D"),
        ("Xtest1.npy", np.zeros((2, 25), dtype=np.uint8), "different numbers of pixels"),
        ("Xtrain1_extra.npy", np.zeros((3, 10), dtype=np.uint8), "Xtrain1_extra.npy must hold"),
        ("Xtrain1.npy", np.zeros((6, 4, 4), dtype=np.uint8), "Xtrain1.npy must hold"),
        ("Xtrain1.npy", np.array([["a"] * 16] * 6), "Xtrain1.npy must hold numbers"),
        ("Xtest1.npy", np.array([[None] * 16] * 2, dtype=object), "Xtest1.npy"),
    ],
)
def test_load_course_data_inconsistent_files(tmp_path, name, array, match):
    _write_course(tmp_path)
    np.save(tmp_path / name, array, allow_pickle=True)
    with pytest.raises(ValueError, match=match):
        load_course_data(tmp_path)


# ---------------------------------------------------------------- load_hrsc48


def _write_hrsc(folder, n=8, unlabeled=True):
    rng = np.random.default_rng(0)
    files = {
        "west_X.npy": rng.integers(0, 256, (n, 16), dtype=np.uint8),
        "west_y.npy": rng.integers(0, 2, n),
        "west_groups.npy": np.arange(n) // 2,
    }
    if unlabeled:
        files["west_unlabeled_X.npy"] = rng.integers(0, 256, (3, 16), dtype=np.uint8)
    for name, array in files.items():
        np.save(folder / name, array)
    return files


def test_load_hrsc48_round_trip(tmp_path):
    files = _write_hrsc(tmp_path)
    data = load_hrsc48(tmp_path)
    for key, name in [("X", "X"), ("y", "y"), ("groups", "groups"), ("X_unlabeled", "unlabeled_X")]:
        np.testing.assert_array_equal(data[key], files[f"west_{name}.npy"])


def test_load_hrsc48_unlabeled_is_optional(tmp_path):
    _write_hrsc(tmp_path, unlabeled=False)
    assert load_hrsc48(tmp_path).X_unlabeled is None


@pytest.mark.parametrize("missing", ["west_X.npy", "west_y.npy", "west_groups.npy"])
def test_load_hrsc48_missing_required_file_is_named(tmp_path, missing):
    _write_hrsc(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        load_hrsc48(tmp_path)


@pytest.mark.parametrize(
    "name, array",
    [
        ("west_groups.npy", np.zeros(7, dtype=int)),
        ("west_y.npy", np.zeros((8, 2), dtype=int)),
        ("west_unlabeled_X.npy", np.zeros((3, 9), dtype=np.uint8)),
    ],
)
def test_load_hrsc48_inconsistent_files(tmp_path, name, array):
    _write_hrsc(tmp_path)
    np.save(tmp_path / name, array)
    with pytest.raises(ValueError, match=name):
        load_hrsc48(tmp_path)


# ---------------------------------------------------------------- save_predictions


@pytest.mark.parametrize(
    "y_pred", [[0, 1, 1, 0], np.array([False, True, True, False]), np.array([0.0, 1.0, 1.0, 0.0])]
)
def test_save_predictions_round_trip(tmp_path, y_pred):
    path = save_predictions(y_pred, tmp_path / "Ytest1.npy")
    assert path == tmp_path / "Ytest1.npy"
    loaded = np.load(path, allow_pickle=False)
    assert loaded.dtype.kind == "i" and loaded.shape == (4,)
    np.testing.assert_array_equal(loaded, [0, 1, 1, 0])
    assert [p.name for p in tmp_path.iterdir()] == ["Ytest1.npy"]  # no temporary left


def test_save_predictions_appends_npy(tmp_path):
    path = save_predictions([1, 0], tmp_path / "Ytest1")
    assert path.name == "Ytest1.npy" and path.is_file()


def test_save_predictions_refuses_to_overwrite(tmp_path):
    path = save_predictions([1, 1, 1], tmp_path / "y.npy")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_predictions([0, 0, 0], path)
    np.testing.assert_array_equal(np.load(path), [1, 1, 1])
    save_predictions([0, 0], path, overwrite=True)
    np.testing.assert_array_equal(np.load(path), [0, 0])


@pytest.mark.parametrize(
    "y_pred, error, match",
    [
        ([0, 2, 1], ValueError, "only 0 and 1"),
        ([0.5, 1.0], ValueError, "only 0 and 1"),
        ([np.nan, 1.0], ValueError, "NaN"),
        ([[0, 1], [1, 0]], ValueError, "1-D"),
        ([], ValueError, "empty"),
        (["0", "1"], TypeError, "numeric"),
    ],
)
def test_save_predictions_bad_values_leave_existing_file_intact(tmp_path, y_pred, error, match):
    path = save_predictions([1, 0, 1], tmp_path / "y.npy")
    with pytest.raises(error, match=match):
        save_predictions(y_pred, path, overwrite=True)
    np.testing.assert_array_equal(np.load(path), [1, 0, 1])
    assert [p.name for p in tmp_path.iterdir()] == ["y.npy"]


def test_save_predictions_failed_write_leaves_existing_file_intact(tmp_path, monkeypatch):
    path = save_predictions([1, 0, 1], tmp_path / "y.npy")

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_predictions([0, 0, 0], path, overwrite=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(path), [1, 0, 1])
    assert [p.name for p in tmp_path.iterdir()] == ["y.npy"]


def test_save_predictions_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        save_predictions([0, 1], tmp_path / "nowhere" / "y.npy")


# ---------------------------------------------------------------- real data


@pytest.mark.realdata
def test_load_real_ist2425_as_unlabeled():
    folder = require_shared("ist2425")
    with pytest.raises(FileNotFoundError, match="Xtrain1.npy"):
        load_course_data(folder)
    data = load_course_data(folder, labeled=False)
    assert data.X is None
    assert data.y.shape == (2783,) and set(np.unique(data.y)) == {0, 1}
    assert data.X_extra.shape == (904, 2304) and data.X_test.shape == (696, 2304)
    assert data.X_extra.dtype == np.uint8


@pytest.mark.realdata
def test_load_real_hrsc48():
    data = load_hrsc48(require_shared("hrsc48"))
    assert data.X.shape == (1959, 2304) and data.X.dtype == np.uint8
    assert data.y.shape == data.groups.shape == (1959,)
    assert abs(data.y.mean() - 0.64) < 0.01
    assert len(np.unique(data.groups)) == 32
    assert data.X_unlabeled.shape == (1500, 2304)


# ---------------------------------------------------------------- renderer


def test_make_craters_draws_the_tiles_it_drew_before_the_renderer_moved():
    """Checksums of the tiles drawn before the renderer moved to ``skcrater._render``.

    Computed on the code of commit 89cda87, where the renderer still lived in
    ``datasets.py``: the move (issue 13) is proven to change no tile. The
    examples, the tests and the figures in ``benchmarks/README.md`` were all
    drawn this way, so any later change of the draw (the order of the random
    numbers included) must be deliberate: update the checksums then, and say
    so in the changelog.
    """
    import hashlib

    X, y = make_craters(n_samples=20, random_state=0)
    assert X.shape == (20, 2304) and X.dtype == np.uint8
    assert hashlib.sha256(X.tobytes()).hexdigest() == (
        "e19ac04764fd314f3274638c51a3e610e11f6cc755921ecb3a564c5cf4899b92"
    )
    assert y.tolist() == [1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0]
    # a random sun per tile, another size and an unlabelled pool take the other branches
    arrays = make_craters(
        n_samples=20, image_size=16, n_unlabeled=5, light_angle=None, random_state=3
    )
    digest = hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()
    assert digest == "7e8d94e75fd8f8c19951dbd4f4af19a44dbf9a5a56987dd1166ae00a330a4175"


def test_renderer_builds_a_scene_from_its_layers():
    """The renderer's pieces compose outside make_craters: craters where they are put."""
    from skcrater import _render

    rng = np.random.default_rng(0)
    scene = _render.Scene(2, 32, rng, _render.sun_azimuth(2, rng, 90.0))
    scene.add_craters(np.array([0]), np.array([16.0]), np.array([16.0]), np.array([16.0]))
    light = scene.render()
    assert light.shape == (2, 32, 32)
    # the sun is in the north: the crater's northern wall is in shadow, the flat tile is not
    assert light[0, 10:14, 12:20].mean() < 0.5 * light[1].mean()
    tiles = _render.expose(light, rng, noise=0.1)
    assert tiles.shape == (2, 32, 32) and tiles.dtype == np.uint8


def test_save_predictions_refuses_a_folder(tmp_path):
    (tmp_path / "y.npy").mkdir()
    with pytest.raises(IsADirectoryError, match="folder"):
        save_predictions([0, 1], tmp_path / "y.npy", overwrite=True)


# ---------------------------------------------------------------- scenes
def test_make_crater_scene_returns_an_image_and_its_catalogue():
    from skcrater.datasets import make_crater_scene
    from skcrater.detection import check_catalogue

    image, catalogue = make_crater_scene(200, n_craters=30, diameter_range=(8, 40), random_state=0)
    assert image.shape == (200, 200) and image.dtype == np.uint8
    assert list(catalogue.columns) == ["x", "y", "diameter"] and len(catalogue) == 30
    assert catalogue["diameter"].between(8, 40).all()
    check_catalogue(catalogue, image_shape=image.shape)  # every centre inside the image
    again, same = make_crater_scene(200, n_craters=30, diameter_range=(8, 40), random_state=0)
    np.testing.assert_array_equal(again, image)
    assert same.equals(catalogue)
    other, _ = make_crater_scene(200, n_craters=30, diameter_range=(8, 40), random_state=1)
    assert not np.array_equal(other, image)


def test_scene_craters_are_where_the_catalogue_says():
    from skcrater.datasets import make_crater_scene

    image, catalogue = make_crater_scene(
        256, n_craters=12, diameter_range=(20, 30), noise=0.0, random_state=3
    )
    flat, _ = make_crater_scene(256, n_craters=0, noise=0.0, random_state=3)
    # craters add contrast: the grey levels around each centre vary more than in the same
    # place of the crater-free scene drawn from the same seed
    inside = []
    for x, y, d in catalogue.to_numpy():
        r0, r1 = int(max(y - d / 2, 0)), int(min(y + d / 2, 255)) + 1
        c0, c1 = int(max(x - d / 2, 0)), int(min(x + d / 2, 255)) + 1
        inside.append(image[r0:r1, c0:c1].std() > flat[r0:r1, c0:c1].std())
    assert np.mean(inside) >= 0.9


def test_scene_without_craters_has_an_empty_catalogue():
    from skcrater.datasets import make_crater_scene

    image, catalogue = make_crater_scene(64, n_craters=0, diameter_range=(4, 20), random_state=0)
    assert image.shape == (64, 64) and len(catalogue) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"diameter_range": (0, 10)}, "0 < low <= high"),
        ({"diameter_range": (10, 5)}, "0 < low <= high"),
        ({"diameter_range": (10, 500)}, "beyond the 100-pixel image"),
        ({"light_angle": float("nan")}, "light_angle"),
    ],
)
def test_make_crater_scene_rejects_bad_parameters(kwargs, message):
    from skcrater.datasets import make_crater_scene

    with pytest.raises(ValueError, match=message):
        make_crater_scene(100, **kwargs)
