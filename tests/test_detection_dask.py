"""CraterDetector on Dask arrays, Zarr stores and TIFF files: the same craters as in memory."""

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
from test_detection_detector import detector, tiny_cnn  # noqa: E402

from skcrater.datasets import make_crater_scene  # noqa: E402
from skcrater.detection import CraterDetector  # noqa: E402

# chunks far smaller than the scene, so that many craters straddle a chunk border (and each
# above the overlap the detector needs, so that it keeps these borders)
CHUNKS = ((100, 100, 120), (90, 110, 120))


@pytest.fixture(scope="module")
def fitted():
    image, catalogue = make_crater_scene(192, n_craters=40, diameter_range=(5, 40), random_state=0)
    # "local": a network with skcrater's own Keras layer, which a fresh worker must unpickle
    return detector(tiny_cnn(preprocessing="local")).fit(image, catalogue)


@pytest.fixture(scope="module")
def scene():
    return make_crater_scene(320, n_craters=90, diameter_range=(5, 40), random_state=3)[0]


@pytest.fixture(scope="module")
def in_memory(fitted, scene):
    return fitted.predict(scene)[0]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster


class CountingDetector(CraterDetector):
    """Counts how often it is pickled (in this process: the client and the scheduler)."""

    pickles = 0

    def __getstate__(self):
        type(self).pickles += 1
        return super().__getstate__()


def _assert_same_detections(found, expected):
    assert len(expected) > 10
    assert list(found.columns) == list(expected.columns)
    np.testing.assert_allclose(found.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-6)


def _straddling(table, image):
    """Detections whose crater crosses a border between two chunks of ``image``."""
    out = np.zeros(len(table), dtype=bool)
    for column, sizes in (("y", image.chunks[0]), ("x", image.chunks[1])):
        borders = np.cumsum(sizes)[:-1] - 0.5
        gap = np.abs(table[column].to_numpy()[:, None] - borders).min(axis=1)
        out |= gap < table["diameter"].to_numpy() / 2
    return out


def _with_threshold(fitted, threshold):
    det = clone(fitted).set_params(threshold=threshold)
    det.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
    return det


# a low threshold keeps many weak peaks near chunk borders: too little overlap shows there
@pytest.mark.parametrize("threshold", [None, 0.1])
def test_threads_give_the_craters_found_in_memory(fitted, scene, in_memory, threshold):
    det = fitted if threshold is None else _with_threshold(fitted, threshold)
    expected = in_memory if threshold is None else det.predict(scene)[0]
    image = da.from_array(scene, chunks=CHUNKS)
    with dask.config.set(scheduler="threads"):
        found = det.predict(image)[0]
    _assert_same_detections(found, expected)
    # the merge of neighbouring chunks is exercised: craters on borders, each reported once
    assert _straddling(found, image).sum() >= 3


def _unpickled_network(data):
    return type(pickle.loads(data).estimator_.model_).__name__


# before any prediction on the cluster: distributed retries a key that a worker cannot
# unpickle for ever, so that predict would hang instead of failing
def test_a_fresh_worker_unpickles_the_fitted_detector(fitted, cluster):
    with distributed.Client(cluster) as client:
        names = client.run(_unpickled_network, pickle.dumps(fitted))
    assert sorted(names.values()) == ["Functional", "Functional"]


def test_a_local_cluster_gives_the_craters_found_in_memory(fitted, scene, in_memory, cluster):
    image = da.from_array(scene, chunks=CHUNKS)
    with distributed.Client(cluster):
        found = fitted.predict(image)[0]
    _assert_same_detections(found, in_memory)


def test_the_detector_reaches_the_workers_once_not_once_per_chunk(fitted, scene, cluster):
    counting = CountingDetector.__new__(CountingDetector)
    counting.__dict__.update(vars(fitted))
    image = da.from_array(scene, chunks=CHUNKS)
    n_chunks = image.npartitions
    CountingDetector.pickles = 0
    with distributed.Client(cluster):
        counting.predict(image)
    # once into the graph, once to the worker that holds it; workers pass it on between them
    assert 1 <= CountingDetector.pickles <= 2 < n_chunks


@pytest.mark.parametrize("scale", [1.0, 0.4])
def test_score_map_of_a_dask_array_is_lazy_and_equals_the_one_in_memory(fitted, scene, scale):
    image = da.from_array(scene, chunks=CHUNKS)
    scores = fitted.score_map(image, scale=scale)
    assert isinstance(scores, da.Array) and scores.dtype == np.float32
    assert min(scores.numblocks) > 1  # one block of scores per chunk of the image
    expected = fitted.score_map(scene, scale=scale)
    with dask.config.set(scheduler="threads"):
        np.testing.assert_allclose(scores.compute(), expected, rtol=0, atol=1e-6)


