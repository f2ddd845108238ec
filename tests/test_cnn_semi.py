"""Consistency training and entropy minimisation on unlabelled tiles (issue 17)."""

import numpy as np
import pytest
from conftest import TINY_CNN, make_blob_images
from sklearn.base import clone

from skcrater import CraterCNNClassifier, SelfTrainingWrapper
from skcrater._consistency import STRONG_AUGMENTATIONS, strong_augment
from skcrater.datasets import make_craters
from skcrater.model_selection import SemiSupervisedKFold

SEMI = dict(TINY_CNN, random_state=0, augment="flip_ud", max_shift=1)


@pytest.fixture(scope="module")
def data():
    X, y = make_craters(n_samples=96, image_size=16, random_state=0)
    U, _ = make_craters(n_samples=48, image_size=16, random_state=1)
    return X, y, U


def _with_pool(X, y, U):
    return np.concatenate([X, U]), np.concatenate([y, np.full(len(U), -1)])


def test_weight_zero_is_bit_identical_to_no_unlabelled_tiles(data):
    X, y, U = data
    reference = CraterCNNClassifier(**SEMI).fit(X, y)
    p = reference.predict_proba(X)
    via_y = CraterCNNClassifier(**SEMI).fit(*_with_pool(X, y, U))
    via_arg = CraterCNNClassifier(**SEMI, unlabeled_threshold=0.5).fit(X, y, X_unlabeled=U)
    assert np.array_equal(p, via_y.predict_proba(X))
    assert np.array_equal(p, via_arg.predict_proba(X))
    assert via_y.history_ == reference.history_
    assert "unlabeled_share" not in reference.history_


def test_minus_one_rows_never_in_validation(data, monkeypatch):
    X, y, U = data
    Xa, ya = _with_pool(X, y, U)
    seen = {}
    original = CraterCNNClassifier._train

    def spy(self, x, y01, weights, val_data, *args, **kwargs):
        seen["train"], seen["val"] = x.shape[0], val_data[0].shape[0]
        seen["val_labels"] = set(np.unique(val_data[1]).tolist())
        return original(self, x, y01, weights, val_data, *args, **kwargs)

    monkeypatch.setattr(CraterCNNClassifier, "_train", spy)
    CraterCNNClassifier(**SEMI, unlabeled_weight=1.0).fit(Xa, ya)
    # the split is drawn from the 96 labelled tiles only: 19 + 77
    assert (seen["train"], seen["val"]) == (77, 19)
    assert seen["val_labels"] <= {0.0, 1.0}


def test_threshold_one_uses_no_pseudo_label(data):
    X, y, U = data
    clf = CraterCNNClassifier(**SEMI, unlabeled_weight=1.0, unlabeled_threshold=1.0)
    clf.fit(X, y, X_unlabeled=U)
    assert clf.history_["unlabeled_share"] == [0.0] * clf.n_epochs_
    assert clf.history_["unlabeled_loss"] == [0.0] * clf.n_epochs_


def test_consistency_changes_the_model_and_records_the_share(data):
    X, y, U = data
    base = CraterCNNClassifier(**SEMI).fit(X, y).predict_proba(U)
    clf = CraterCNNClassifier(**SEMI, unlabeled_weight=1.0, unlabeled_threshold=0.5)
    clf.fit(X, y, X_unlabeled=U)
    # threshold 0.5: every unlabelled tile gets a pseudo-label
    assert clf.history_["unlabeled_share"] == [1.0] * clf.n_epochs_
    assert np.abs(clf.predict_proba(U) - base).max() > 1e-3
    again = CraterCNNClassifier(**SEMI, unlabeled_weight=1.0, unlabeled_threshold=0.5)
    assert np.array_equal(again.fit(X, y, X_unlabeled=U).predict_proba(U), clf.predict_proba(U))
    # the same per-epoch record as supervised training, F1 included
    assert {"precision", "recall", "f1", "val_f1"} <= set(clf.history_)


