"""Tests of skcrater.detection.CraterDetector on small synthetic scenes."""

import numpy as np
import pandas as pd
import pytest
from conftest import make_blob_images
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from skcrater import CraterCNNClassifier
from skcrater.datasets import make_crater_scene
from skcrater.detection import CraterDetector, match_craters

WINDOW = 24
RANGE = (8, 20)


def tiny_cnn(**overrides):
    params = dict(
        conv_filters=(8, 16),
        pool_sizes=(2, 2),
        dense_units=(16,),
        dropout=0.0,
        epochs=20,
        class_weight="balanced",
        learning_rate=3e-3,
        batch_size=64,
        random_state=0,
    )
    return CraterCNNClassifier(**{**params, **overrides})


def detector(estimator=None, **overrides):
    params = dict(window=WINDOW, diameter_range=RANGE, max_diameter=40, random_state=0)
    estimator = estimator if estimator is not None else tiny_cnn()
    return CraterDetector(estimator, **{**params, **overrides})


@pytest.fixture(scope="module")
def scenes():
    return [
        make_crater_scene(192, n_craters=40, diameter_range=(5, 40), random_state=seed)
        for seed in (0, 1)
    ]


@pytest.fixture(scope="module")
def fitted(scenes):
    (image, catalogue), _ = scenes
    return detector().fit(image, catalogue)


def _windows(image, stride, shape, window=WINDOW):
    view = np.lib.stride_tricks.sliding_window_view(image, (window, window))
    return view[::stride, ::stride][: shape[0], : shape[1]].reshape(-1, window, window)


def test_parameters_clone_and_defaults():
    det = CraterDetector()
    assert det.get_params()["estimator"] is None and det.get_params()["window"] == 48
    assert clone(detector(stride=3)).get_params()["stride"] == 3


def test_fit_cuts_every_kind_of_training_window(fitted):
    counts = fitted.training_counts_
    assert counts["positive"] > 0 and counts["random_negative"] > 0
    assert {"rim_or_floor", "off_centre", "wrong_scale"} <= set(counts)
    assert fitted.estimator_.image_shape_ == (WINDOW, WINDOW)
    # scales from 1 until the 40 px craters reach the window's 20 px
    np.testing.assert_allclose(fitted.scales_, np.sqrt(20 / 8) ** -np.arange(3))
    assert fitted.stride_ == 4  # the network's pooling: 2 x 2


def test_predict_returns_one_table_per_image(fitted, scenes):
    tables = fitted.predict([scenes[1][0], scenes[0][0]])
    assert len(tables) == 2
    for table in tables:
        assert list(table.columns) == ["x", "y", "diameter", "score"]
        assert (table["score"] >= fitted.threshold_).all()
        assert table["score"].is_monotonic_decreasing
    single = fitted.predict(scenes[1][0])
    assert len(single) == 1 and single[0].equals(tables[0])


def test_detections_find_craters_of_an_unseen_scene(fitted, scenes):
    image, catalogue = scenes[1]
    result = match_craters(fitted.predict(image)[0], catalogue, min_diameter=8, max_diameter=40)
    # far better than detections at random places would do
    assert result.recall > 0.5 and result.average_precision > 0.3


@pytest.mark.parametrize(("scale", "stride"), [(1.0, None), (0.63, None), (1.0, 3)])
def test_dense_score_map_equals_predict_proba_on_cut_windows(fitted, scenes, scale, stride):
    from skcrater.detection._sampling import rescale

    det = fitted if stride is None else clone(fitted).set_params(stride=stride)
    if stride is not None:
        det = detector(FrozenEstimator(fitted.estimator_), stride=stride).fit(*scenes[0])
    image = scenes[1][0]
    scores = det.score_map(image, scale=scale)
    scaled = rescale(image.astype(np.float32) / 255, scale)  # the detector's own grey levels
    tiles = _windows(scaled, det.stride_, scores.shape)
    expected = det.estimator_.predict_proba(tiles)[:, 1].reshape(scores.shape)
    assert expected.std() > 0.01
    np.testing.assert_allclose(scores, expected, atol=1e-4)


def test_dense_scan_carries_the_class_share_correction(scenes):
    from skcrater.detection._sampling import rescale

    det = detector(tiny_cnn(epochs=5, unlabeled_prior=0.1)).fit(*scenes[0])
    assert det.estimator_.unlabeled_prior_[1] == pytest.approx(0.1)
    image = scenes[1][0]
    scores = det.score_map(image)
    tiles = _windows(rescale(image.astype(np.float32) / 255, 1.0), det.stride_, scores.shape)
    expected = det.estimator_.predict_proba(tiles)[:, 1].reshape(scores.shape)
    np.testing.assert_allclose(scores, expected, atol=1e-4)


