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


# ------------------------------------------------- pool_sizes="auto" and the preset
#: The preset's network as it was chosen on 48 px tiles (benchmarks/README.md):
#: (layer, output shape) of every layer, with preprocessing="standardize" and "local".
_PRESET_48 = [
    ("InputLayer", (48, 48, 1)),
    ("Conv2D(16, 3x3, valid)", (46, 46, 16)),
    ("Activation(relu)", (46, 46, 16)),
    ("MaxPooling2D(3)", (15, 15, 16)),
    ("Conv2D(64, 3x3, valid)", (13, 13, 64)),
    ("Activation(relu)", (13, 13, 64)),
    ("MaxPooling2D(2)", (6, 6, 64)),
    ("Conv2D(64, 3x3, valid)", (4, 4, 64)),
    ("Activation(relu)", (4, 4, 64)),
    ("MaxPooling2D(1)", (4, 4, 64)),
    ("Flatten", (1024,)),
    ("Dense(32, relu)", (32,)),
    ("Dropout(0.3)", (32,)),
    ("Dense(1, sigmoid)", (1,)),
]
_PRESET_48_LOCAL = [
    ("InputLayer", (48, 48, 1)),
    ("LOCAL", (34, 34, 1)),
    ("Conv2D(16, 3x3, valid)", (32, 32, 16)),
    ("Activation(relu)", (32, 32, 16)),
    ("MaxPooling2D(3)", (10, 10, 16)),
    ("Conv2D(64, 3x3, valid)", (8, 8, 64)),
    ("Activation(relu)", (8, 8, 64)),
    ("MaxPooling2D(2)", (4, 4, 64)),
    ("Conv2D(64, 3x3, valid)", (2, 2, 64)),
    ("Activation(relu)", (2, 2, 64)),
    ("MaxPooling2D(1)", (2, 2, 64)),
    ("Flatten", (256,)),
    ("Dense(32, relu)", (32,)),
    ("Dropout(0.3)", (32,)),
    ("Dense(1, sigmoid)", (1,)),
]


def _layers(model):
    """(layer, output shape) of each layer, in the words of network_summary_."""
    from skcrater._network import describe_network

    lines = describe_network(model).splitlines()
    return [
        (line.split(" -> ")[0].strip(), tuple(layer.output.shape)[1:])
        for line, layer in zip(lines, model.layers, strict=False)
    ]


def _reference_auto_pools(side, n_blocks=3, kernel=3, min_side=4, local=0):
    """The rule as documented, written independently: block by block, the largest
    pool (3, 2, 1) from which the later blocks can still leave >= min_side pixels
    (counted without the local layer) while no map vanishes with it."""

    def last(pools, shrink):
        s = side - shrink
        for pool in pools:
            s = (s - kernel + 1) // pool
            if s < 1:
                return 0
        return s

    chosen = []
    for block in range(n_blocks):
        rest = (1,) * (n_blocks - block - 1)  # the later blocks pool as little as possible
        for pool in (3, 2, 1):
            pools = (*chosen, pool, *rest)
            if last(pools, 0) >= min_side and last(pools, local) >= 1:
                chosen.append(pool)
                break
        else:
            return (1,) * n_blocks
    return tuple(chosen)


@pytest.mark.parametrize(
    ("side", "local_size", "expected"),
    [
        (7, None, (1, 1, 1)),  # the smallest tile: 1x1 last maps
        (9, None, (1, 1, 1)),  # no choice leaves 4 px: no pooling
        (16, None, (1, 2, 1)),
        (28, None, (3, 1, 1)),
        (32, None, (3, 1, 1)),
        (48, None, (3, 2, 1)),  # the network the preset was chosen with
        (64, None, (3, 3, 1)),
        (128, None, (3, 3, 2)),
        (21, 15, (1, 1, 1)),
        (28, 15, (2, 1, 2)),  # (3, 1, 1) would vanish after the local layer
        (48, 15, (3, 2, 1)),  # the detector's network
    ],
)
def test_auto_pool_sizes_table(side, local_size, expected):
    from skcrater._network import auto_pool_sizes

    pools = auto_pool_sizes(
        (side, side), conv_filters=(16, 64, 64), kernel_size=3, local_size=local_size
    )
    assert pools == expected


def test_auto_pool_sizes_follow_the_documented_rule_at_every_size():
    from skcrater._network import auto_pool_sizes

    for local_size in (None, 15):
        first = 7 if local_size is None else 21
        for side in range(first, 200):
            pools = auto_pool_sizes(
                (side, side), conv_filters=(16, 64, 64), kernel_size=3, local_size=local_size
            )
            local = 0 if local_size is None else local_size - 1
            assert pools == _reference_auto_pools(side, local=local), (side, local_size)
    # a non-square tile: the shorter side decides
    assert auto_pool_sizes((28, 64), conv_filters=(16, 64, 64), kernel_size=3) == (3, 1, 1)
    # other depths, and 'same' padding, which does not shrink the maps
    assert auto_pool_sizes((48, 48), conv_filters=(8, 8), kernel_size=3) == (3, 3)
    same = auto_pool_sizes((16, 16), conv_filters=(8, 8), kernel_size=3, padding="same")
    assert same == (3, 1)