def test_entropy_alone_and_per_class_thresholds(data):
    X, y, U = data
    clf = CraterCNNClassifier(
        **SEMI, unlabeled_entropy_weight=0.5, unlabeled_threshold={0: 0.5}
    ).fit(*_with_pool(X, y, U))
    assert len(clf.history_["unlabeled_share"]) == clf.n_epochs_
    # weight 0: no consistency loss, whatever passes
    assert clf.history_["unlabeled_loss"] == [0.0] * clf.n_epochs_


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (dict(unlabeled_weight=-1.0), "unlabeled_weight"),
        (dict(unlabeled_entropy_weight=-0.1), "unlabeled_entropy_weight"),
        (dict(unlabeled_threshold=0.0), "unlabeled_threshold"),
        (dict(unlabeled_threshold=1.5), "unlabeled_threshold"),
        (dict(unlabeled_threshold={0: 1.2}), "unlabeled_threshold"),
        (dict(unlabeled_threshold={7: 0.9}), "unlabeled_threshold"),
        (dict(unlabeled_ratio=0), "unlabeled_ratio"),
        (dict(unlabeled_augment=("noise", "rotate")), "unlabeled_augment"),
        (dict(unlabeled_augment="noise"), "unlabeled_augment"),
        (dict(unlabeled_prior=0.0), "unlabeled_prior"),
        (dict(unlabeled_prior=1.0), "unlabeled_prior"),
        (dict(unlabeled_prior="mean"), "unlabeled_prior"),
    ],
)
def test_bad_parameters_name_the_argument(data, params, match):
    X, y, U = data
    with pytest.raises(ValueError, match=match):
        CraterCNNClassifier(**{**SEMI, "unlabeled_weight": 1.0, **params}).fit(X, y, X_unlabeled=U)


def test_bad_unlabelled_tiles(data):
    X, y, U = data
    clf = CraterCNNClassifier(**SEMI, unlabeled_weight=1.0)
    with pytest.raises(ValueError, match="X_unlabeled"):
        clf.fit(X, y, X_unlabeled=U.reshape(len(U), 16, 16)[:, :12, :12])
    scaled = CraterCNNClassifier(**SEMI, unlabeled_weight=1.0, preprocessing="scale")
    with pytest.raises(ValueError, match="X_unlabeled"):
        scaled.fit(X, y, X_unlabeled=U / 255.0)
    with pytest.raises(ValueError, match="X_unlabeled"):  # standardised: the clear mix-up too
        clf.fit(X, y, X_unlabeled=U / 255.0)


def test_clone_and_get_params():
    clf = CraterCNNClassifier(unlabeled_weight=2.0, unlabeled_threshold={1: 0.9})
    params = clone(clf).get_params()
    assert params["unlabeled_weight"] == 2.0
    assert params["unlabeled_threshold"] == {1: 0.9}
    assert params["unlabeled_augment"] == STRONG_AUGMENTATIONS
    assert CraterCNNClassifier().unlabeled_weight == 0.0


def test_minus_one_and_one_labels_stay_binary(data):
    X, y, _ = data
    clf = CraterCNNClassifier(**SEMI).fit(X, np.where(y == 1, 1, -1))
    assert clf.classes_.tolist() == [-1, 1]


def test_strong_augment_keeps_shape_and_standardisation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 16, 16, 1)).astype(np.float32)
    out = strong_augment(x, STRONG_AUGMENTATIONS, rng, standardize=True)
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    assert not np.allclose(out, x)
    assert np.array_equal(strong_augment(x, (), rng, standardize=False), x)


def _spy_on_pools(monkeypatch):
    """A list that records len(X_unlabeled) (or None) of every CraterCNNClassifier fit."""
    pools = []
    original = CraterCNNClassifier.fit

    def spy(self, X, y, *args, X_unlabeled=None, **kwargs):
        pools.append(None if X_unlabeled is None else len(X_unlabeled))
        return original(self, X, y, *args, X_unlabeled=X_unlabeled, **kwargs)

    monkeypatch.setattr(CraterCNNClassifier, "fit", spy)
    return pools


def test_self_training_passes_the_remaining_pool(data, monkeypatch):
    X, y, U = data
    pools = _spy_on_pools(monkeypatch)
    inner = CraterCNNClassifier(**SEMI, unlabeled_weight=1.0)
    wrapper = SelfTrainingWrapper(inner, threshold=0.5, max_iter=1).fit(X, y, X_unlabeled=U)
    # first round: the whole pool; final fit: the tiles still unlabelled (none here)
    assert pools[0] == len(U)
    assert wrapper.termination_condition_ == "all_labeled"
    assert pools[-1] is None
    # without unlabeled_weight the inner CNN gets no pool, as before
    pools.clear()
    SelfTrainingWrapper(CraterCNNClassifier(**SEMI), threshold=0.5, max_iter=1).fit(
        X, y, X_unlabeled=U
    )
    assert set(pools) == {None}