def test_a_zarr_store_and_a_tiled_tiff_are_read_lazily(fitted, scene, in_memory, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    zarr = pytest.importorskip("zarr")
    from skcrater._imageio import open_image

    store = zarr.open_array(
        tmp_path / "scene.zarr", mode="w", shape=scene.shape, chunks=(64, 64), dtype=scene.dtype
    )
    store[:] = scene
    tifffile.imwrite(tmp_path / "scene.tif", scene, tile=(64, 64))
    for path in (tmp_path / "scene.zarr", tmp_path / "scene.tif"):
        assert isinstance(open_image(path, lazy=True), da.Array)
        with dask.config.set(scheduler="threads"):
            _assert_same_detections(fitted.predict(path)[0], in_memory)


def test_a_zarr_store_without_dask_says_how_to_install_it(fitted, tmp_path, monkeypatch):
    (tmp_path / "scene.zarr").mkdir()
    for name in [m for m in sys.modules if m == "dask" or m.startswith("dask.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"pip install skcrater\[dask\]"):
        fitted.predict(tmp_path / "scene.zarr")


def _never_computed(block):
    raise AssertionError("the image was computed before it was checked")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (da.zeros((3, 200, 200), chunks=100), "images\\[0\\] must be a 2-D grayscale image"),
        (da.zeros((200, 200, 3), chunks=100), "colour image"),
        (da.zeros((200, 200), chunks=(10, 100)), "images\\[0\\] has chunks of 10 rows"),
        (da.zeros((200, 200), chunks=(100, 20)), "chunks of 20 columns, fewer than the 24"),
        (da.zeros((200, 12), chunks=100), "smaller than the 24-pixel window"),
    ],
)
def test_bad_dask_images_are_refused_before_any_compute(fitted, image, message):
    image = image.map_blocks(_never_computed, dtype=image.dtype)
    with pytest.raises(ValueError, match=message):
        fitted.predict(image)
    if image.ndim == 2:
        with pytest.raises(ValueError, match=message):
            fitted.score_map(image)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (da.zeros((200, 200), dtype=bool, chunks=100), "images\\[0\\] must hold numbers"),
        (da.from_array(np.full((200, 200), "a"), chunks=100), "dtype <U1"),
    ],
)
def test_dask_images_of_no_numbers_are_a_type_error_as_in_memory(fitted, image, message):
    image = image.map_blocks(_never_computed, dtype=image.dtype)
    with pytest.raises(TypeError, match=message):
        fitted.predict(image)
    with pytest.raises(TypeError, match=message):
        fitted.score_map(image)


def test_nan_in_one_chunk_is_refused_naming_the_image(fitted, scene):
    image = scene.astype(np.float32)
    image[250, 30] = np.nan  # in the last row of chunks only
    lazy = da.from_array(image, chunks=CHUNKS)
    with dask.config.set(scheduler="threads"):
        with pytest.raises(ValueError, match=r"images\[1\] holds NaN or infinite pixels"):
            fitted.predict([scene, lazy])
        with pytest.raises(ValueError, match="image holds NaN"):
            fitted.score_map(lazy).compute()


def test_a_piece_of_a_level_is_that_part_of_the_whole_level(fitted, scene):
    from skcrater.detection._dask import _LevelPiece
    from skcrater.detection._sampling import ScaledImage

    block_origin = (37, 51)
    block = scene[block_origin[0] : 290, block_origin[1] : 300]
    stride, window = fitted.stride_, fitted.window
    for scale in fitted.scales_:
        whole = ScaledImage(scene, scale, divisor=255).array()
        # cells whose windows start some way inside the block, at every scale
        first = [int(np.ceil(start * scale / stride)) for start in (100, 120)]
        cells = tuple((i, i + 7) for i in first)
        piece = _LevelPiece(block, block_origin, scene.shape, scale, cells, fitted)
        rows, cols = (slice(a * stride, (b - 1) * stride + window) for a, b in cells)
        np.testing.assert_array_equal(piece.rows(0, piece.shape[0]), whole[rows, cols])


def test_import_loads_neither_dask_nor_tensorflow():
    code = (
        "import sys, skcrater, skcrater.detection\n"
        "skcrater.detection.CraterDetector\n"
        "loaded = {'dask', 'distributed', 'zarr', 'tensorflow'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_blank_mosaic_gives_an_empty_table(fitted):
    image = da.zeros((200, 200), dtype=np.uint8, chunks=100)
    with dask.config.set(scheduler="threads"):
        found = fitted.predict(image)[0]
    assert isinstance(found, pd.DataFrame) and len(found) == 0
    assert list(found.columns) == ["x", "y", "diameter", "score"]
