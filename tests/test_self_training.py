"""SelfTrainingWrapper: self-training for images and tabular data."""

import numpy as np
import pytest
from conftest import TINY_CNN, RowImageCNN, make_blob_images
from sklearn import config_context
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.semi_supervised import SelfTrainingClassifier
from sklearn.svm import SVC, LinearSVC
from sklearn.utils import get_tags
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from skcrater import CraterCNNClassifier, SelfTrainingWrapper

#: The checks that no self-training classifier can pass, whatever it wraps.
EXPECTED_FAILED_CHECKS = {
    "check_non_transformer_estimators_n_iter": (
        "n_iter_ is 0 without unlabelled samples; scikit-learn excuses its "
        "SelfTrainingClassifier for the same reason."
    ),
    "check_classifiers_classes": (
        "-1 marks unlabelled samples (the check's labels -1 and 1 leave one labelled class); "
        "scikit-learn exempts its semi-supervised classifiers from this check by name."
    ),
}


@parametrize_with_checks(
    [SelfTrainingWrapper(LogisticRegression(), max_iter=5)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
    xfail_strict=True,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(
    # RowImageCNN reads the checks' tabular rows as 1 x k images ("same" padding and no
    # pooling keep them non-empty), so that the checks run the wrapper around a real CNN
    [
        SelfTrainingWrapper(
            RowImageCNN(**{**TINY_CNN, "padding": "same", "pool_sizes": (1,), "random_state": 0}),
            max_iter=1,
        )
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
    xfail_strict=True,
)
# the checks' rows are standardised floats, not grey levels, which the CNN rightly warns about
@pytest.mark.filterwarnings("ignore:X holds:UserWarning")
def test_sklearn_compatible_around_a_cnn(estimator, check):
    check(estimator)


@pytest.fixture
def semi_data():
    """300 tabular samples, 2 classes, 80 labelled (the rest -1), and the true labels."""
    X, y = make_classification(
        n_samples=300, n_features=6, n_informative=3, weights=[0.6], flip_y=0.05, random_state=0
    )
    rng = np.random.default_rng(0)
    y_semi = y.copy()
    y_semi[rng.permutation(300)[80:]] = -1
    return X, y_semi, y


def _fitted_on_labelled(estimator, X, y_semi):
    return clone(estimator).fit(X[y_semi != -1], y_semi[y_semi != -1])


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize(
    "settings",
    [
        dict(threshold=0.75, max_iter=10),
        dict(threshold=0.95, max_iter=1),
        dict(threshold=0.6, max_iter=None),
        dict(threshold=0.999, max_iter=None),
        dict(criterion="k_best", k_best=25, max_iter=3),
        dict(max_iter=0),
    ],
)
def test_parity_with_scikit_learn(semi_data, settings):
    X, y_semi, _ = semi_data
    ours = SelfTrainingWrapper(LogisticRegression(), **settings).fit(X, y_semi)
    peer = SelfTrainingClassifier(LogisticRegression(), **settings).fit(X, y_semi)
    np.testing.assert_array_equal(ours.transduction_, peer.transduction_)
    np.testing.assert_array_equal(ours.labeled_iter_, peer.labeled_iter_)
    assert ours.n_iter_ == peer.n_iter_
    assert ours.termination_condition_ == peer.termination_condition_
    np.testing.assert_allclose(ours.predict_proba(X), peer.predict_proba(X))


def test_termination_conditions_all_reached(semi_data):
    X, y_semi, _ = semi_data
    fit = lambda **kw: SelfTrainingWrapper(LogisticRegression(), **kw).fit(X, y_semi)  # noqa: E731
    assert {
        fit(threshold=0.5, max_iter=None).termination_condition_,
        fit(threshold=0.75, max_iter=1).termination_condition_,
        fit(threshold=1.0, max_iter=None).termination_condition_,
    } == {"all_labeled", "max_iter", "no_change"}


# -------------------------------------------------------- pseudo-labelling
def test_per_class_threshold_labels_only_named_classes(semi_data):
    X, y_semi, _ = semi_data
    clf = SelfTrainingWrapper(LogisticRegression(), threshold={0: 0.75}, max_iter=1)
    clf.fit(X, y_semi)
    first = _fitted_on_labelled(LogisticRegression(), X, y_semi)
    p0 = first.predict_proba(X)[:, 0]
    unlabelled = y_semi == -1
    expected = unlabelled & (p0 >= 0.75)
    assert expected.sum() > 0
    np.testing.assert_array_equal(clf.labeled_iter_ == 1, expected)
    assert (clf.transduction_[expected] == 0).all()
    assert (clf.transduction_[unlabelled & ~expected] == -1).all()
    np.testing.assert_array_equal(clf.pseudo_label_counts_, [[expected.sum(), 0]])


def test_per_class_threshold_differs_by_class(semi_data):
    X, y_semi, _ = semi_data
    clf = SelfTrainingWrapper(LogisticRegression(), threshold={0: 0.99, 1: 0.6}, max_iter=1)
    clf.fit(X, y_semi)
    proba = _fitted_on_labelled(LogisticRegression(), X, y_semi).predict_proba(X)
    added = clf.labeled_iter_ == 1
    best, conf = proba.argmax(axis=1), proba.max(axis=1)
    expected = (y_semi == -1) & (conf >= np.where(best == 0, 0.99, 0.6))
    np.testing.assert_array_equal(added, expected)
    np.testing.assert_array_equal(clf.transduction_[added], best[added])


def test_pseudo_label_counts_match_labeled_iter(semi_data):
    X, y_semi, _ = semi_data
    clf = SelfTrainingWrapper(LogisticRegression(), threshold=0.8, max_iter=4).fit(X, y_semi)
    assert clf.pseudo_label_counts_.shape == (clf.n_iter_, 2)
    for round_, counts in enumerate(clf.pseudo_label_counts_, start=1):
        labels = clf.transduction_[clf.labeled_iter_ == round_]
        np.testing.assert_array_equal(counts, [(labels == c).sum() for c in clf.classes_])


@pytest.mark.parametrize("criterion", ["threshold", "k_best"])
def test_max_per_class_keeps_most_confident(semi_data, criterion):
    X, y_semi, _ = semi_data
    clf = SelfTrainingWrapper(
        LogisticRegression(),
        threshold=0.6,
        criterion=criterion,
        k_best=200,
        max_per_class=7,
        max_iter=1,
    ).fit(X, y_semi)
    np.testing.assert_array_equal(clf.pseudo_label_counts_, [[7, 7]])
    proba = _fitted_on_labelled(LogisticRegression(), X, y_semi).predict_proba(X)
    unlabelled = y_semi == -1
    for c in (0, 1):
        mine = unlabelled & (proba.argmax(axis=1) == c)
        chosen = mine & (clf.labeled_iter_ == 1)
        assert proba[chosen, c].min() >= proba[mine & ~chosen, c].max()


def test_max_per_class_dict_caps_named_class_only(semi_data):
    X, y_semi, _ = semi_data
    free = SelfTrainingWrapper(LogisticRegression(), max_iter=1).fit(X, y_semi)
    capped = SelfTrainingWrapper(LogisticRegression(), max_per_class={1: 3}, max_iter=1)
    capped.fit(X, y_semi)
    assert free.pseudo_label_counts_[0, 1] > 3
    np.testing.assert_array_equal(
        capped.pseudo_label_counts_, [[free.pseudo_label_counts_[0, 0], 3]]
    )


def test_k_best_adds_k_per_round(semi_data):
    X, y_semi, _ = semi_data
    clf = SelfTrainingWrapper(LogisticRegression(), criterion="k_best", k_best=30, max_iter=3)
    clf.fit(X, y_semi)
    np.testing.assert_array_equal(clf.pseudo_label_counts_.sum(axis=1), [30, 30, 30])


def test_x_unlabeled_equals_minus_one_rows(semi_data):
    X, y_semi, _ = semi_data
    lab = y_semi != -1
    X_ordered = np.concatenate([X[lab], X[~lab]])
    y_ordered = np.concatenate([y_semi[lab], y_semi[~lab]])
    marked = SelfTrainingWrapper(LogisticRegression()).fit(X_ordered, y_ordered)
    given = SelfTrainingWrapper(LogisticRegression()).fit(X[lab], y_semi[lab], X_unlabeled=X[~lab])
    np.testing.assert_array_equal(given.transduction_, marked.transduction_)
    np.testing.assert_array_equal(given.labeled_iter_, marked.labeled_iter_)


def test_string_labels_with_x_unlabeled(semi_data):
    X, y_semi, _ = semi_data
    lab = y_semi != -1
    names = np.array(["rock", "crater"])[y_semi[lab]]
    clf = SelfTrainingWrapper(LogisticRegression()).fit(X[lab], names, X_unlabeled=X[~lab])
    assert set(clf.predict(X)) <= {"rock", "crater"}
    assert (clf.transduction_[: lab.sum()] == names).all()


def test_object_labels_with_minus_one(semi_data):
    X, y_semi, _ = semi_data
    names = np.array(["rock", "crater"], dtype=object)[np.maximum(y_semi, 0)]
    names[y_semi == -1] = -1
    clf = SelfTrainingWrapper(LogisticRegression(), max_iter=2).fit(X, names)
    ref = SelfTrainingWrapper(LogisticRegression(), max_iter=2).fit(X, y_semi)
    assert list(clf.classes_) == ["crater", "rock"]
    np.testing.assert_array_equal(clf.labeled_iter_, ref.labeled_iter_)


# ------------------------------------------------------------- retraining
def test_retrain_continue_sets_warm_start_on_a_copy(semi_data):
    X, y_semi, _ = semi_data
    base = LogisticRegression()
    fresh = SelfTrainingWrapper(base, max_iter=2).fit(X, y_semi)
    warm = SelfTrainingWrapper(base, max_iter=2, retrain="continue").fit(X, y_semi)
    assert fresh.estimator_.warm_start is False
    assert warm.estimator_.warm_start is True
    assert base.warm_start is False
    np.testing.assert_array_equal(warm.transduction_, fresh.transduction_)


def test_retrain_continue_reaches_pipeline_final_step(semi_data):
    X, y_semi, _ = semi_data
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    clf = SelfTrainingWrapper(pipe, retrain="continue", max_iter=2).fit(X, y_semi)
    assert clf.estimator_[-1].warm_start is True


def test_retrain_continue_needs_warm_start(semi_data):
    X, y_semi, _ = semi_data
    with pytest.raises(ValueError, match="retrain='continue' needs an estimator with a warm_start"):
        SelfTrainingWrapper(GaussianNB(), retrain="continue").fit(X, y_semi)


def test_retrain_params_apply_after_first_fit(semi_data):
    X, y_semi, _ = semi_data
    clf = SelfTrainingWrapper(
        LogisticRegression(C=1.0), threshold={0: 0.75}, max_iter=1, retrain_params={"C": 0.01}
    ).fit(X, y_semi)
    assert clf.estimator_.C == 0.01
    # the pseudo-labels came from the C=1 fit on the labelled samples
    p0 = _fitted_on_labelled(LogisticRegression(C=1.0), X, y_semi).predict_proba(X)[:, 0]
    np.testing.assert_array_equal(clf.labeled_iter_ == 1, (y_semi == -1) & (p0 >= 0.75))


# ------------------------------------------------------------- delegation
def test_delegates_to_final_estimator_and_nested_params(semi_data):
    X, y_semi, y = semi_data
    clf = SelfTrainingWrapper(LogisticRegression(), max_iter=2)
    clf.set_params(estimator__C=0.3).fit(X, y_semi)
    assert clf.estimator_.C == 0.3
    np.testing.assert_array_equal(clf.predict(X), clf.estimator_.predict(X))
    np.testing.assert_allclose(clf.predict_proba(X), clf.estimator_.predict_proba(X))
    np.testing.assert_allclose(clf.decision_function(X), clf.estimator_.decision_function(X))
    assert clf.score(X, y) == clf.estimator_.score(X, y)
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert clf.n_features_in_ == 6


def test_methods_follow_estimator():
    assert not hasattr(SelfTrainingWrapper(GaussianNB()), "decision_function")
    assert hasattr(SelfTrainingWrapper(LogisticRegression()), "decision_function")
    assert not hasattr(SelfTrainingWrapper(SVC()), "predict_proba")


class DuckClassifier(BaseEstimator):
    """A classifier by its methods only: no ClassifierMixin, so no classifier_tags."""

    def fit(self, X, y):
        self.model_ = LogisticRegression().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def test_duck_typed_classifier_works_like_the_peer(semi_data):
    X, y_semi, _ = semi_data
    assert get_tags(DuckClassifier()).classifier_tags is None
    ours = SelfTrainingWrapper(DuckClassifier(), max_iter=2).fit(X, y_semi)
    peer = SelfTrainingClassifier(DuckClassifier(), max_iter=2).fit(X, y_semi)
    np.testing.assert_array_equal(ours.predict(X), peer.predict(X))
    assert get_tags(ours).classifier_tags.multi_class  # nothing known: the default


def test_tags_forward_the_estimators_multi_class():
    assert get_tags(SelfTrainingWrapper(LogisticRegression())).classifier_tags.multi_class
    cnn_tags = get_tags(SelfTrainingWrapper(CraterCNNClassifier())).classifier_tags
    assert cnn_tags.multi_class is False and cnn_tags.poor_score is True
    pipe = make_pipeline(FunctionTransformer(), CraterCNNClassifier())
    assert get_tags(SelfTrainingWrapper(pipe)).classifier_tags.multi_class is False


def test_one_labelled_class_is_left_to_the_estimator_like_the_peer(semi_data):
    X, y_semi, _ = semi_data
    one_class = np.where(y_semi == 0, -1, y_semi)
    ours = SelfTrainingWrapper(DummyClassifier()).fit(X, one_class)
    peer = SelfTrainingClassifier(DummyClassifier()).fit(X, one_class)
    np.testing.assert_array_equal(ours.transduction_, peer.transduction_)
    np.testing.assert_array_equal(ours.labeled_iter_, peer.labeled_iter_)
    assert ours.termination_condition_ == peer.termination_condition_ == "all_labeled"
    np.testing.assert_array_equal(ours.pseudo_label_counts_, [[(one_class == -1).sum()]])
    # an estimator that needs two classes says so itself, before any training
    with pytest.raises(ValueError) as peer_error:
        SelfTrainingClassifier(LogisticRegression()).fit(X, one_class)
    with pytest.raises(ValueError, match="only one class") as our_error:
        SelfTrainingWrapper(LogisticRegression()).fit(X, one_class)
    assert str(our_error.value) == str(peer_error.value)
    with pytest.raises(ValueError, match="exactly two classes, got 1"):
        SelfTrainingWrapper(CraterCNNClassifier(**TINY_CNN)).fit(X, one_class)


def test_retrain_continue_reaches_nested_pipelines_only(semi_data):
    X, y_semi, _ = semi_data
    nested = make_pipeline(StandardScaler(), make_pipeline(StandardScaler(), LogisticRegression()))
    clf = SelfTrainingWrapper(nested, retrain="continue", max_iter=2).fit(X, y_semi)
    assert clf.estimator_[-1][-1].warm_start is True
    # a meta-estimator refits a clone of what it wraps: warm_start there would be lost
    fixed = FixedThresholdClassifier(LogisticRegression())
    with pytest.raises(ValueError, match="FixedThresholdClassifier has none"):
        SelfTrainingWrapper(fixed, retrain="continue").fit(X, y_semi)


def test_error_messages_name_the_subclass(semi_data):
    class MyWrapper(SelfTrainingWrapper):
        pass

    X, y_semi, _ = semi_data
    with pytest.raises(ValueError, match="^MyWrapper needs labelled samples"):
        MyWrapper(LogisticRegression()).fit(X, np.full_like(y_semi, -1))


def test_routes_sample_weight_of_training_rows(semi_data):
    X, y_semi, _ = semi_data
    weights = np.where(np.arange(300) % 2 == 0, 1.0, 0.0)
    with config_context(enable_metadata_routing=True):
        base = LogisticRegression().set_fit_request(sample_weight=True)
        clf = SelfTrainingWrapper(base, max_iter=1).fit(X, y_semi, sample_weight=weights)
        rows = clf.transduction_ != -1
        ref = LogisticRegression().fit(X[rows], clf.transduction_[rows], weights[rows])
    np.testing.assert_allclose(clf.estimator_.coef_, ref.coef_)


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "labels, match",
    [
        (lambda y: np.full_like(y, -1), "needs labelled samples"),
        (lambda y: np.where(y == -1, np.nan, y), "NaN"),
        (lambda y: np.where(y == -1, None, y).astype(object), "None"),
        (lambda y: np.where(y == -1, -99, y), r"negative label\(s\) \[-99\]"),
        (lambda y: y.astype(str), "holds '-1'"),
    ],
)
def test_bad_labels(semi_data, labels, match):
    X, y_semi, _ = semi_data
    with pytest.raises(ValueError, match=match):
        SelfTrainingWrapper(LogisticRegression()).fit(X, labels(y_semi))


@pytest.mark.parametrize(
    "threshold, match",
    [
        (0.0, "threshold"),
        (1.5, "threshold"),
        ({0: 0.0}, r"threshold\[0\] must be a float in \(0, 1\]"),
        ({1: 1.2}, r"threshold\[1\]"),
        ({2: 0.8}, r"names class\(es\) \[2\]"),
    ],
)
def test_bad_thresholds(semi_data, threshold, match):
    X, y_semi, _ = semi_data
    with pytest.raises(ValueError, match=match):
        SelfTrainingWrapper(LogisticRegression(), threshold=threshold).fit(X, y_semi)


def test_x_unlabeled_with_other_feature_count(semi_data):
    X, y_semi, _ = semi_data
    with pytest.raises(ValueError, match="X_unlabeled has 5 features, but X has 6"):
        SelfTrainingWrapper(LogisticRegression()).fit(X, y_semi, X_unlabeled=X[:, :5])


def test_x_unlabeled_with_other_image_shape():
    X, y = make_blob_images(20, side=16)
    U, _ = make_blob_images(10, side=12)
    with pytest.raises(ValueError, match="images of 12x12 pixels.*16x16"):
        SelfTrainingWrapper(LogisticRegression()).fit(
            X.reshape(-1, 16, 16), y, X_unlabeled=U.reshape(-1, 12, 12)
        )


def test_image_layouts_of_x_unlabeled_may_differ():
    X, y = make_blob_images(20, side=8)
    U, _ = make_blob_images(10, side=8, random_state=1)
    flat = FunctionTransformer(lambda A: A.reshape(len(A), -1))
    clf = SelfTrainingWrapper(make_pipeline(flat, LogisticRegression()), max_iter=1)
    clf.fit(X.reshape(-1, 8, 8, 1), y, X_unlabeled=U)
    assert clf.transduction_.shape == (30,)


# -------------------------------------------------------------- images/CNN
class SpyCNN(CraterCNNClassifier):
    """Records the validation mask of every fit (shared by all clones)."""

    masks: list = []
    warm: list = []

    def fit(self, X, y, sample_weight=None, *, validation_candidates=None, **kwargs):
        SpyCNN.masks.append(validation_candidates)
        SpyCNN.warm.append(self.warm_start and hasattr(self, "classes_"))  # fitted before
        return super().fit(
            X, y, sample_weight, validation_candidates=validation_candidates, **kwargs
        )


@pytest.fixture
def spy():
    SpyCNN.masks, SpyCNN.warm = [], []
    yield SpyCNN(**TINY_CNN, validation_fraction=0.3, random_state=0)
    SpyCNN.masks, SpyCNN.warm = [], []


@pytest.fixture
def blob_semi():
    X, y = make_blob_images(48, side=16)
    y_semi = y.copy()
    y_semi[::2] = -1
    return X, y_semi


def _check_masks(clf, y_semi):
    """First fit: labelled rows only, all candidates; last: human-labelled rows only."""
    first, last = SpyCNN.masks[0], SpyCNN.masks[-1]
    assert first.dtype == bool and first.all() and first.size == (y_semi != -1).sum()
    rows = clf.transduction_ != -1
    np.testing.assert_array_equal(last, clf.labeled_iter_[rows] == 0)
    assert clf.pseudo_label_counts_.sum() > 0 and not last.all()


@pytest.mark.slow
def test_cnn_validation_uses_human_labels_only(spy, blob_semi):
    X, y_semi = blob_semi
    clf = SelfTrainingWrapper(spy, threshold=0.5, max_iter=1).fit(X, y_semi)
    assert len(SpyCNN.masks) == 2
    _check_masks(clf, y_semi)
    assert "val_loss" in clf.estimator_.history_


@pytest.mark.slow
def test_cnn_validation_routed_through_pipeline(spy, blob_semi):
    X, y_semi = blob_semi
    pipe = make_pipeline(FunctionTransformer(), spy)
    clf = SelfTrainingWrapper(pipe, threshold=0.5, max_iter=1).fit(X, y_semi)
    _check_masks(clf, y_semi)


@pytest.mark.slow
def test_cnn_validation_with_metadata_routing(spy, blob_semi):
    X, y_semi = blob_semi
    with config_context(enable_metadata_routing=True):
        unrequested = SelfTrainingWrapper(make_pipeline(FunctionTransformer(), spy), max_iter=1)
        with pytest.raises(ValueError, match="set_fit_request\\(validation_candidates=True\\)"):
            unrequested.fit(X, y_semi)
        requested = spy.set_fit_request(validation_candidates=True)
        pipe = make_pipeline(FunctionTransformer(), requested)
        clf = SelfTrainingWrapper(pipe, threshold=0.5, max_iter=1).fit(X, y_semi)
    _check_masks(clf, y_semi)


@pytest.mark.slow
def test_cnn_recipe_on_image_arrays(tiny_cnn_params):
    X, y = make_blob_images(40, side=16)
    U, _ = make_blob_images(30, side=16, random_state=1)
    base = CraterCNNClassifier(**tiny_cnn_params, random_state=0)
    clf = SelfTrainingWrapper(base, threshold={0: 0.5}, max_iter=1)
    clf.fit(X.reshape(-1, 16, 16), y, X_unlabeled=U.reshape(-1, 16, 16, 1))
    assert clf.n_iter_ == 1 and clf.transduction_.shape == (70,)
    assert clf.pseudo_label_counts_[0, 1] == 0
    assert (clf.transduction_[clf.labeled_iter_ == 1] == 0).all()
    assert clf.predict(X.reshape(-1, 16, 16)).shape == (40,)
    assert clf.estimator_.image_shape_ == (16, 16)


@pytest.mark.slow
@pytest.mark.parametrize("retrain, warm", [("fresh", [False, False]), ("continue", [False, True])])
def test_cnn_retrain_modes(spy, blob_semi, retrain, warm):
    X, y_semi = blob_semi
    clf = SelfTrainingWrapper(
        spy, threshold=0.5, max_iter=1, retrain=retrain, retrain_params={"epochs": 1}
    ).fit(X, y_semi)
    assert SpyCNN.warm == warm
    assert clf.estimator_.n_epochs_ == 1


# ----------------------------------------- labelled and unlabelled together
class CountingLR(LogisticRegression):
    """A LogisticRegression that counts its fits (shared by all clones)."""

    fits = 0

    def fit(self, X, y, sample_weight=None):
        CountingLR.fits += 1
        return super().fit(X, y, sample_weight)


@pytest.fixture
def counting():
    CountingLR.fits = 0
    yield CountingLR(max_iter=50)
    CountingLR.fits = 0


@pytest.fixture
def tiles():
    """(X, y, U): 20 labelled and 10 unlabelled flat uint8 tiles of 8x8 pixels."""
    X, y = make_blob_images(20, side=8)
    U, _ = make_blob_images(10, side=8, random_state=1)
    return X, y, U


@pytest.mark.parametrize(
    "labelled, unlabelled, message",
    [
        (lambda X: X / 255.0, lambda U: U, "X_unlabeled holds grey levels"),
        (lambda X: X, lambda U: U / 255.0, "X_unlabeled holds floats in \\[0, 1\\]"),
        (lambda X: X / 255.0, lambda U: U.astype(np.float32), "X_unlabeled holds grey levels"),
    ],
)
def test_labelled_and_unlabelled_tiles_of_other_ranges_are_refused_before_training(
    counting, tiles, labelled, unlabelled, message
):
    # fit(X / 255.0, y, X_unlabeled=U_uint8) used to pseudo-label 0..255 tiles with a
    # model fitted on [0, 1]
    X, y, U = tiles
    clf = SelfTrainingWrapper(counting, max_iter=1)
    with pytest.raises(ValueError, match=f"{message}.*the labelled samples of X"):
        clf.fit(labelled(X), y, X_unlabeled=unlabelled(U))
    assert CountingLR.fits == 0


def test_unlabelled_rows_of_x_of_another_range_are_refused_before_training(counting, tiles):
    X, y, U = tiles
    mixed = np.concatenate([X / 255.0, U.astype(np.float64)])
    y_semi = np.concatenate([y, np.full(len(U), -1)])
    with pytest.raises(ValueError, match="X \\(its rows with y == -1\\) holds grey levels"):
        SelfTrainingWrapper(counting, max_iter=1).fit(mixed, y_semi)
    assert CountingLR.fits == 0


@pytest.mark.parametrize(
    "labelled, unlabelled",
    [
        (lambda X: X, lambda U: U // 4),  # uint8 tiles of a darker image
        (lambda X: X, lambda U: U.astype(np.float64)),  # the same levels as floats
        (lambda X: X / 255.0, lambda U: U / 255.0 * 0.5),
        (lambda X: X / 255.0, lambda U: np.zeros_like(U)),  # black is black on any scale
    ],
)
def test_labelled_and_unlabelled_tiles_read_the_same_way_are_accepted(
    counting, tiles, labelled, unlabelled
):
    X, y, U = tiles
    clf = SelfTrainingWrapper(counting, max_iter=1).fit(labelled(X), y, X_unlabeled=unlabelled(U))
    assert clf.transduction_.shape == (30,)


def test_nan_in_unlabelled_samples_is_refused_before_training_naming_them(counting, semi_data):
    # it used to surface after a whole round, in the estimator's message about X
    X, y_semi, _ = semi_data
    U = X[:10].copy()
    U[3, 2] = np.nan
    lab = y_semi != -1
    with pytest.raises(ValueError, match="Input X_unlabeled contains NaN"):
        SelfTrainingWrapper(counting).fit(X[lab], y_semi[lab], X_unlabeled=U)
    U[3, 2] = np.inf
    with pytest.raises(ValueError, match="Input X_unlabeled contains infinity"):
        SelfTrainingWrapper(counting).fit(X[lab], y_semi[lab], X_unlabeled=U)
    bad = X.copy()
    bad[np.flatnonzero(~lab)[0], 0] = np.nan  # an unlabelled row of X
    with pytest.raises(ValueError, match="Input X contains NaN"):
        SelfTrainingWrapper(counting).fit(bad, y_semi)
    assert CountingLR.fits == 0


def test_nan_is_left_to_an_estimator_that_accepts_it(semi_data):
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y_semi, _ = semi_data
    U = X[:10].copy()
    U[3, 2] = np.nan
    lab = y_semi != -1
    base = HistGradientBoostingClassifier(max_iter=5)
    clf = SelfTrainingWrapper(base, max_iter=1).fit(X[lab], y_semi[lab], X_unlabeled=U)
    assert clf.transduction_.shape == (lab.sum() + 10,)


def test_boolean_and_numeric_samples_are_not_mixed(counting, tiles):
    X, y, U = tiles
    with pytest.raises(TypeError, match="X_unlabeled has dtype bool but X has dtype uint8"):
        SelfTrainingWrapper(counting).fit(X, y, X_unlabeled=U > 128)
    assert CountingLR.fits == 0


def test_cnn_refuses_unlabelled_tiles_of_another_range_before_training(tiles):
    X, y, U = tiles
    cnn = CraterCNNClassifier(**TINY_CNN, padding="same", random_state=0)
    with pytest.raises(ValueError, match="X_unlabeled holds grey levels"):
        SelfTrainingWrapper(cnn, max_iter=1).fit(X / 255.0, y, X_unlabeled=U)


# ------------------------------------------------------------ predict_proba
class CountingSVC(LinearSVC):
    """A LinearSVC (no predict_proba) that counts its fits."""

    fits = 0

    def fit(self, X, y, sample_weight=None):
        CountingSVC.fits += 1
        return super().fit(X, y, sample_weight)


def test_estimator_without_predict_proba_is_refused_before_training(semi_data):
    # it used to fit, then fail with a bare AttributeError
    X, y_semi, _ = semi_data
    CountingSVC.fits = 0
    for estimator in (CountingSVC(), SVC(), make_pipeline(StandardScaler(), CountingSVC())):
        with pytest.raises(InvalidParameterError, match="predict_proba, but .* has none") as e:
            SelfTrainingWrapper(estimator).fit(X, y_semi)
        assert isinstance(e.value, ValueError) and isinstance(e.value, TypeError)
    assert CountingSVC.fits == 0


class ProbaOnceFitted(BaseEstimator):
    """A search-like meta-estimator: predict_proba exists once fitted, if the best has it."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y):
        self.best_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.best_.classes_
        return self

    def predict(self, X):
        return self.best_.predict(X)

    def _best_has_proba(self):
        check_is_fitted(self, "best_")
        return hasattr(self.best_, "predict_proba")

    @available_if(_best_has_proba)
    def predict_proba(self, X):
        return self.best_.predict_proba(X)


def test_predict_proba_exposed_once_fitted_is_checked_after_the_first_fit(semi_data):
    X, y_semi, _ = semi_data
    clf = SelfTrainingWrapper(ProbaOnceFitted(LogisticRegression()), max_iter=1)
    assert clf.fit(X, y_semi).n_iter_ == 1
    with pytest.raises(InvalidParameterError, match="ProbaOnceFitted has none"):
        SelfTrainingWrapper(ProbaOnceFitted(LinearSVC())).fit(X, y_semi)
