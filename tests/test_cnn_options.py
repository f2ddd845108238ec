"""CraterCNNClassifier options: training-time augmentation, learning-rate schedules, preset."""

import pickle

import numpy as np
import pytest
from conftest import TINY_CNN, make_blob_images
from sklearn.base import clone

from skcrater import CraterCNNClassifier
from skcrater._network import AUGMENTATIONS, augment_tiles, augmented_batches, shift_tiles


@pytest.mark.parametrize("augment", sorted(AUGMENTATIONS))
def test_augment_tiles_draws_from_the_named_symmetries(augment):
    tile = np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1)
    out = augment_tiles(np.repeat(tile, 200, axis=0), augment, np.random.default_rng(0))
    seen = {t.tobytes() for t in out}
    assert len(seen) == len(AUGMENTATIONS[augment])
    assert tile.tobytes() in seen
    # every output is a symmetry of the square of the input: same pixel values
    assert all(sorted(t.ravel()) == list(range(16)) for t in out[:10])


def test_flip_ud_keeps_left_right_order():
    tile = np.arange(16).reshape(1, 4, 4, 1)
    out = augment_tiles(np.repeat(tile, 50, axis=0), "flip_ud", np.random.default_rng(1))
    flipped = out[~np.all(out == tile, axis=(1, 2, 3))]
    assert flipped.size
    np.testing.assert_array_equal(flipped[0], tile[0, ::-1])


def test_shift_tiles_translates_within_bounds_and_mirrors_borders():
    tiles = np.arange(2 * 7 * 7, dtype=np.float32).reshape(2, 7, 7, 1)
    out = shift_tiles(np.repeat(tiles[:1], 300, axis=0), 2, np.random.default_rng(0))
    padded = np.pad(tiles[0, :, :, 0], 2, mode="reflect")
    windows = {padded[i : i + 7, j : j + 7].tobytes() for i in range(5) for j in range(5)}
    seen = {t[:, :, 0].tobytes() for t in out}
    # every output is one of the 25 shifted windows, and all of them occur
    assert seen == windows
    assert tiles[0].tobytes() in {t.tobytes() for t in out}


def test_augment_tiles_shifts_after_the_symmetry():
    tile = np.arange(36, dtype=np.float32).reshape(1, 6, 6, 1)
    out = augment_tiles(np.repeat(tile, 100, axis=0), None, np.random.default_rng(0), 1)
    assert len({t.tobytes() for t in out}) == 9
    np.testing.assert_array_equal(augment_tiles(tile, None, np.random.default_rng(0)), tile)


def _epoch(dataset):
    batches = [tuple(np.asarray(part) for part in batch) for batch in dataset]
    return [np.concatenate(parts) for parts in zip(*batches, strict=True)], len(batches)


def test_augmented_batches_cover_each_tile_once_per_epoch_in_a_new_order():
    n = 10
    x = np.arange(n * 9, dtype=np.float32).reshape(n, 3, 3, 1)
    y = np.arange(n, dtype=np.float32)
    w = y + 100
    dataset = augmented_batches(x, y, w, augment=None, max_shift=0, batch_size=4, seed=0)
    assert int(dataset.cardinality()) == 3
    (x1, y1, w1), n_batches = _epoch(dataset)
    (x2, y2, _), _ = _epoch(dataset)
    assert n_batches == 3
    assert sorted(y1) == list(y)
    # tiles, labels and weights stay together
    np.testing.assert_array_equal(x1, x[y1.astype(int)])
    np.testing.assert_array_equal(w1, y1 + 100)
    assert not np.array_equal(y1, y2)
    # the same seed gives the same epochs
    again = augmented_batches(x, y, w, augment=None, max_shift=0, batch_size=4, seed=0)
    np.testing.assert_array_equal(_epoch(again)[0][0], x1)


def test_augmented_batches_augment_afresh_every_epoch():
    x = np.repeat(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1), 32, axis=0)
    y = np.zeros(32, dtype=np.float32)
    dataset = augmented_batches(x, y, y + 1, augment="dihedral", max_shift=0, batch_size=32, seed=3)
    first, second = _epoch(dataset)[0][0], _epoch(dataset)[0][0]
    assert len({t.tobytes() for t in first}) > 1
    assert not np.array_equal(first, second)