def test_a_frozen_fitted_estimator_is_used_as_it_is(fitted, scenes):
    frozen = FrozenEstimator(fitted.estimator_)
    det = detector(frozen).fit(*scenes[0])
    assert det.estimator_ is frozen and det.training_counts_ == {}
    np.testing.assert_allclose(det.score_map(scenes[1][0]), fitted.score_map(scenes[1][0]))


def _vote(*voters, weights=None):
    from sklearn.ensemble import VotingClassifier

    named = [(f"v{i}", voter) for i, voter in enumerate(voters)]
    return VotingClassifier(named, voting="soft", weights=weights)


@pytest.fixture(scope="module")
def voted(scenes):
    """A detector around a soft vote of two small CNNs of different seeds, weighted 1:3."""
    vote = _vote(tiny_cnn(epochs=3), tiny_cnn(epochs=3, random_state=1), weights=[1, 3])
    return detector(vote, threshold=0.5).fit(*scenes[0])


def test_a_soft_vote_of_cnns_is_scanned_densely_as_its_predict_proba(voted, scenes, monkeypatch):
    monkeypatch.setattr(CraterDetector, "_scan_windows", None)  # no cut windows at all
    image = scenes[1][0]
    scores = voted.score_map(image)
    assert voted.stride_ == 4  # the voters' own step
    tiles = _windows(image.astype(np.float32) / 255, 4, scores.shape)
    expected = voted.estimator_.predict_proba(tiles)[:, 1].reshape(scores.shape)
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    first, second = (v.predict_proba(tiles)[:, 1] for v in voted.estimator_.estimators_)
    assert np.abs(first - second).max() > 0.05  # the weights matter
    np.testing.assert_allclose(scores.ravel(), 0.25 * first + 0.75 * second, atol=1e-4)


def test_a_vote_with_a_voter_that_cannot_scan_densely_is_given_cut_windows(voted, scenes):
    from skcrater.detection._detector import _dense_networks

    cnn = voted.estimator_.estimators_[0]
    mixed = _vote(FrozenEstimator(cnn), Flat(max_iter=200)).fit(*_flat_tiles(scenes))
    assert _dense_networks(mixed) is None and len(_dense_networks(voted.estimator_)) == 2
    det = detector(FrozenEstimator(mixed), threshold=0.5).fit(*scenes[0])
    image = scenes[1][0]
    scores = det.score_map(image)
    tiles = _windows(image.astype(np.float32) / 255, det.stride_, scores.shape)
    expected = mixed.predict_proba(tiles)[:, 1].reshape(scores.shape)
    np.testing.assert_allclose(scores, expected, atol=1e-6)


def _flat_tiles(scenes):
    image = scenes[0][0].astype(np.float32) / 255
    tiles = _windows(image, 8, (20, 20))
    return tiles, (tiles.mean(axis=(1, 2)) > np.median(tiles.mean(axis=(1, 2)))).astype(int)


def test_a_detector_around_a_vote_round_trips_through_a_model_file(voted, scenes, tmp_path):
    from skcrater import load, save

    loaded = load(save(voted, tmp_path / "vote.skcrater"))
    image = scenes[1][0]
    np.testing.assert_array_equal(loaded.score_map(image), voted.score_map(image))
    pd.testing.assert_frame_equal(loaded.predict(image)[0], voted.predict(image)[0])


def test_any_classifier_with_predict_proba_scans_cut_windows(scenes):
    image, catalogue = scenes[0]
    logistic = LogisticRegression(max_iter=200)
    det = detector(Flat(max_iter=200), stride=6).fit(image, catalogue)
    assert det.stride_ == 6
    scores = det.score_map(image)
    tiles = _windows(image.astype(np.float32) / 255, 6, scores.shape)
    expected = det.estimator_.predict_proba(tiles)[:, 1].reshape(scores.shape)
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    assert logistic.get_params()  # the plain estimator is untouched


class Flat(LogisticRegression):
    """Logistic regression on the tiles' pixels; remembers what it was trained on."""

    def fit(self, X, y):
        self.seen_ = np.asarray(X)
        return super().fit(np.reshape(X, (len(X), -1)), y)

    def predict_proba(self, X):
        return super().predict_proba(np.reshape(X, (len(X), -1)))