def test_auto_pools_refuse_tiles_too_small_even_without_pooling():
    X, y = make_blob_images(n=20, side=6, random_state=2)
    as_they_are = dict(upsample_to=None, random_state=0, epochs=1)
    with pytest.raises(ValueError, match=r"6x6 pixels are too small .* at least 7 pixels"):
        CraterCNNClassifier.recommended(**as_they_are).fit(X, y)
    X, y = make_blob_images(n=20, side=20, random_state=2)
    local = CraterCNNClassifier.recommended(preprocessing="local", **as_they_are)
    with pytest.raises(ValueError, match=r"20x20 pixels .* local_size=15 .* at least 21 pixels"):
        local.fit(X, y)


def test_pool_sizes_must_be_auto_or_a_sequence():
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = make_blob_images(n=20)
    with pytest.raises(InvalidParameterError, match="pool_sizes"):
        CraterCNNClassifier(**{**TINY_CNN, "pool_sizes": "largest"}).fit(X, y)


def test_auto_pools_resolve_in_fit_and_the_parameter_keeps_auto():
    X, y = make_blob_images(n=32, side=16)
    clf = CraterCNNClassifier(**{**TINY_CNN, "pool_sizes": "auto", "random_state": 0})
    clf.fit(X, y)
    # one block on 16 px tiles: 14x14 maps, pooled by 3 to 4x4
    assert clf.pool_sizes_ == (3,)
    assert clf.pool_sizes == "auto"
    assert clf.get_params()["pool_sizes"] == "auto"
    assert clone(clf).get_params() == clf.get_params()
    lines = clf.network_summary_.splitlines()
    assert lines[1].startswith("Conv2D(4, 3x3, valid)") and lines[1].endswith("-> 14x14x4")
    assert lines[3].startswith("MaxPooling2D(3)") and lines[3].endswith("-> 4x4x4")
    assert lines[-1] == f"{clf.model_.count_params()} parameters"
    # a warm fit goes on with the fitted network's pools
    clf.set_params(warm_start=True, epochs=1).fit(X, y)
    assert clf.pool_sizes_ == (3,)
    # explicit pools are used as given
    fixed = CraterCNNClassifier(**{**TINY_CNN, "random_state": 0}).fit(X, y)
    assert fixed.pool_sizes_ == (2,)


@pytest.mark.slow
@pytest.mark.parametrize("preprocessing", ["standardize", "local"])
def test_recommended_48px_network_is_the_one_it_was_chosen_with(preprocessing):
    X, y = make_blob_images(n=20, side=48, random_state=1)
    clf = CraterCNNClassifier.recommended(preprocessing=preprocessing, epochs=1, random_state=0)
    clf.fit(X, y)
    assert clf.pool_sizes_ == (3, 2, 1)
    expected = _PRESET_48 if preprocessing == "standardize" else _PRESET_48_LOCAL
    got = _layers(clf.model_)
    if preprocessing == "local":
        assert clf.model_.layers[1].name == "local_contrast"
        got[1] = ("LOCAL", got[1][1])
    assert got == expected
    # and it trains exactly as the preset's former fixed pools did
    fixed = CraterCNNClassifier.recommended(
        preprocessing=preprocessing, pool_sizes=(3, 2, 1), epochs=1, random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), fixed.predict_proba(X))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("side", "network_side", "pools", "last"),
    [
        (16, 48, (3, 2, 1), 4),
        (28, 48, (3, 2, 1), 4),
        (32, 48, (3, 2, 1), 4),
        (48, 48, (3, 2, 1), 4),
        (64, 64, (3, 3, 1), 4),
        (128, 128, (3, 3, 2), 5),
    ],
)
def test_recommended_fits_every_tile_size_without_overrides(side, network_side, pools, last):
    X, y = make_blob_images(n=20, side=side, random_state=1)
    clf = CraterCNNClassifier.recommended(random_state=0, epochs=1).fit(X, y)
    assert clf.image_shape_ == (side, side)
    assert clf.pool_sizes_ == pools
    assert clf.pool_sizes == "auto"
    lines = clf.network_summary_.splitlines()
    enlarged = lines[1].startswith("Resizing")
    assert enlarged == (network_side != side)
    assert lines[1 + enlarged].endswith(f"-> {network_side - 2}x{network_side - 2}x16")
    flatten = [line for line in lines if line.startswith("Flatten")]
    assert flatten[0].endswith(f"-> {last * last * 64}")
    assert clf.predict(X).shape == (20,)