@pytest.mark.parametrize(
    "side, augment",
    [(16, {"augment": "dihedral"}), (28, {"augment": "flip_ud"}), (16, {"max_shift": 3})],
)
def test_augment_only_in_training(tiny_cnn_params, side, augment):
    X, y = make_blob_images(n=40, side=side, random_state=side)
    params = dict(tiny_cnn_params, random_state=0, validation_fraction=0.25)
    plain = CraterCNNClassifier(**params).fit(X, y)
    aug = CraterCNNClassifier(**params, **augment).fit(X, y)
    # inference: deterministic and the tiles are not transformed
    p = aug.predict_proba(X)
    np.testing.assert_array_equal(p, aug.predict_proba(X))
    aug.set_params(augment=None, max_shift=0)
    np.testing.assert_array_equal(p, aug.predict_proba(X))
    # training: the network saw other tiles than the plain one did
    assert not np.allclose(p, plain.predict_proba(X))
    assert aug.n_epochs_ == len(aug.history_["val_loss"]) == 2
    assert 1 <= aug.best_epoch_ <= 2


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
def test_augmented_fit_is_reproducible_and_picklable(tiny_cnn_params, blob_images):
    X, y = blob_images
    clf = CraterCNNClassifier(
        **tiny_cnn_params, augment="flips", preprocessing="standardize", random_state=4
    )
    p1 = clone(clf).fit(X, y).predict_proba(X)
    fitted = clf.fit(X, y)
    np.testing.assert_allclose(fitted.predict_proba(X), p1, atol=1e-6)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(fitted)).predict_proba(X), p1, atol=1e-6)


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
def test_augment_warm_start_continues(tiny_cnn_params, blob_images):
    X, y = blob_images
    clf = CraterCNNClassifier(
        **tiny_cnn_params,
        augment="flip_lr",
        preprocessing="standardize",
        warm_start=True,
        random_state=0,
    )
    first = clf.fit(X, y).predict_proba(X)
    second = clf.fit(X, y).predict_proba(X)
    assert not np.allclose(first, second)


def test_rotations_need_square_tiles(tiny_cnn_params):
    X = np.random.default_rng(0).integers(0, 255, size=(20, 16, 12), dtype=np.uint8)
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match="square"):
        CraterCNNClassifier(**tiny_cnn_params, augment="rot90").fit(X, y)
    CraterCNNClassifier(**tiny_cnn_params, augment="flips").fit(X, y)


def test_invalid_options_are_rejected(tiny_cnn_params, blob_images):
    X, y = blob_images
    with pytest.raises(ValueError, match="augment"):
        CraterCNNClassifier(augment="shear").fit(X, y)
    with pytest.raises(ValueError, match="lr_schedule"):
        CraterCNNClassifier(lr_schedule="step").fit(X, y)
    with pytest.raises(ValueError, match="max_shift"):
        CraterCNNClassifier(max_shift=-1).fit(X, y)
    with pytest.raises(ValueError, match="max_shift=16 must be smaller than the tiles' sides"):
        CraterCNNClassifier(**tiny_cnn_params, max_shift=16).fit(X, y)
    with pytest.raises(ValueError, match="validation"):
        CraterCNNClassifier(**tiny_cnn_params, lr_schedule="plateau", validation_fraction=0).fit(
            X, y
        )


def _learning_rates(schedule, **params):
    import keras

    class Record(keras.callbacks.Callback):
        rates = []

        def on_epoch_begin(self, epoch, logs=None):
            self.rates.append(float(self.model.optimizer.learning_rate))

    X, y = make_blob_images(n=32, side=16)
    record = Record()
    CraterCNNClassifier(lr_schedule=schedule, random_state=0, **params).fit(
        X, y, callbacks=[record]
    )
    return record.rates


def test_cosine_schedule_decays_learning_rate(tiny_cnn_params):
    params = dict(tiny_cnn_params, epochs=4, learning_rate=1e-2)
    rates = _learning_rates("cosine", **params)
    assert rates[0] == pytest.approx(1e-2)
    assert rates[-1] == pytest.approx(1e-4)
    assert np.all(np.diff(rates) < 0)
    assert _learning_rates(None, **params) == pytest.approx([1e-2] * 4)


def test_plateau_schedule_runs(tiny_cnn_params):
    # a tiny rate: the validation loss barely moves, so the rate is halved
    params = dict(tiny_cnn_params, epochs=6, learning_rate=1e-7, patience=6)
    rates = _learning_rates("plateau", **params)
    assert len(rates) == 6
    assert rates[0] == pytest.approx(1e-7)
    assert min(rates) < 1e-7