def test_validation_rows_are_never_trained_on(scenes):
    image, catalogue = scenes[0]
    marked = np.minimum(image, 254)
    marked[-38:] = 255  # the last 20% of 192 rows: no training tile may show them
    det = detector(Flat(max_iter=200), stride=6).fit(marked, catalogue)
    assert det.estimator_.seen_.max() < 1.0
    assert det.validation_["rows"] == 38


def test_auto_threshold_is_the_best_f1_on_the_validation_rows(fitted, scenes):
    from skcrater.detection._validation import best_f1_threshold, split_rows

    image, catalogue = scenes[0]
    _, (rows, truth) = split_rows(image, catalogue, 0.2, WINDOW)
    every = clone(fitted).set_params(threshold=0.02)
    every.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
    scored = dict(min_diameter=8, max_diameter=fitted._largest())
    result = match_craters(every.predict(rows)[0], truth, **scored)
    assert fitted.threshold_ == pytest.approx(best_f1_threshold(result, default=0.5))
    assert fitted.validation_["f1"] == pytest.approx(
        match_craters(fitted.predict(rows)[0], truth, **scored).f1
    )


def test_a_threshold_set_after_fit_is_the_one_predict_uses(fitted, scenes):
    det = clone(fitted).set_params(threshold=0.9)
    det.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
    found = det.predict(scenes[1][0])[0]
    assert len(found) and found["score"].min() >= 0.9
    assert len(found) < len(det.set_params(threshold=0.3).predict(scenes[1][0])[0])


def test_auto_threshold_needs_validation_rows(scenes, fitted):
    image, catalogue = scenes[0]
    with pytest.raises(ValueError, match="threshold='auto' is chosen on validation rows"):
        detector(validation_fraction=0).fit(image, catalogue)
    # a frozen classifier was not trained on the images: they are its validation rows
    det = detector(FrozenEstimator(fitted.estimator_), validation_fraction=0).fit(image, catalogue)
    assert det.validation_["rows"] == image.shape[0] and 0 < det.threshold_ < 1
    numeric = detector(tiny_cnn(epochs=1), validation_fraction=0, threshold=0.7)
    assert numeric.fit(image, catalogue).validation_ == {}


def test_auto_threshold_without_validation_craters_falls_back_with_a_warning(scenes):
    image, catalogue = scenes[0]
    upper = catalogue[catalogue["y"] < 140]  # none in the last 38 rows
    with pytest.warns(UserWarning, match="no catalogued crater of the range"):
        det = detector(Flat(max_iter=200), stride=6).fit(image, upper)
    assert det.threshold_ == 0.5
    with pytest.warns(UserWarning, match="No training image is tall enough"):
        det = detector(Flat(max_iter=200), stride=6, validation_fraction=0.1).fit(image, upper)
    assert det.threshold_ == 0.5 and det.validation_ == {}


def test_same_seed_same_detector(scenes):
    image, catalogue = scenes[0]
    a = detector(tiny_cnn(epochs=2)).fit(image, catalogue)
    b = detector(tiny_cnn(epochs=2)).fit(image, catalogue)
    assert a.training_counts_ == b.training_counts_
    np.testing.assert_array_equal(a.score_map(image), b.score_map(image))


def test_an_empty_catalogue_is_an_image_without_craters(scenes):
    (image, catalogue), (other, _) = scenes
    det = detector(tiny_cnn(epochs=1)).fit([image, other], [catalogue, pd.DataFrame()])
    assert det.training_counts_["random_negative"] > 0


def test_second_round_adds_the_models_false_detections(scenes):
    image, catalogue = scenes[0]
    det = detector(tiny_cnn(epochs=2), hard_negative_rounds=1, threshold=0.3).fit(image, catalogue)
    assert "own_false_detections" in det.training_counts_


