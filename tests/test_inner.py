"""Tests of skcrater._inner: the one walk from an estimator to the one inside it."""

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skcrater import CraterCNNClassifier, SelfTrainingWrapper
from skcrater._inner import find, find_param, walk


def _names(pairs):
    return [(prefix, type(est).__name__) for prefix, est in pairs]


def test_walk_follows_parameters_through_wrappers_and_pipelines():
    est = SelfTrainingWrapper(make_pipeline(StandardScaler(), CraterCNNClassifier()))
    assert _names(walk(est)) == [
        ("", "SelfTrainingWrapper"),
        ("estimator__", "Pipeline"),
        ("estimator__cratercnnclassifier__", "CraterCNNClassifier"),
    ]


def test_walk_stops_at_passthrough_final_step():
    pipe = make_pipeline(StandardScaler(), "passthrough")
    assert _names(walk(pipe)) == [("", "Pipeline")]


def test_fitted_walk_follows_fitted_attributes_and_drops_the_prefix():
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = np.arange(40) % 2
    inner = make_pipeline(StandardScaler(), LogisticRegression())
    fixed = FixedThresholdClassifier(inner, threshold=0.3).fit(X, y)
    pairs = list(walk(fixed, fitted=True))
    assert _names(pairs) == [
        ("", "FixedThresholdClassifier"),
        (None, "Pipeline"),
        (None, "LogisticRegression"),
    ]
    # the fitted clone, not the unfitted parameter
    assert pairs[1][1] is fixed.estimator_
    assert hasattr(pairs[2][1], "coef_")


def test_fitted_walk_reads_a_frozen_estimators_parameter():
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = np.arange(20) % 2
    fitted = LogisticRegression().fit(X, y)
    pairs = list(walk(FrozenEstimator(fitted), fitted=True))
    assert pairs[1] == ("estimator__", fitted)


def test_find_accepts_attribute_names_and_predicates():
    est = SelfTrainingWrapper(CraterCNNClassifier(epochs=3))
    assert find(est, "recommended")[0] == "estimator__"
    prefix, found = find(est, lambda e: e.get_params().get("epochs") == 3)
    assert prefix == "estimator__" and isinstance(found, CraterCNNClassifier)
    assert find(est, "no_such_attribute_") == (None, None)


def test_find_param_first_or_innermost():
    est = SelfTrainingWrapper(make_pipeline(StandardScaler(), CraterCNNClassifier()))
    assert find_param(est, "epochs") == "estimator__cratercnnclassifier__epochs"
    # the wrapper's own threshold is a pseudo-labelling threshold, not the decision threshold
    assert find_param(est, "threshold") == "threshold"
    assert (
        find_param(est, "threshold", innermost=True) == "estimator__cratercnnclassifier__threshold"
    )
    assert find_param(LogisticRegression(), "threshold", innermost=True) is None