def test_recommended_is_an_unfitted_configured_estimator():
    clf = CraterCNNClassifier.recommended()
    assert isinstance(clf, CraterCNNClassifier)
    assert not hasattr(clf, "classes_")
    assert clf.get_params() != CraterCNNClassifier().get_params()
    assert CraterCNNClassifier.recommended(random_state=4).random_state == 4
    assert clone(clf).get_params() == clf.get_params()


@pytest.mark.slow
def test_recommended_trains_on_28x28_tiles():
    X, y = make_blob_images(n=40, side=28, random_state=1)
    clf = CraterCNNClassifier.recommended(random_state=0).set_params(epochs=1)
    clf.fit(X, y)
    assert clf.image_shape_ == (28, 28)
    assert clf.predict(X).shape == (40,)


def test_recommended_smallest_tiles_are_26_pixels_a_side():
    # the documented minimum of CraterCNNClassifier.recommended
    X, y = make_blob_images(n=20, side=26, random_state=2)
    clf = CraterCNNClassifier.recommended(random_state=0, epochs=1).fit(X, y)
    assert clf.image_shape_ == (26, 26)
    X, y = make_blob_images(n=20, side=25, random_state=2)
    with pytest.raises(ValueError, match="25x25 pixels are too small"):
        CraterCNNClassifier.recommended(random_state=0, epochs=1).fit(X, y)


def test_recommended_documented_override_trains_on_14_pixel_tiles():
    # the two-block override that the recommended() docstring offers for small tiles
    X, y = make_blob_images(n=20, side=14, random_state=2)
    two_blocks = dict(conv_filters=(16, 64), pool_sizes=(3, 2), epochs=1, random_state=0)
    clf = CraterCNNClassifier.recommended(**two_blocks).fit(X, y)
    assert clf.image_shape_ == (14, 14)
    X, y = make_blob_images(n=20, side=13, random_state=2)
    with pytest.raises(ValueError, match="too small"):
        CraterCNNClassifier.recommended(**two_blocks).fit(X, y)


# ------------------------------------------------------ local contrast normalisation
LOCAL = {**TINY_CNN, "epochs": 3, "preprocessing": "local", "local_size": 5, "random_state": 0}


def test_local_preprocessing_normalises_inside_the_network():
    X, y = make_blob_images(n=48, side=16)
    clf = CraterCNNClassifier(**LOCAL).fit(X, y)
    assert clf.model_.layers[1].name == "local_contrast"
    assert clf.model_.layers[1].get_config()["size"] == 5
    p = clf.predict_proba(X)[:, 1]
    assert p.std() > 0.01
    # an affine change of exposure changes only the rounding to uint8
    darker = np.clip(np.rint(0.6 * X.astype(float) + 30), 0, 255).astype(np.uint8)
    np.testing.assert_allclose(clf.predict_proba(darker)[:, 1], p, atol=0.05)
    scaled = CraterCNNClassifier(**{**LOCAL, "preprocessing": "scale"}).fit(X, y)
    assert scaled.model_.layers[1].name != "local_contrast"


def test_local_size_must_be_odd_and_fit_the_tiles():
    X, y = make_blob_images(n=20, side=16)
    with pytest.raises(ValueError, match="local_size=6 must be odd"):
        CraterCNNClassifier(**{**LOCAL, "local_size": 6}).fit(X, y)
    with pytest.raises(ValueError, match="vanishes at a local contrast normalisation"):
        CraterCNNClassifier(**{**LOCAL, "local_size": 17}).fit(X, y)
    # ignored unless preprocessing="local"
    CraterCNNClassifier(**{**LOCAL, "preprocessing": "scale", "local_size": 31, "epochs": 1}).fit(
        X, y
    )


def test_local_preprocessing_round_trips_through_a_model_file(tmp_path):
    from skcrater import load, save

    X, y = make_blob_images(n=32, side=16)
    clf = CraterCNNClassifier(**LOCAL).fit(X, y)
    path = save(clf, tmp_path / "local.skcrater")
    np.testing.assert_array_equal(load(path).predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(clf)).predict_proba(X), clf.predict_proba(X)
    )


def test_recommended_with_local_preprocessing_needs_14_more_pixels():
    X, y = make_blob_images(n=20, side=40, random_state=2)
    clf = CraterCNNClassifier.recommended(preprocessing="local", epochs=1, random_state=0)
    assert clf.fit(X, y).image_shape_ == (40, 40)
    X, y = make_blob_images(n=20, side=39, random_state=2)
    with pytest.raises(ValueError, match="39x39 pixels are too small"):
        clf.fit(X, y)
