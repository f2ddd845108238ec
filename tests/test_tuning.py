"""Tests of skcrater.tuning and of scikit-learn's / optuna-integration's searches on the CNN."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CNN, make_blob_images
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import (
    FixedThresholdClassifier,
    GridSearchCV,
    GroupKFold,
    StratifiedKFold,
    TunedThresholdClassifierCV,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from skcrater import CraterCNNClassifier
from skcrater.tuning import OptunaSearch, default_search_space

optuna = pytest.importorskip("optuna")
FloatDistribution = optuna.distributions.FloatDistribution
TrialState = optuna.trial.TrialState

C_SPACE = {"C": FloatDistribution(1e-4, 1e2, log=True)}


@pytest.fixture
def noisy():
    """(X, y): 80 overlapping 2-D points, so that C and the threshold matter."""
    rng = np.random.default_rng(0)
    y = (rng.random(80) < 0.6).astype(int)
    X = rng.normal(size=(80, 2)) + 0.8 * y[:, None]
    return X, y


def _logreg_search(**kwargs):
    kwargs = {"cv": 3, "n_trials": 4, "random_state": 0, "thresholds": 20, **kwargs}
    return OptunaSearch(LogisticRegression(), kwargs.pop("param_distributions", C_SPACE), **kwargs)


# ------------------------------------------------------------------ search
def test_search_records_trials_and_refits_best(noisy):
    X, y = noisy
    search = _logreg_search().fit(X, y)
    trials = search.study_.trials
    assert len(trials) == 4
    assert search.best_score_ == max(t.value for t in trials)
    assert search.best_params_ == search.best_trial_.params
    assert search.best_threshold_ == search.best_trial_.user_attrs["threshold"]
    # LogisticRegression has no threshold parameter: the refit is thresholded around it
    best = search.best_estimator_
    assert isinstance(best, FixedThresholdClassifier)
    assert best.threshold == search.best_threshold_
    assert best.estimator_.C == search.best_params_["C"]
    p = search.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(search.predict(X), (p >= search.best_threshold_).astype(int))
    assert search.score(X, y) == f1_score(y, search.predict(X))


def test_trial_score_is_mean_fold_score_at_chosen_threshold(noisy):
    X, y = noisy
    search = _logreg_search(n_trials=1).fit(X, y)
    threshold = search.best_threshold_
    scores, at_half = [], []
    for train, test in StratifiedKFold(3).split(X, y):
        model = LogisticRegression(C=search.best_params_["C"]).fit(X[train], y[train])
        p = model.predict_proba(X[test])[:, 1]
        scores.append(f1_score(y[test], p >= threshold))
        at_half.append(f1_score(y[test], p >= 0.5))
    assert search.best_score_ == pytest.approx(np.mean(scores))
    assert search.best_trial_.user_attrs["fold_scores"] == pytest.approx(scores)
    assert search.best_score_ >= np.mean(at_half)


def test_without_threshold_tuning_scores_the_estimator_as_is(noisy):
    X, y = noisy
    search = _logreg_search(n_trials=1, tune_threshold=False).fit(X, y)
    model = LogisticRegression(C=search.best_params_["C"])
    expected = [
        f1_score(y[te], model.fit(X[tr], y[tr]).predict(X[te]))
        for tr, te in StratifiedKFold(3).split(X, y)
    ]
    assert search.best_score_ == pytest.approx(np.mean(expected))
    assert search.best_threshold_ is None
    assert isinstance(search.best_estimator_, LogisticRegression)


def test_explicit_thresholds_and_scoring(noisy):
    X, y = noisy
    search = _logreg_search(thresholds=[0.3, 0.7], scoring="balanced_accuracy").fit(X, y)
    assert {t.user_attrs["threshold"] for t in search.study_.trials} <= {0.3, 0.5, 0.7}
    # threshold-free scorer: no candidate beats the default, which is kept
    search = _logreg_search(n_trials=2, scoring="roc_auc").fit(X, y)
    assert search.best_threshold_ == 0.5


def test_seeded_sampler_is_reproducible(noisy):
    X, y = noisy
    first = _logreg_search(random_state=3, n_trials=3).fit(X, y)
    second = _logreg_search(random_state=3, n_trials=3).fit(X, y)
    assert [t.params for t in first.study_.trials] == [t.params for t in second.study_.trials]


def test_default_sampler_spreads_start_up_trials_over_the_range(noisy):
    # 8 Sobol points split a log range into 8 equal parts, one point in each;
    # random draws leave some parts empty (the failure that motivated it)
    X, y = noisy
    search = _logreg_search(n_trials=8, tune_threshold=False).fit(X, y)
    log_c = np.log10([t.params["C"] for t in search.study_.trials])
    bins = np.floor((log_c + 4) / 6 * 8).astype(int)
    assert sorted(bins) == list(range(8))


def test_default_sampler_hands_over_to_tpe_and_pickles(noisy):
    import pickle

    from skcrater._sampler import SobolThenTPESampler

    X, y = noisy
    search = _logreg_search(n_trials=12, tune_threshold=False).fit(X, y)
    sampler = search.study_.sampler
    assert isinstance(sampler, SobolThenTPESampler)
    later = search.study_.trials[10:]
    assert [sampler._for(t) for t in later] == [sampler._tpe] * 2
    assert pickle.loads(pickle.dumps(search)).best_params_ == search.best_params_


@pytest.mark.parametrize("verbose", [0, 1])
def test_optuna_info_lines_only_when_verbose(noisy, caplog, verbose):
    import logging

    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.INFO, logger="optuna"):
            _logreg_search(n_trials=2, verbose=verbose).fit(*noisy)
    finally:
        optuna.logging.disable_propagation()
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("study created" in m for m in info) == bool(verbose)


def test_groups_reach_the_splitter(noisy):
    X, y = noisy
    groups = np.arange(80) % 4
    search = _logreg_search(cv=GroupKFold(2), n_trials=1)
    with pytest.raises(ValueError, match="groups"):
        search.fit(X, y)
    search.fit(X, y, groups=groups)
    assert search.n_splits_ == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"param_distributions": {"nope": FloatDistribution(0, 1)}}, ValueError, "nope"),
        ({"param_distributions": {"C": [0.1, 1.0]}}, TypeError, "optuna distribution"),
        ({"n_trials": None}, ValueError, "n_trials or timeout"),
        ({"heartbeat_interval": 5, "grace_period": 5}, ValueError, "grace_period=5 must be longer"),
        ({"heartbeat_interval": 0}, ValueError, "heartbeat_interval"),
    ],
)
def test_bad_arguments(noisy, kwargs, error, match):
    with pytest.raises(error, match=match):
        _logreg_search(**kwargs).fit(*noisy)


def test_epochs_and_threshold_are_not_searched_by_retraining(blob_images):
    cnn = CraterCNNClassifier(**TINY_CNN)
    for name in ("epochs", "threshold"):
        space = {name: FloatDistribution(0.1, 0.9)}
        with pytest.raises(ValueError, match=f"'{name}' must not be in the search space"):
            OptunaSearch(cnn, space, n_trials=1).fit(*blob_images)


def test_default_search_space():
    from optuna.distributions import FloatDistribution

    space = default_search_space(CraterCNNClassifier(), architecture=True)
    assert space["learning_rate"] == FloatDistribution(1e-4, 1e-3, log=True)
    assert {"dropout", "kernel_size", "batch_norm"} <= set(space)
    with pytest.raises(ValueError, match="LogisticRegression"):
        default_search_space(LogisticRegression())


def test_clone_keeps_parameters():
    search = OptunaSearch(LogisticRegression(), C_SPACE, n_trials=3, storage="x.log")
    params = clone(search).get_params(deep=False)
    assert params["n_trials"] == 3 and params["storage"] == "x.log"


# --------------------------------------------------------------- contracts
def test_tags_say_binary_only_when_the_threshold_is_tuned():
    tags = get_tags(OptunaSearch(LogisticRegression(), C_SPACE))
    assert tags.classifier_tags.multi_class is False
    assert tags.target_tags.required
    untuned = get_tags(OptunaSearch(LogisticRegression(), C_SPACE, tune_threshold=False))
    assert untuned.classifier_tags.multi_class is True
    # the rest is the inner estimator's
    assert get_tags(OptunaSearch(HistGradientBoostingClassifier())).input_tags.allow_nan
    assert get_tags(OptunaSearch(CraterCNNClassifier())).input_tags.three_d_array


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.arange(80) % 3, "Only binary classification is supported"),
        (np.zeros(80, dtype=int), "needs labelled samples of 2 classes"),
        # the default scoring="f1" scores the positive label 1
        (np.array(["bg", "crater"])[np.arange(80) % 2], "scoring='f1' cannot score.*pos_label"),
    ],
)
def test_targets_threshold_tuning_cannot_score_are_refused_before_any_trial(noisy, labels, match):
    X, _ = noisy
    storage = optuna.storages.InMemoryStorage()
    with pytest.raises(ValueError, match=match):
        _logreg_search(n_trials=1, storage=storage, study_name="s").fit(X, labels)
    assert optuna.get_all_study_names(storage) == []


def test_multiclass_and_string_targets_with_fitting_settings(noisy):
    from sklearn.metrics import make_scorer

    X, y = noisy
    search = _logreg_search(n_trials=1, tune_threshold=False, scoring="accuracy")
    assert search.fit(X, np.arange(80) % 3).best_threshold_ is None
    labels = np.array(["bg", "crater"])[y]
    scorer = make_scorer(f1_score, pos_label="crater")
    named = _logreg_search(n_trials=2, scoring=scorer).fit(X, labels)
    assert set(named.predict(X)) == {"bg", "crater"}
    assert named.best_score_ == pytest.approx(_logreg_search(n_trials=2).fit(X, y).best_score_)


def test_fit_without_y_names_y(noisy):
    class MySearch(OptunaSearch):
        pass

    with pytest.raises(ValueError, match="MySearch requires y to be passed"):
        MySearch(LogisticRegression(), C_SPACE).fit(noisy[0], None)


def test_default_search_space_finds_the_cnn_in_subclasses_and_pipelines():
    from skcrater import SelfTrainingWrapper

    class Wrapper(SelfTrainingWrapper):
        pass

    wrapper = Wrapper(CraterCNNClassifier())
    assert set(default_search_space(wrapper)) == {"threshold", "estimator__learning_rate"}
    pipe = make_pipeline(FunctionTransformer(), CraterCNNClassifier())
    assert set(default_search_space(pipe)) == {"cratercnnclassifier__learning_rate"}
    with pytest.raises(ValueError, match="No default search space for Pipeline"):
        default_search_space(make_pipeline(FunctionTransformer(), LogisticRegression()))


class _ShiftedDecision(LogisticRegression):
    """A classifier whose decision_function is not a probability (as the CNN's is not)."""

    def predict_proba(self, X):
        from scipy.special import expit

        p = expit(super().decision_function(X))
        return np.column_stack([1 - p, p])

    def decision_function(self, X):
        return super().decision_function(X) + 100.0


def test_thresholds_are_chosen_on_probabilities_not_on_decision_function(noisy):
    X, y = noisy
    plain = _logreg_search(n_trials=2).fit(X, y)
    shifted = OptunaSearch(_ShiftedDecision(), C_SPACE, cv=3, n_trials=2, random_state=0)
    shifted.set_params(thresholds=20).fit(X, y)
    assert 0 < shifted.best_threshold_ < 1
    assert shifted.best_threshold_ == plain.best_threshold_
    assert shifted.best_estimator_.response_method == "predict_proba"


# ----------------------------------------------------------------- failures
class _FailsAboveOne(LogisticRegression):
    """A LogisticRegression whose fit fails for C > 1, as a bad configuration does."""

    def fit(self, X, y, sample_weight=None):
        if self.C > 1:
            raise ValueError("C too large")
        return super().fit(X, y, sample_weight=sample_weight)


def _failing_search(**kwargs):
    # 4 Sobol points over the log range, one in each quarter: two above C = 1
    space = {"C": FloatDistribution(1e-2, 1e2, log=True)}
    kwargs = {"cv": 3, "n_trials": 4, "random_state": 0, "thresholds": 10, **kwargs}
    return OptunaSearch(_FailsAboveOne(), space, **kwargs)


def test_failed_trials_do_not_stop_the_search(noisy, caplog):
    import logging

    optuna.logging.enable_propagation()
    try:
        with (
            caplog.at_level(logging.DEBUG, logger="optuna"),
            pytest.warns(FitFailedWarning) as record,
        ):
            search = _failing_search().fit(*noisy)
    finally:
        optuna.logging.disable_propagation()
    failed = [t for t in search.study_.trials if t.params["C"] > 1]
    assert len(search.study_.trials) == 4 and len(failed) == 2
    assert all(t.state == TrialState.FAIL for t in failed)
    assert all(t.user_attrs["error"] == "ValueError: C too large" for t in failed)
    assert search.best_params_["C"] <= 1
    # one line per failed trial, naming its number, parameters and error; no traceback
    messages = [str(w.message) for w in record if w.category is FitFailedWarning]
    assert len(messages) == 2
    for trial, message in zip(failed, messages, strict=True):
        assert f"trial {trial.number} " in message and "'C'" in message
        assert "ValueError: C too large" in message and "\n" not in message
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_error_score_number_is_the_failed_trials_score(noisy):
    with pytest.warns(FitFailedWarning, match="error_score=0.0"):
        search = _failing_search(error_score=0.0).fit(*noisy)
    failed = [t for t in search.study_.trials if "error" in t.user_attrs]
    assert len(failed) == 2
    assert all(t.state == TrialState.COMPLETE and t.value == 0.0 for t in failed)
    assert search.best_params_["C"] <= 1


def test_error_score_raise_stops_the_search_unless_caught(noisy):
    with pytest.raises(ValueError, match="C too large"):
        _failing_search(error_score="raise").fit(*noisy)
    with pytest.warns(FitFailedWarning, match="C too large"):
        search = _failing_search(error_score="raise", catch=(ValueError,)).fit(*noisy)
    assert [t.state for t in search.study_.trials].count(TrialState.FAIL) == 2


def test_every_trial_failed_is_a_clear_error(noisy):
    search = OptunaSearch(
        _FailsAboveOne(), {"C": FloatDistribution(2, 10)}, cv=3, n_trials=3, random_state=0
    )
    with (
        pytest.warns(FitFailedWarning),
        pytest.raises(ValueError, match=r"no completed trial.*3 failed.*C too large"),
    ):
        search.fit(*noisy)


def test_callbacks_see_every_trial_and_can_stop_the_study(noisy):
    seen = []
    callbacks = [lambda study, trial: seen.append(trial.number), optuna.study.MaxTrialsCallback(3)]
    search = _logreg_search(n_trials=5, callbacks=callbacks).fit(*noisy)
    assert seen == [0, 1, 2]
    assert len(search.study_.trials) == 3


def test_cv_results_in_scikit_learns_format(noisy):
    pd = pytest.importorskip("pandas")
    X, y = noisy
    with pytest.warns(FitFailedWarning):
        search = _failing_search().fit(X, y)
    results = search.cv_results_
    grid = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert set(grid.cv_results_) <= set(results)
    assert {"threshold", "number", "state"} <= set(results)
    assert isinstance(results["param_C"], np.ma.MaskedArray)
    table = pd.DataFrame(results)
    assert list(table["number"]) == [0, 1, 2, 3]
    failed = table["state"] == "FAIL"
    assert failed.sum() == 2
    assert table.loc[failed, ["mean_test_score", "split0_test_score"]].isna().all().all()
    # failed trials tie for the last rank, as in GridSearchCV
    assert sorted(table["rank_test_score"]) == [1, 2, 3, 3]
    assert (table.loc[failed, "rank_test_score"] == 3).all()
    best = search.best_index_
    trial = search.best_trial_
    assert results["params"][best] == search.best_params_
    assert results["mean_test_score"][best] == pytest.approx(search.best_score_)
    assert results["rank_test_score"][best] == 1
    splits = [results[f"split{k}_test_score"][best] for k in range(3)]
    assert splits == pytest.approx(trial.user_attrs["fold_scores"])
    assert results["threshold"][best] == search.best_threshold_
    assert (table.loc[~failed, "mean_fit_time"] > 0).all()


# -------------------------------------------------------- estimator checks
def _check_reasons(search):
    reasons = {
        "check_dtype_object": (
            "the check puts a dict in one row of X: every trial's fit of the fold that trains "
            "on it raises a TypeError, which error_score=nan turns into a failed trial, and "
            "with every trial failed fit raises ValueError('no completed trial', naming the "
            "TypeError) instead of the TypeError the check expects"
        )
    }
    if search.tune_threshold:
        reasons["check_classifiers_classes"] = (
            "string labels: the default scoring='f1' scores the positive label 1, which they "
            "lack, so fit refuses them before any trial (pass scoring=make_scorer(f1_score, "
            "pos_label=...); test_multiclass_and_string_targets_with_fitting_settings)"
        )
    return reasons


_CHECKED = dict(cv=2, n_trials=2, thresholds=10, random_state=0)


@parametrize_with_checks(
    [
        # the default: binary targets only (the tags say so), threshold tuned on F1
        OptunaSearch(LogisticRegression(), C_SPACE, **_CHECKED),
        # no threshold: the tags forward LogisticRegression's multiclass support
        OptunaSearch(
            LogisticRegression(), C_SPACE, tune_threshold=False, scoring="accuracy", **_CHECKED
        ),
    ],
    expected_failed_checks=_check_reasons,
    xfail_strict=True,
)
# some checks make every trial fail on purpose (e.g. a regression target)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.FitFailedWarning")
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- storage
def test_resume_continues_the_stored_study(noisy, tmp_path):
    X, y = noisy
    storage = tmp_path / "study.log"  # a path: Optuna journal file
    _logreg_search(n_trials=2, storage=storage, study_name="s").fit(X, y)
    search = _logreg_search(n_trials=3, storage=storage, study_name="s", random_state=1)
    search.fit(X, y)
    assert [t.number for t in search.study_.trials] == [0, 1, 2, 3, 4]
    assert search.best_score_ == max(t.value for t in search.study_.trials)
    # n_trials=0 refits the stored best without running anything
    again = _logreg_search(n_trials=0, storage=str(storage), study_name="s").fit(X, y)
    assert len(again.study_.trials) == 5
    assert again.best_params_ == search.best_params_


def test_stored_study_of_another_setup_is_refused(noisy, tmp_path):
    X, y = noisy
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    _logreg_search(n_trials=1, storage=storage, study_name="s").fit(X, y)
    with pytest.raises(ValueError, match="different set-up.*data"):
        _logreg_search(n_trials=1, storage=storage, study_name="s").fit(X[:60], y[:60])
    with pytest.raises(ValueError, match="no completed trial"):
        _logreg_search(n_trials=0, storage=storage, study_name="new").fit(X, y)


WORKER = """
import numpy as np, optuna, sys
from sklearn.linear_model import LogisticRegression
from skcrater.tuning import OptunaSearch
rng = np.random.default_rng(0)
y = (rng.random(80) < 0.6).astype(int)
X = rng.normal(size=(80, 2)) + 0.8 * y[:, None]
space = {"C": optuna.distributions.FloatDistribution(1e-4, 1e2, log=True)}
storage = sys.argv[1] if "://" in sys.argv[1] else __import__("pathlib").Path(sys.argv[1])
OptunaSearch(LogisticRegression(), space, cv=3, n_trials=int(sys.argv[2]), storage=storage,
             study_name="shared", random_state=int(sys.argv[3]), thresholds=10).fit(X, y)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_processes_share_one_study(tmp_path, kind):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    storage = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else str(tmp_path / "j.log")
    root = Path(__file__).resolve().parents[1]
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), storage, str(n), str(seed)],
            cwd=root,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, seed in ((4, 1), (5, 2))
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    study = optuna.load_study(
        study_name="shared",
        storage=storage if kind == "sqlite" else _journal(storage),
    )
    trials = study.trials
    assert len(trials) == 9
    assert sorted(t.number for t in trials) == list(range(9))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert all(set(t.params) == {"C"} and "threshold" in t.user_attrs for t in trials)
    # each process sampled its own configurations: no trial recorded twice
    assert len({t.params["C"] for t in trials}) == 9


def _journal(path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


# a worker whose trials sleep in fit when given a file to touch first, so that the
# test knows when to kill it mid-trial
KILLABLE_WORKER = """
import sys, time
from pathlib import Path
import numpy as np, optuna
from sklearn.linear_model import LogisticRegression
from skcrater.tuning import OptunaSearch

class SlowLogisticRegression(LogisticRegression):
    def fit(self, X, y):
        if STARTED is not None:
            STARTED.touch()
            time.sleep(600)
        return super().fit(X, y)

storage, n_trials = sys.argv[1], int(sys.argv[2])
STARTED = Path(sys.argv[3]) if len(sys.argv) > 3 else None
rng = np.random.default_rng(0)
y = (rng.random(80) < 0.6).astype(int)
X = rng.normal(size=(80, 2)) + 0.8 * y[:, None]
space = {"C": optuna.distributions.FloatDistribution(1e-4, 1e2, log=True)}
OptunaSearch(SlowLogisticRegression(), space, cv=3, n_trials=n_trials,
             storage=storage if "://" in storage else Path(storage), study_name="killed",
             heartbeat_interval=1, grace_period=2, random_state=n_trials, thresholds=10).fit(X, y)
"""


def _worker(script, storage, n_trials, *started):
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, str(script), storage, str(n_trials), *map(str, started)]
    return subprocess.Popen(command, cwd=root, stderr=subprocess.PIPE, text=True)


def _trials(storage, kind):
    storage = storage if kind == "sqlite" else _journal(storage)
    return optuna.load_study(study_name="killed", storage=storage).trials


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_trial_of_a_killed_worker_is_failed_and_retried(tmp_path, kind):
    import signal
    import time
    import warnings

    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(KILLABLE_WORKER))
    storage = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else str(tmp_path / "j.log")
    started = tmp_path / "started"
    killed = _worker(script, storage, 1, started)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert killed.poll() is None, killed.communicate()[1]
            assert time.monotonic() < deadline, "the first worker never started its trial"
            time.sleep(0.1)
        time.sleep(2)  # past its first heartbeat (every second)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert [t.state for t in _trials(storage, kind)] == [TrialState.RUNNING]
    time.sleep(3)  # past the grace period (2 s) since its last heartbeat
    later = _worker(script, storage, 2)
    _, err = later.communicate(timeout=120)
    assert later.returncode == 0, err
    dead, retried, new = _trials(storage, kind)
    assert [t.state for t in (dead, retried, new)] == [TrialState.FAIL] + [TrialState.COMPLETE] * 2
    # the killed trial's configuration was evaluated by the later worker
    assert retried.params == dead.params != new.params
    assert "fold_scores" in retried.user_attrs and "threshold" in retried.user_attrs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        retry = retry or optuna.storages.RetryFailedTrialCallback
        assert retry.retried_trial_number(retried) == dead.number
        assert retry.retried_trial_number(new) is None


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_url_and_path_storages_have_a_heartbeat(noisy, tmp_path, kind):
    storage = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else tmp_path / "j.log"
    search = _logreg_search(n_trials=1, storage=storage, study_name="s").fit(*noisy)
    assert search.study_._storage.get_heartbeat_interval() == 60
    # heartbeat_interval=None opts out: nothing marks a killed worker's trial failed
    search = _logreg_search(n_trials=1, storage=storage, study_name="t", heartbeat_interval=None)
    storage = search.fit(*noisy).study_._storage
    assert getattr(storage, "get_heartbeat_interval", lambda: None)() is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sqlite:///{tmp}/missing/dir/s.db", "the folder '{tmp}/missing/dir' of the SQLite file"),
        ("sqlit:///{tmp}/x.db", "SQLAlchemy knows no database 'sqlit'"),
    ],
)
def test_unusable_storage_url_is_refused_at_once(noisy, tmp_path, monkeypatch, url, problem):
    import re
    import time

    def no_retry(seconds):
        raise AssertionError("retried an unusable storage URL")

    monkeypatch.setattr(time, "sleep", no_retry)
    url, problem = url.format(tmp=tmp_path), problem.format(tmp=tmp_path)
    search = _logreg_search(storage=url, study_name="s")
    with pytest.raises(ValueError, match=re.escape(f"{url!r}: {problem}")) as error:
        search.fit(*noisy)
    assert "\n" not in str(error.value)
    assert not hasattr(search, "study_")


# ----------------------------------------------------------------- figures
def test_figures_are_saved_as_png(noisy, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    space = {**C_SPACE, "tol": FloatDistribution(1e-5, 1e-2, log=True)}
    search = OptunaSearch(
        LogisticRegression(), space, cv=3, n_trials=4, thresholds=10, random_state=0
    )
    search.fit(*noisy)
    for name in ("plot_optimization_history", "plot_param_importances"):
        path = tmp_path / f"{name}.png"
        getattr(search, name)(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the history is labelled with the objective, as the study names it
    assert search.plot_optimization_history().get_ylabel() == "CV F1"
    assert search.study_.metric_names == ["CV F1"]


# --------------------------------------------------------------------- CNN
class _PruneLaterTrials:
    """Prune every trial after the first, at its second reported epoch."""

    def prune(self, study, trial):
        return trial.number > 0 and trial.last_step >= 1


@pytest.mark.parametrize("in_pipeline", [False, True], ids=["cnn", "pipeline"])
def test_cnn_epochs_from_history_pruning_and_threshold(blob_images, in_pipeline):
    X, y = blob_images
    cnn = CraterCNNClassifier(**{**TINY_CNN, "random_state": 0})
    estimator, prefix = cnn, ""
    if in_pipeline:
        estimator, prefix = make_pipeline(FunctionTransformer(), cnn), "cratercnnclassifier__"
    search = OptunaSearch(
        estimator,
        {f"{prefix}learning_rate": FloatDistribution(1e-3, 3e-2, log=True)},
        cv=2,
        n_trials=2,
        max_epochs=3,
        pruner=_PruneLaterTrials(),
        random_state=0,
    ).fit(X, y)
    done, pruned = search.study_.trials
    assert pruned.state == TrialState.PRUNED
    assert sorted(pruned.intermediate_values) == [0, 1]
    assert pruned.user_attrs["trained_epochs"] == 2
    # every epoch of both folds reported, at step fold * max_epochs + epoch (inside a
    # pipeline, the callback reaches the CNN by metadata routing)
    assert sorted(done.intermediate_values) == list(range(6))
    assert done.user_attrs["trained_epochs"] == 6
    assert len(done.user_attrs["fold_best_epochs"]) == 2
    assert search.best_params_[f"{prefix}epochs"] == done.user_attrs["best_epoch"]
    assert search.best_params_[f"{prefix}threshold"] == search.best_threshold_
    best = search.best_estimator_
    assert isinstance(best, Pipeline if in_pipeline else CraterCNNClassifier)
    best = best[-1] if in_pipeline else best
    assert best.epochs == done.user_attrs["best_epoch"] and best.n_epochs_ == best.epochs
    assert best.threshold == search.best_threshold_
    assert search.study_.user_attrs["intermediate_values"] == (
        "minus val_loss after epoch e (from 0) of fold k (from 0), at step k * 3 + e"
    )


def test_cnn_search_tensorboard_logs_and_refusal(blob_images, tmp_path):
    X, y = blob_images
    cnn = CraterCNNClassifier(**{**TINY_CNN, "random_state": 0})
    space = {"learning_rate": FloatDistribution(1e-3, 3e-2, log=True)}
    logs = tmp_path / "tb"
    OptunaSearch(
        cnn, space, cv=2, n_trials=1, max_epochs=1, tensorboard_dir=logs, random_state=0
    ).fit(X, y)
    runs = {p.relative_to(logs).parts[:2] for p in logs.rglob("events.out.tfevents.*")}
    assert runs >= {("trial_0000", "fold_0"), ("trial_0000", "fold_1"), ("refit", "train")}
    assert {run[0] for run in runs} == {"trial_0000", "refit"}
    with pytest.raises(ValueError, match="tensorboard_dir needs an estimator whose fit takes"):
        OptunaSearch(LogisticRegression(), C_SPACE, n_trials=1, tensorboard_dir=logs).fit(X, y)


def test_verbose_prints_folds_epochs_and_one_estimate(blob_images, capsys):
    X, y = blob_images
    cnn = CraterCNNClassifier(**{**TINY_CNN, "random_state": 0})
    space = {"learning_rate": FloatDistribution(1e-3, 3e-2, log=True)}
    OptunaSearch(cnn, space, cv=2, n_trials=2, max_epochs=2, random_state=0, verbose=2).fit(X, y)
    out = capsys.readouterr().out
    assert out.count("first fold took") == 1
    assert out.count("  trial 1, fold 2/2, epoch ") == 2
    assert "trial 1, fold 2/2: 2 epochs (best " in out


def test_gridsearchcv_over_cnn_parameters(blob_images):
    X, y = blob_images
    grid = GridSearchCV(
        CraterCNNClassifier(**TINY_CNN),
        {"learning_rate": [1e-2], "epochs": [1], "threshold": [0.3, 0.6]},
        scoring="f1",
        cv=2,
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 2
    assert grid.best_estimator_.threshold == grid.best_params_["threshold"]


def test_tuned_threshold_classifier_ignores_the_cnn_threshold(blob_images):
    X, y = blob_images
    cnn = CraterCNNClassifier(**{**TINY_CNN, "threshold": 0.99, "random_state": 0})
    tuned = TunedThresholdClassifierCV(cnn, scoring="f1", cv=2).fit(X, y)
    p = tuned.estimator_.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(tuned.predict(X), (p >= tuned.best_threshold_).astype(int))
    assert tuned.estimator_.threshold == 0.99


def test_optuna_integration_search_cv(blob_images):
    integration = pytest.importorskip("optuna_integration")
    X, y = blob_images
    search = integration.OptunaSearchCV(
        CraterCNNClassifier(**TINY_CNN),
        {"learning_rate": FloatDistribution(1e-3, 3e-2, log=True)},
        cv=2,
        n_trials=1,
        scoring="f1",
        random_state=0,
        verbose=0,
    ).fit(X, y)
    assert len(search.trials_) == 1
    assert isinstance(search.best_estimator_, CraterCNNClassifier)


# --------------------------------------------------------- self-training
@pytest.fixture
def partly_labelled():
    X, y = make_blob_images(n=48)
    y = y.copy()
    y[::3] = -1
    return X, y


@pytest.mark.slow
def test_gridsearchcv_over_self_training(partly_labelled):
    st = pytest.importorskip("skcrater.self_training")
    ms = pytest.importorskip("skcrater.model_selection")
    X, y = partly_labelled
    grid = GridSearchCV(
        st.SelfTrainingWrapper(CraterCNNClassifier(**TINY_CNN), max_iter=1),
        {"estimator__learning_rate": [1e-2], "threshold": [0.8]},
        scoring="f1",
        cv=ms.SemiSupervisedKFold(2),
    ).fit(X, y)
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()


@pytest.mark.slow
def test_optuna_search_over_self_training(partly_labelled):
    st = pytest.importorskip("skcrater.self_training")
    ms = pytest.importorskip("skcrater.model_selection")
    X, y = partly_labelled
    wrapper = st.SelfTrainingWrapper(CraterCNNClassifier(**TINY_CNN), max_iter=1)
    space = default_search_space(wrapper)
    assert set(space) == {"threshold", "estimator__learning_rate"}
    search = OptunaSearch(
        wrapper, space, cv=ms.SemiSupervisedKFold(2), n_trials=1, max_epochs=2, random_state=0
    ).fit(X, y)
    best = search.best_params_
    # the wrapper's pseudo-labelling threshold is searched; the CNN's decision threshold is tuned
    assert 0.5 <= best["threshold"] <= 0.99
    assert best["estimator__threshold"] == search.best_threshold_
    assert 1 <= best["estimator__epochs"] <= 2
    assert search.best_estimator_.estimator_.threshold == search.best_threshold_
    # the CNN inside the wrapper reported its first round's epochs (by metadata routing)
    trial = search.best_trial_
    assert sorted(trial.intermediate_values) == [0, 1, 2, 3]
    assert trial.user_attrs["trained_epochs"] >= 4
    assert set(np.unique(search.predict(X))) <= {0, 1}


@pytest.mark.slow
@pytest.mark.parametrize("nesting", ["wrapper_around_pipeline", "pipeline_around_wrapper"])
def test_optuna_search_over_self_training_and_pipelines(partly_labelled, nesting):
    from skcrater import SelfTrainingWrapper, SemiSupervisedKFold

    X, y = partly_labelled
    cnn = CraterCNNClassifier(**TINY_CNN)
    if nesting == "wrapper_around_pipeline":
        estimator = SelfTrainingWrapper(make_pipeline(FunctionTransformer(), cnn), max_iter=1)
        wrapper, inner = "", "estimator__cratercnnclassifier__"
    else:
        estimator = make_pipeline(FunctionTransformer(), SelfTrainingWrapper(cnn, max_iter=1))
        wrapper, inner = "selftrainingwrapper__", "selftrainingwrapper__estimator__"
    space = default_search_space(estimator)
    assert set(space) == {f"{wrapper}threshold", f"{inner}learning_rate"}
    search = OptunaSearch(
        estimator, space, cv=SemiSupervisedKFold(2), n_trials=1, max_epochs=2, random_state=0
    ).fit(X, y)
    best = search.best_params_
    assert best[f"{inner}threshold"] == search.best_threshold_
    assert 1 <= best[f"{inner}epochs"] <= 2
    assert sorted(search.best_trial_.intermediate_values) == [0, 1, 2, 3]


# --------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_tune_invocations_share_a_study(tmp_path, capsys):
    cli = pytest.importorskip("skcrater.cli")
    X, y = make_blob_images(n=40)
    np.save(tmp_path / "Xtrain1.npy", X)
    np.save(tmp_path / "Ytrain1.npy", y)
    common = ["tune", "--data", str(tmp_path), "--n-trials", "1", "--max-epochs", "1"]
    common += ["--cv", "2", "--storage", str(tmp_path / "study.log")]
    assert cli.main(common) == 0
    assert cli.main([*common, "--model", str(tmp_path / "best.skc"), "--plots", str(tmp_path)]) == 0
    assert (tmp_path / "best.skc").is_file()
    assert (tmp_path / "optimization_history.png").is_file()
    study = optuna.load_study(study_name="skcrater-tune", storage=_journal(tmp_path / "study.log"))
    assert [t.number for t in study.trials] == [0, 1]
    assert '"trials": 2' in capsys.readouterr().out