def test_semi_supervised_kfold_keeps_minus_one_out_of_test(data):
    X, y, U = data
    Xa, ya = _with_pool(X, y, U)
    for train, test in SemiSupervisedKFold(3).split(Xa, ya):
        assert (ya[test] != -1).all()
        assert (ya[train] == -1).sum() == len(U)


def test_optuna_search_tunes_the_unlabelled_weight(data):
    optuna = pytest.importorskip("optuna")
    from skcrater import OptunaSearch

    X, y, U = data
    Xa, ya = _with_pool(X, y, U)
    space = {
        "unlabeled_weight": optuna.distributions.FloatDistribution(0.0, 2.0),
        "unlabeled_threshold": optuna.distributions.FloatDistribution(0.6, 0.99),
    }
    search = OptunaSearch(
        CraterCNNClassifier(**SEMI),
        space,
        cv=SemiSupervisedKFold(2),
        n_trials=2,
        max_epochs=2,
        random_state=0,
    ).fit(Xa, ya)
    assert 0.0 <= search.best_params_["unlabeled_weight"] <= 2.0
    assert len(search.study_.trials) == 2
    best = search.best_estimator_
    assert best.classes_.tolist() == [0, 1]
    if best.unlabeled_weight > 0:
        assert "unlabeled_share" in best.history_


def test_save_and_load_a_consistency_model(data, tmp_path):
    from skcrater import load, save

    X, y, U = data
    clf = CraterCNNClassifier(
        **SEMI, unlabeled_weight=1.0, unlabeled_threshold={0: 0.9, 1: 0.95}
    ).fit(X, y, X_unlabeled=U)
    save(clf, tmp_path / "model.skcrater")
    back = load(tmp_path / "model.skcrater")
    assert back.get_params() == clf.get_params()
    assert np.array_equal(back.predict_proba(X), clf.predict_proba(X))


def test_warmup_delays_the_unlabelled_terms(data):
    X, y, U = data
    params = dict(SEMI, epochs=3, validation_fraction=0.0, unlabeled_threshold=0.5)
    plain = CraterCNNClassifier(**params).fit(X, y)
    warm = CraterCNNClassifier(**params, unlabeled_weight=1.0, unlabeled_warmup=5)
    warm.fit(X, y, X_unlabeled=U)
    # the first epoch has a scale of 0: its loss is the supervised loss alone
    assert warm.history_["loss"][0] == pytest.approx(plain.history_["loss"][0], rel=0.05)
    full = CraterCNNClassifier(**params, unlabeled_weight=1.0).fit(X, y, X_unlabeled=U)
    assert full.history_["loss"][0] > warm.history_["loss"][0]


# ------------------------------------------------- a new share of craters


def _logits(clf, X):
    from scipy.special import logit

    return logit(clf.predict_proba(X)[:, 1])


def test_given_prior_moves_every_logit_by_bayes_rule(data):
    from scipy.special import logit

    X, y, U = data
    base = CraterCNNClassifier(**SEMI).fit(X, y)
    assert base.unlabeled_prior_ is None
    assert base.class_prior_.sum() == pytest.approx(1.0)
    assert base.class_prior_[1] == pytest.approx(y.mean(), abs=0.03)
    shifted = CraterCNNClassifier(**SEMI, unlabeled_prior=0.2).fit(X, y)
    assert shifted.unlabeled_prior_ == pytest.approx([0.8, 0.2])
    expected = logit(0.2) - logit(base.class_prior_[1])
    moved = _logits(shifted, U) - _logits(base, U)
    assert moved == pytest.approx(np.full(len(U), expected), abs=1e-3)
    # fewer craters expected: fewer predicted, the decision rule still exact
    p = shifted.predict_proba(U)[:, 1]
    assert np.array_equal(shifted.predict(U) == 1, p >= shifted.threshold)
    assert (shifted.predict(U) == 1).sum() <= (base.predict(U) == 1).sum()