def test_explicit_pools_override_auto_in_the_preset():
    X, y = make_blob_images(n=20, side=14, random_state=2)
    two_blocks = dict(
        conv_filters=(16, 64), pool_sizes=(3, 2), upsample_to=None, epochs=1, random_state=0
    )
    clf = CraterCNNClassifier.recommended(**two_blocks).fit(X, y)
    assert clf.pool_sizes_ == (3, 2)
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
    X, y = make_blob_images(n=20, side=21, random_state=2)
    clf = CraterCNNClassifier.recommended(
        preprocessing="local", upsample_to=None, epochs=1, random_state=0
    )
    assert clf.fit(X, y).image_shape_ == (21, 21)
    assert clf.pool_sizes_ == (1, 1, 1)
    X, y = make_blob_images(n=20, side=20, random_state=2)
    with pytest.raises(ValueError, match="20x20 pixels are too small"):
        clf.fit(X, y)


# ------------------------------------------------------------------ upsample_to
@pytest.mark.parametrize(
    ("shape", "upsample_to", "expected"),
    [
        ((28, 28), 48, (48, 48)),
        ((16, 16), 48, (48, 48)),
        ((28, 64), 48, (48, 110)),  # one factor for both sides: the shorter one decides
        ((48, 48), 48, (48, 48)),
        ((64, 64), 48, (64, 64)),  # never shrunk
        ((28, 28), None, (28, 28)),
    ],
)
def test_upsampled_shape(shape, upsample_to, expected):
    from skcrater._network import upsampled_shape

    assert upsampled_shape(shape, upsample_to) == expected


UPSAMPLED = {
    **TINY_CNN,
    "pool_sizes": "auto",
    "upsample_to": 32,
    "preprocessing": "standardize",
    "random_state": 0,
}


def test_upsample_to_enlarges_small_tiles_inside_the_network():
    X, y = make_blob_images(n=32, side=16)
    clf = CraterCNNClassifier(**UPSAMPLED).fit(X, y)
    lines = clf.network_summary_.splitlines()
    assert lines[0].endswith("-> 16x16x1") and lines[1] == f"{'Resizing':<28} -> 32x32x1"
    # the pools are those of 32 px tiles (30x30 maps pooled by 3 to 10x10), not of 16 px
    assert clf.pool_sizes_ == (3,)
    assert lines[2].startswith("Conv2D(4, 3x3, valid)") and lines[2].endswith("-> 30x30x4")
    # predict takes the tiles' own size, and refuses the enlarged one
    assert clf.image_shape_ == (16, 16)
    assert clf.predict_proba(X).shape == (32, 2)
    with pytest.raises(ValueError, match="16x16"):
        clf.predict(make_blob_images(n=4, side=32)[0])
    assert clone(clf).get_params()["upsample_to"] == 32


def test_upsample_to_leaves_tiles_at_least_that_large_alone():
    X, y = make_blob_images(n=32, side=16)
    big = CraterCNNClassifier(**{**UPSAMPLED, "upsample_to": 16}).fit(X, y)
    plain = CraterCNNClassifier(**{**UPSAMPLED, "upsample_to": None}).fit(X, y)
    assert "Resizing" not in big.network_summary_
    np.testing.assert_array_equal(big.predict_proba(X), plain.predict_proba(X))


def test_upsample_to_sets_the_geometry_check():
    # 8 px tiles are too small for two 3x3 blocks pooled by 2, but not once enlarged to 24
    X, y = make_blob_images(n=32, side=8)
    two = {**TINY_CNN, "conv_filters": (4, 4), "pool_sizes": (2, 2)}
    with pytest.raises(ValueError, match="8x8 pixels are too small"):
        CraterCNNClassifier(**two).fit(X, y)
    clf = CraterCNNClassifier(**two, upsample_to=24, random_state=0).fit(X, y)
    assert clf.predict(X).shape == (32,)


def test_upsample_to_must_be_a_positive_int():
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = make_blob_images(n=20)
    for bad in (0, 2.5, "48"):
        with pytest.raises(InvalidParameterError, match="upsample_to"):
            CraterCNNClassifier(**{**TINY_CNN, "upsample_to": bad}).fit(X, y)


def test_upsampled_network_round_trips_and_pickles(tmp_path):
    from skcrater.persistence import load, save

    X, y = make_blob_images(n=32, side=16)
    clf = CraterCNNClassifier(**UPSAMPLED).fit(X, y)
    loaded = load(save(clf, tmp_path / "up.skcrater"))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(clf)).predict_proba(X), clf.predict_proba(X)
    )


def test_max_shift_counts_pixels_of_the_enlarged_tiles(monkeypatch):
    import skcrater._network as network

    seen = []
    real = network.augmented_batches

    def spy(*args, max_shift, **kwargs):
        seen.append(max_shift)
        return real(*args, max_shift=max_shift, **kwargs)

    monkeypatch.setattr(network, "augmented_batches", spy)
    X, y = make_blob_images(n=32, side=12)
    CraterCNNClassifier(**{**UPSAMPLED, "upsample_to": 24, "max_shift": 4, "epochs": 1}).fit(X, y)
    CraterCNNClassifier(**{**UPSAMPLED, "upsample_to": None, "max_shift": 4, "epochs": 1}).fit(X, y)
    # enlarged twice, a 12 px tile shifts by up to 2 of its own pixels; as it is, by 4
    assert seen == [2, 4]
