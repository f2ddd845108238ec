"""Tests of skcrater.tuning and of scikit-learn's / optuna-integration's searches on the CNN."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import (
    FixedThresholdClassifier,
    GridSearchCV,
    GroupKFold,
    StratifiedKFold,
    TunedThresholdClassifierCV,
)

from skcrater import CraterCNNClassifier
from skcrater.tuning import OptunaSearch, default_search_space
from tests.conftest import TINY_CNN, make_blob_images

optuna = pytest.importorskip("optuna")
FloatDistribution = optuna.distributions.FloatDistribution

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


# --------------------------------------------------------------------- CNN
class _PruneLaterTrials:
    """Prune every trial after the first, at its second reported epoch."""

    def prune(self, study, trial):
        return trial.number > 0 and trial.last_step >= 1


def test_cnn_epochs_from_history_and_pruning(blob_images):
    X, y = blob_images
    cnn = CraterCNNClassifier(**{**TINY_CNN, "random_state": 0})
    search = OptunaSearch(
        cnn,
        {"learning_rate": FloatDistribution(1e-3, 3e-2, log=True)},
        cv=2,
        n_trials=2,
        max_epochs=3,
        pruner=_PruneLaterTrials(),
        random_state=0,
    ).fit(X, y)
    done, pruned = search.study_.trials
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert sorted(pruned.intermediate_values) == [0, 1]
    assert pruned.user_attrs["trained_epochs"] == 2
    # every epoch of both folds reported, at step fold * max_epochs + epoch
    assert sorted(done.intermediate_values) == list(range(6))
    assert done.user_attrs["trained_epochs"] == 6
    assert len(done.user_attrs["fold_best_epochs"]) == 2
    assert search.best_params_["epochs"] == done.user_attrs["best_epoch"]
    assert search.best_params_["threshold"] == search.best_threshold_
    best = search.best_estimator_
    assert isinstance(best, CraterCNNClassifier)
    assert best.epochs == done.user_attrs["best_epoch"] and best.n_epochs_ == best.epochs
    assert best.threshold == search.best_threshold_


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
