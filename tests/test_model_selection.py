"""SemiSupervisedKFold: cross-validation that tests on labelled samples only."""

import numpy as np
import pytest
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    LeaveOneGroupOut,
    StratifiedGroupKFold,
    cross_val_score,
    cross_validate,
)

from skcrater import SelfTrainingWrapper
from skcrater.model_selection import SemiSupervisedKFold


@pytest.fixture
def semi_data():
    """200 samples, 90 labelled (imbalanced 2:1) and 110 unlabelled, with 10 groups."""
    X, y = make_classification(n_samples=200, n_features=5, weights=[0.67], random_state=0)
    rng = np.random.default_rng(0)
    y_semi = y.copy()
    y_semi[rng.permutation(200)[90:]] = -1
    groups = rng.integers(0, 10, size=200)
    return X, y_semi, groups


def _check_folds(cv, X, y, groups=None):
    folds = list(cv.split(X, y, groups))
    labelled, unlabelled = np.flatnonzero(y != -1), np.flatnonzero(y == -1)
    tested = np.concatenate([test for _, test in folds])
    np.testing.assert_array_equal(np.sort(tested), labelled)  # each labelled row tested once
    for train, test in folds:
        assert np.isin(unlabelled, train).all()
        assert not np.isin(test, unlabelled).any()
        assert np.intersect1d(train, test).size == 0
        np.testing.assert_array_equal(np.sort(np.union1d(train, test)), np.arange(y.size))
    return folds


def test_unlabelled_rows_train_only_and_stratified(semi_data):
    X, y, _ = semi_data
    folds = _check_folds(SemiSupervisedKFold(5), X, y)
    assert len(folds) == SemiSupervisedKFold(5).get_n_splits(X, y) == 5
    share = np.mean(y[y != -1] == 1)
    for _, test in folds:
        assert abs(np.mean(y[test] == 1) - share) < 0.1


def test_group_splitter_keeps_groups_apart(semi_data):
    X, y, groups = semi_data
    cv = SemiSupervisedKFold(StratifiedGroupKFold(3))
    for train, test in _check_folds(cv, X, y, groups):
        labelled_train = train[y[train] != -1]
        assert np.intersect1d(groups[labelled_train], groups[test]).size == 0


def test_get_n_splits_of_group_splitter_counts_labelled_groups(semi_data):
    X, y, groups = semi_data
    groups = groups.copy()
    groups[y == -1] = 99  # a group with unlabelled rows only is never a test fold
    cv = SemiSupervisedKFold(LeaveOneGroupOut())
    assert cv.get_n_splits(X, y, groups) == np.unique(groups[y != -1]).size
    assert len(_check_folds(cv, X, y, groups)) == cv.get_n_splits(X, y, groups)


def test_cross_val_score_scores_labelled_rows_only(semi_data):
    X, y, _ = semi_data
    model = SelfTrainingWrapper(LogisticRegression(), max_iter=2)
    cv = SemiSupervisedKFold(KFold(4, shuffle=True, random_state=0))
    scores = cross_val_score(model, X, y, cv=cv, scoring="f1")
    expected = [
        f1_score(y[test], clone(model).fit(X[train], y[train]).predict(X[test]))
        for train, test in cv.split(X, y)
    ]
    np.testing.assert_allclose(scores, expected)


def test_grid_search(semi_data):
    X, y, groups = semi_data
    search = GridSearchCV(
        SelfTrainingWrapper(LogisticRegression(), max_iter=1),
        {"estimator__C": [0.01, 1.0], "threshold": [0.7, {0: 0.9}]},
        cv=SemiSupervisedKFold(StratifiedGroupKFold(3)),
        scoring="f1",
    ).fit(X, y, groups=groups)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert (search.best_estimator_.transduction_ != -1).sum() > (y != -1).sum()


def test_groups_routed_with_metadata_routing(semi_data):
    X, y, groups = semi_data
    cv = SemiSupervisedKFold(StratifiedGroupKFold(3))
    with config_context(enable_metadata_routing=True):
        result = cross_validate(
            SelfTrainingWrapper(LogisticRegression(), max_iter=1),
            X,
            y,
            cv=cv,
            params={"groups": groups},
            return_indices=True,
        )
    for train, test in zip(result["indices"]["train"], result["indices"]["test"], strict=True):
        labelled_train = train[y[train] != -1]
        assert np.intersect1d(groups[labelled_train], groups[test]).size == 0


@pytest.mark.parametrize(
    "y, match",
    [(None, "needs y"), (np.full(6, -1), "needs labelled samples")],
)
def test_bad_labels(y, match):
    with pytest.raises(ValueError, match=match):
        next(SemiSupervisedKFold(2).split(np.zeros((6, 1)), y))


def test_repr_and_default_splits():
    cv = SemiSupervisedKFold(StratifiedGroupKFold(4))
    assert repr(cv).startswith("SemiSupervisedKFold(cv=StratifiedGroupKFold(n_splits=4")
    assert SemiSupervisedKFold().get_n_splits() == 5