@pytest.mark.parametrize(
    ("images", "catalogues", "error", "message"),
    [
        (np.zeros((60, 60, 3)), None, ValueError, "colour image"),
        (np.zeros((10, 60)), None, ValueError, "smaller than the 24-pixel window"),
        (np.full((60, 60), np.nan), None, ValueError, "NaN"),
        (np.zeros((2, 60, 60, 2)), None, ValueError, "2-D grayscale"),
        (np.array([["a"] * 30] * 30), None, TypeError, "numbers"),
        ([], [], ValueError, "images is empty"),
        (np.zeros((60, 60)), pd.DataFrame({"x": [1.0], "y": [1.0]}), ValueError, "missing"),
        (np.zeros((60, 60)), [np.array([[10, 10, -3]])], ValueError, "non-positive diameter"),
        (np.zeros((60, 60)), [np.array([[80, 10, 10]])], ValueError, "outside the 60x60 image"),
        ([np.zeros((60, 60))] * 2, [None], ValueError, "one catalogue per image"),
    ],
)
def test_bad_images_and_catalogues_are_refused(images, catalogues, error, message):
    with pytest.raises(error, match=message):
        detector().fit(images, catalogues)


def test_bad_parameters_are_refused(scenes):
    image, catalogue = scenes[0]
    with pytest.raises(ValueError, match="diameter_range must satisfy"):
        detector(diameter_range=(20, 8)).fit(image, catalogue)
    with pytest.raises(ValueError, match="scales must be positive"):
        detector(scales=[1.0, -0.5]).fit(image, catalogue)
    with pytest.raises(ValueError, match="both are needed"):
        detector(scales=[1.0]).fit(image, pd.DataFrame())


def test_unknown_image_file_format_is_refused(tmp_path):
    path = tmp_path / "image.jpg"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown image format"):
        detector().fit(path, None)


def test_score_map_checks_its_arguments(fitted, scenes):
    with pytest.raises(ValueError, match="scale must be a positive number"):
        fitted.score_map(scenes[0][0], scale=0)
    with pytest.raises(ValueError, match="smaller than the 24-pixel window"):
        fitted.score_map(scenes[0][0], scale=0.1)


def test_a_fitted_detector_round_trips_through_a_model_file(fitted, scenes, tmp_path):
    from skcrater import load, save

    path = save(fitted, tmp_path / "detector.skcrater")
    loaded = load(path)
    assert isinstance(loaded, CraterDetector) and loaded.get_params()["window"] == WINDOW
    np.testing.assert_array_equal(loaded.score_map(scenes[1][0]), fitted.score_map(scenes[1][0]))
    pd.testing.assert_frame_equal(loaded.predict(scenes[1][0])[0], fitted.predict(scenes[1][0])[0])


def test_verbose_detection_shows_progress_over_every_row_of_every_level(fitted, scenes, capsys):
    det = clone(fitted).set_params(verbose=2)
    det.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
    image = scenes[1][0]
    rows = sum(det.score_map(image, scale=s).shape[0] for s in det.scales_)
    det.predict(image)
    out, err = capsys.readouterr()
    assert f"{rows}/{rows}" in out
    assert err.count("CraterDetector: scale") == len(det.scales_)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_a_classifier_fitted_on_8_bit_tiles_gets_tiles_in_its_own_units(scenes, padding):
    from skcrater.datasets import make_craters

    X, y = make_craters(n_samples=64, image_size=WINDOW, random_state=0)
    assert X.dtype == np.uint8
    cnn = tiny_cnn(epochs=1, padding=padding).fit(X, y)
    assert cnn.input_scale_ == 255
    det = detector(FrozenEstimator(cnn), threshold=0.5).fit(*scenes[0])
    image = scenes[1][0]
    scores = det.score_map(image)
    tiles = _windows(image.astype(np.float32), det.stride_, scores.shape)  # 0..255 floats
    expected = cnn.predict_proba(tiles)[:, 1].reshape(scores.shape)
    np.testing.assert_allclose(scores, expected, atol=1e-4)


def test_a_network_that_enlarges_its_windows_is_given_cut_windows(scenes):
    from skcrater.detection._detector import _dense_network

    X, y = make_blob_images(n=64, side=WINDOW)
    cnn = tiny_cnn(epochs=1, upsample_to=2 * WINDOW, preprocessing="scale").fit(X, y)
    assert cnn.model_.layers[1].name == "upsample"
    assert _dense_network(cnn) is None
    det = detector(FrozenEstimator(cnn), threshold=0.5).fit(*scenes[0])
    image = scenes[1][0]
    scores = det.score_map(image)
    tiles = _windows(image.astype(np.float32), det.stride_, scores.shape)
    expected = cnn.predict_proba(tiles)[:, 1].reshape(scores.shape)
    np.testing.assert_allclose(scores, expected, atol=1e-6)


def test_the_default_classifier_never_enlarges_its_windows():
    det = CraterDetector(window=32)
    assert det._make_estimator(np.random.RandomState(0)).upsample_to is None
