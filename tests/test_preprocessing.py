"""TileStandardizer: a stateless per-tile standardisation transformer."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skcrater import TileStandardizer
from skcrater._images import standardize_tiles


@parametrize_with_checks([TileStandardizer()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_each_tile_has_zero_mean_unit_std():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(5, 64)).astype(np.uint8)
    Xt = TileStandardizer().fit_transform(X)
    assert Xt.dtype == np.float32
    np.testing.assert_allclose(Xt.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(Xt.std(axis=1), 1, atol=1e-5)


def test_invariant_to_exposure_and_contrast():
    rng = np.random.default_rng(1)
    X = rng.uniform(50, 200, size=(4, 36))
    darker = 0.4 * X + 10
    t = TileStandardizer().fit(X)
    np.testing.assert_allclose(t.transform(X), t.transform(darker), atol=1e-5)


def test_stateless_output_of_a_tile_does_not_depend_on_others():
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 255, size=(6, 16))
    t = TileStandardizer().fit(rng.uniform(0, 10, size=(3, 16)))
    np.testing.assert_allclose(t.transform(X)[:2], t.transform(X[:2]))
    assert t.__sklearn_tags__().requires_fit is False


@pytest.mark.parametrize("shape", [(3, 8, 8), (3, 8, 8, 1)])
def test_images_keep_their_shape_and_match_flat(shape):
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 255, size=shape)
    t = TileStandardizer().fit(images)
    assert t.n_features_in_ == 64
    out = t.transform(images)
    assert out.shape == shape
    np.testing.assert_allclose(out.reshape(3, -1), t.transform(images.reshape(3, -1)))
    np.testing.assert_allclose(out, standardize_tiles(images))


def test_constant_tile_becomes_zeros():
    Xt = TileStandardizer().fit_transform(np.full((2, 9), 7.0))
    np.testing.assert_array_equal(Xt, 0)


def test_pixel_count_must_match_fit():
    t = TileStandardizer().fit(np.zeros((2, 16)))
    with pytest.raises(ValueError, match="16 features"):
        t.transform(np.zeros((2, 9)))
    with pytest.raises(ValueError, match="16 features"):
        t.transform(np.zeros((2, 3, 3)))


def test_in_a_pipeline_it_ignores_brightness(blob_images):
    X, y = blob_images
    model = make_pipeline(TileStandardizer(), LogisticRegression(max_iter=500)).fit(X, y)
    darker = (X * 0.5).astype(np.uint8)
    np.testing.assert_allclose(model.predict_proba(X), model.predict_proba(darker), atol=0.02)


def test_feature_names_out_are_the_input_names():
    X = np.arange(12.0).reshape(3, 4) ** 2
    t = TileStandardizer().fit(X)
    assert t.get_feature_names_out().tolist() == ["x0", "x1", "x2", "x3"]
    assert t.fit(np.zeros((2, 2, 2))).get_feature_names_out().tolist() == ["x0", "x1", "x2", "x3"]
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["p0", "p1", "p2", "p3"])
    assert t.fit(frame).get_feature_names_out().tolist() == ["p0", "p1", "p2", "p3"]
    with pytest.raises(ValueError, match="input_features"):
        t.get_feature_names_out(["a", "b", "c", "d"])


def test_set_output_pandas_keeps_names_and_index():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(rng.uniform(0, 255, (3, 4)), columns=list("abcd"), index=[7, 8, 9])
    t = TileStandardizer().set_output(transform="pandas")
    out = t.fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert out.columns.tolist() == list("abcd") and out.index.tolist() == [7, 8, 9]
    np.testing.assert_allclose(out.to_numpy(), standardize_tiles(frame.to_numpy()))
    # in a pipeline, the next step sees named columns
    model = make_pipeline(TileStandardizer(), LogisticRegression()).set_output(transform="pandas")
    model.fit(frame, [0, 1, 0])
    assert model[-1].feature_names_in_.tolist() == list("abcd")


def test_data_frame_output_refuses_images_clearly():
    pytest.importorskip("pandas")
    t = TileStandardizer().set_output(transform="pandas").fit(np.zeros((2, 9)))
    with pytest.raises(ValueError, match=r"TileStandardizer .* flat tiles only.*\(2, 3, 3\)"):
        t.transform(np.zeros((2, 3, 3)))
    out = t.set_output(transform="default").transform(np.zeros((2, 3, 3)))
    assert out.shape == (2, 3, 3)