def test_class_prior_counts_the_class_weights(data):
    X, y, _ = data
    clf = CraterCNNClassifier(**SEMI, class_weight="balanced", unlabeled_prior=0.5).fit(X, y)
    assert clf.class_prior_ == pytest.approx([0.5, 0.5], abs=0.03)


def test_em_prior_estimates_the_share_of_the_pool():
    from skcrater._prior import em_prior

    X, y = make_blob_images(96, random_state=0)  # half of them class 1
    U, u = make_blob_images(200, random_state=1)
    pool = np.r_[np.flatnonzero(u == 1)[:20], np.flatnonzero(u == 0)[:80]]  # a fifth class 1
    params = dict(SEMI, epochs=8)
    base = CraterCNNClassifier(**params).fit(X, y)
    expected = em_prior(base.predict_proba(U[pool])[:, 1], base.class_prior_[1])
    via_y = CraterCNNClassifier(**params, unlabeled_prior="em").fit(*_with_pool(X, y, U[pool]))
    via_arg = CraterCNNClassifier(**params, unlabeled_prior="em").fit(X, y, X_unlabeled=U[pool])
    for clf in (via_y, via_arg):
        assert clf.unlabeled_prior_[1] == pytest.approx(expected, abs=1e-6)
        assert np.array_equal(clf.class_prior_, base.class_prior_)
    assert via_y.unlabeled_prior_[1] == pytest.approx(0.2, abs=0.1)


def test_em_prior_without_unlabelled_tiles_is_refused_before_training(data, monkeypatch):
    X, y, _ = data

    def never(*args, **kwargs):
        raise AssertionError("trained before refusing")

    monkeypatch.setattr(CraterCNNClassifier, "_train", never)
    with pytest.raises(ValueError, match='unlabeled_prior="em".*X_unlabeled'):
        CraterCNNClassifier(**SEMI, unlabeled_prior="em").fit(X, y)


def test_em_prior_warns_when_it_runs_away(data):
    X, y, _ = data
    flat = np.full((20, 16, 16), 128, dtype=np.uint8)  # one probability for every tile
    with pytest.warns(UserWarning, match="barely separate the classes"):
        clf = CraterCNNClassifier(**SEMI, unlabeled_prior="em").fit(X, y, X_unlabeled=flat)
    assert min(clf.unlabeled_prior_) < 0.01


def test_warm_start_removes_the_previous_correction(data, monkeypatch):
    X, y, U = data
    base = CraterCNNClassifier(**SEMI).fit(X, y)
    clf = CraterCNNClassifier(**SEMI, unlabeled_prior=0.2).fit(X, y)
    # training that leaves the weights as they are: what changes is the correction
    monkeypatch.setattr(CraterCNNClassifier, "_train", lambda self, *args, **kwargs: None)
    clf.set_params(warm_start=True, unlabeled_prior=None)
    clf.fit(X, y)
    assert clf.unlabeled_prior_ is None
    assert _logits(clf, U) == pytest.approx(_logits(base, U), abs=1e-3)


def test_save_and_load_keep_the_correction(data, tmp_path):
    from skcrater import load, save

    X, y, U = data
    clf = CraterCNNClassifier(**SEMI, unlabeled_prior=0.3).fit(X, y)
    save(clf, tmp_path / "model.skcrater")
    back = load(tmp_path / "model.skcrater")
    assert np.array_equal(back.unlabeled_prior_, clf.unlabeled_prior_)
    assert np.array_equal(back.predict_proba(U), clf.predict_proba(U))


def test_self_training_passes_the_pool_to_the_em_prior(data, monkeypatch):
    X, y, U = data
    pools = _spy_on_pools(monkeypatch)
    inner = CraterCNNClassifier(**SEMI, unlabeled_prior=0.5)
    wrapper = SelfTrainingWrapper(inner, threshold=0.5, max_iter=1).fit(X, y, X_unlabeled=U)
    assert wrapper.termination_condition_ == "all_labeled"
    assert set(pools) == {None}  # a given share needs no tiles
    pools.clear()
    inner.set_params(unlabeled_prior="em")
    with pytest.warns(UserWarning, match="barely separate"):  # a 2-epoch network
        SelfTrainingWrapper(inner, threshold=0.5, max_iter=1).fit(X, y, X_unlabeled=U)
    # every round, the final fit included, sees all the tiles that came without a label
    assert pools == [len(U), len(U)]
