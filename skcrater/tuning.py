"""Optuna hyper-parameter search that retrains only what must be retrained.

:class:`OptunaSearch` runs an Optuna study for a cross-validated score (F1 by
default). Only the parameters in its search space cost training; two more
come free with every trial:

* the **decision threshold** is chosen from the trial's out-of-fold
  probabilities (no retraining);
* the **number of epochs** is read from each fold's training history: every
  fold trains up to ``max_epochs`` and keeps the epoch with the lowest
  validation loss on its own internal split. The per-epoch validation loss
  is reported to Optuna, which prunes hopeless trials.

scikit-learn's own tools work on the estimators too:
``GridSearchCV(CraterCNNClassifier(), {"learning_rate": [...], "epochs": [...],
"threshold": [...]}, scoring="f1")`` retrains for every threshold and epoch
count, which is what this module avoids, and
:class:`sklearn.model_selection.TunedThresholdClassifierCV` thresholds the
probabilities itself: the wrapped classifier's ``threshold`` parameter only
affects that classifier's own ``predict`` and is ignored by the tuned one
(its ``best_threshold_`` is the one in force).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import time
import warnings
from copy import deepcopy
from numbers import Integral, Real

import numpy as np
from sklearn import config_context
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
    is_classifier,
)
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import FixedThresholdClassifier, check_cv
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, has_fit_parameter, indexable

__all__ = ["OptunaSearch", "default_search_space"]

#: Study user attribute holding the set-up a shared study was started with.
_SETUP_ATTR = "skcrater_setup"


def default_search_space(estimator, *, architecture=False):
    """A sensible Optuna search space for a skcrater estimator.

    Parameters
    ----------
    estimator : CraterCNNClassifier or SelfTrainingWrapper
        The estimator to tune. For a :class:`~skcrater.SelfTrainingWrapper`
        around a CNN, the wrapper's pseudo-labelling ``threshold`` is added
        and the CNN's parameters are prefixed with ``estimator__``.
    architecture : bool, default=False
        Also search the dropout rate, the kernel size and batch
        normalisation.

    Returns
    -------
    space : dict of str to optuna.distributions.BaseDistribution
        The learning rate on a log scale over [1e-4, 1e-3] (the published
        recipe's 3e-4 to 4e-4 lies inside), plus the optional knobs. Epochs
        and the decision threshold are not in it: :class:`OptunaSearch` gets
        them without retraining.

    Examples
    --------
    >>> from skcrater import CraterCNNClassifier
    >>> from skcrater.tuning import default_search_space
    >>> sorted(default_search_space(CraterCNNClassifier()))
    ['learning_rate']
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from .cnn import CraterCNNClassifier

    cnn = {"learning_rate": FloatDistribution(1e-4, 1e-3, log=True)}
    if architecture:
        cnn |= {
            "dropout": FloatDistribution(0.0, 0.6),
            "kernel_size": CategoricalDistribution([3, 5]),
            "batch_norm": CategoricalDistribution([False, True]),
        }
    if isinstance(estimator, CraterCNNClassifier):
        return cnn
    inner = estimator.get_params(deep=False).get("estimator")
    if isinstance(inner, CraterCNNClassifier) and type(estimator).__name__ == "SelfTrainingWrapper":
        space = {f"estimator__{name}": dist for name, dist in cnn.items()}
        return {"threshold": FloatDistribution(0.5, 0.99), **space}
    raise ValueError(
        f"No default search space for {type(estimator).__name__}; pass param_distributions."
    )


class OptunaSearch(MetaEstimatorMixin, BaseEstimator):
    """Optuna search over an estimator's parameters for a cross-validated score.

    Each trial samples the parameters in ``param_distributions``, fits one
    clone per cross-validation split and scores its held-out predictions.
    What needs no retraining is not searched by retraining:

    * **Decision threshold** (``tune_threshold=True``, binary targets): the
      trial's score is the best, over ``thresholds``, of the mean per-fold
      score of the held-out probabilities thresholded there. The chosen
      threshold is the trial's ``"threshold"`` user attribute.
    * **Epochs** (estimators with an ``epochs`` parameter, such as
      :class:`~skcrater.CraterCNNClassifier`): every fold trains up to
      ``max_epochs`` and keeps the epoch with the best validation loss on
      the fold's own internal validation split, drawn from the fold's
      training rows (the held-out rows are never trained on nor used to
      choose the epoch). The median of the folds' best epochs is the
      trial's ``"best_epoch"`` user attribute and becomes ``epochs`` in
      :attr:`best_params_`.
    * **Pruning**: a Keras callback reports ``monitor`` after every epoch
      (negated when it is a loss, so that larger is better) at step
      ``fold * max_epochs + epoch``; every trial uses the same splits, so a
      step means the same fold and epoch in every trial. The ``pruner``
      stops a trial whose best reported value so far falls behind the
      others at that step, which in practice happens in the first fold,
      where it saves most. A wrapped Keras estimator (e.g. in
      :class:`~skcrater.SelfTrainingWrapper`) gets the callback through
      scikit-learn's metadata routing; only its first self-training round
      reports.

    The study lives in ``storage``: an interrupted search resumes where it
    stopped, and processes or hosts that use the same storage and
    ``study_name`` share one study (Optuna's distributed mode), each
    running ``n_trials`` more trials and refitting the best trial of the
    whole study.

    Parameters
    ----------
    estimator : estimator object
        A classifier (or regressor, with ``tune_threshold=False``) to clone
        and fit in every trial.
    param_distributions : dict of str to optuna.distributions.BaseDistribution, default=None
        The search space, keyed by (nested) parameter name, e.g.
        ``{"learning_rate": FloatDistribution(1e-4, 1e-3, log=True)}`` or
        ``estimator__learning_rate`` for a wrapper. None uses
        :func:`default_search_space`.
    scoring : str, callable or None, default="f1"
        A scikit-learn scorer name or callable ``scorer(estimator, X, y)``.
        None uses the estimator's ``score``.
    cv : int, cross-validation generator or iterable, default=5
        Splitter, as in :class:`~sklearn.model_selection.GridSearchCV`
        (any splitter, ``groups`` included). Processes sharing a study must
        use deterministic splits.
    n_trials : int or None, default=20
        Trials this ``fit`` runs (added to the ones already in a stored
        study). 0 only refits the best stored trial.
    timeout : float or None, default=None
        Stop starting new trials after this many seconds.
    max_epochs : int or None, default=None
        Epochs each fold may train. None keeps the estimator's ``epochs``.
        Ignored by estimators without an ``epochs`` parameter.
    tune_threshold : bool, default=True
        Choose the decision threshold from the held-out probabilities.
    thresholds : int or array-like, default=100
        Candidate thresholds: that many evenly spaced between the lowest
        and the highest held-out probability, or the given values. The
        estimator's own threshold (0.5 for probabilities when it has no
        ``threshold`` parameter) is always a candidate and is kept unless
        another one scores strictly higher.
    monitor : str, default="val_loss"
        Keras log reported to the pruner after every epoch.
    storage : None, str, path-like or optuna.storages.BaseStorage, default=None
        None keeps the study in memory. A string with ``://`` is a database
        URL (``"sqlite:///study.db"``, ``"postgresql://..."``); any other
        string or path is an Optuna journal file
        (:class:`~optuna.storages.journal.JournalFileBackend`), which suits
        several processes on one file system. An Optuna storage object is
        used as it is, e.g. ``RDBStorage(url, heartbeat_interval=60,
        failed_trial_callback=RetryFailedTrialCallback())`` to mark and retry
        the trials of a killed process.
    study_name : str or None, default=None
        Name of the study in ``storage`` (None: a new unique name).
    load_if_exists : bool, default=True
        Continue a study of that name in ``storage`` instead of failing.
        A stored study must have been run with the same data, scoring,
        splitter, ``max_epochs``, ``monitor`` and threshold tuning.
    sampler : optuna.samplers.BaseSampler or None, default=None
        None samples the first 10 trials of the study from a scrambled Sobol
        sequence (:class:`~optuna.samplers.QMCSampler`), which spreads them
        evenly over the space, edges included, and the later ones with
        :class:`~optuna.samplers.TPESampler`; both are seeded by
        ``random_state``. TPE alone would draw those 10 start-up trials at
        random, and with a few expensive trials random draws easily miss
        a whole region of the learning-rate range.
    pruner : optuna.pruners.BasePruner or None, default=None
        None is ``MedianPruner(n_startup_trials=3, n_warmup_steps=max_epochs // 4)``;
        pass :class:`optuna.pruners.NopPruner` to never prune.
    refit : bool, default=True
        Fit the best configuration on all of ``X`` as :attr:`best_estimator_`.
    random_state : int, RandomState instance or None, default=None
        Seeds the default sampler (give each cooperating process its own
        seed, or None, so that they never propose the same trial). The
        estimator's own ``random_state`` is left alone.
    show_progress_bar : bool, default=False
        Show Optuna's progress bar.
    verbose : int, default=0
        0 silences Optuna's per-trial log lines; 1 shows them.

    Attributes
    ----------
    study_ : optuna.study.Study
        The study (all trials, of every process that shared it).
    best_trial_ : optuna.trial.FrozenTrial
        Its best trial.
    best_params_ : dict
        Parameters of the best configuration, ready for ``set_params``: the
        sampled ones, the best ``epochs`` and the tuned threshold (for
        estimators with a decision ``threshold`` parameter).
    best_score_ : float
        Mean cross-validated score of the best trial at its threshold.
        Choosing the threshold on the same folds makes it slightly
        optimistic, as any cross-validated search's best score is.
    best_threshold_ : float or None
        Decision threshold of the best trial (None without threshold
        tuning).
    best_estimator_ : estimator
        The refitted best configuration (with ``refit=True``). An estimator
        without a ``threshold`` parameter is wrapped in
        :class:`~sklearn.model_selection.FixedThresholdClassifier`.
    scorer_ : callable
        The scorer used.
    n_splits_ : int
        Number of cross-validation splits.
    classes_ : ndarray
        Class labels of :attr:`best_estimator_`.

    See Also
    --------
    default_search_space : The default search space.
    sklearn.model_selection.GridSearchCV : Exhaustive search, retraining every combination.

    Examples
    --------
    >>> import optuna
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skcrater.tuning import OptunaSearch
    >>> from skcrater.datasets import make_craters
    >>> X, y = make_craters(n_samples=60, image_size=16, random_state=0)
    >>> space = {"C": optuna.distributions.FloatDistribution(1e-3, 1e2, log=True)}
    >>> search = OptunaSearch(LogisticRegression(), space, cv=3, n_trials=4,
    ...                       random_state=0).fit(X / 255, y)
    >>> sorted(search.best_params_)
    ['C']
    >>> len(search.study_.trials)
    4
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit"])],
        "param_distributions": [dict, None],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "cv": ["cv_object"],
        "n_trials": [Interval(Integral, 0, None, closed="left"), None],
        "timeout": [Interval(Real, 0, None, closed="neither"), None],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "tune_threshold": ["boolean"],
        "thresholds": [Interval(Integral, 2, None, closed="left"), "array-like"],
        "monitor": [str],
        "storage": [None, str, os.PathLike, HasMethods(["create_new_study"])],
        "study_name": [str, None],
        "load_if_exists": ["boolean"],
        "sampler": [HasMethods(["sample_relative"]), None],
        "pruner": [HasMethods(["prune"]), None],
        "refit": ["boolean"],
        "random_state": ["random_state"],
        "show_progress_bar": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator,
        param_distributions=None,
        *,
        scoring="f1",
        cv=5,
        n_trials=20,
        timeout=None,
        max_epochs=None,
        tune_threshold=True,
        thresholds=100,
        monitor="val_loss",
        storage=None,
        study_name=None,
        load_if_exists=True,
        sampler=None,
        pruner=None,
        refit=True,
        random_state=None,
        show_progress_bar=False,
        verbose=0,
    ):
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.scoring = scoring
        self.cv = cv
        self.n_trials = n_trials
        self.timeout = timeout
        self.max_epochs = max_epochs
        self.tune_threshold = tune_threshold
        self.thresholds = thresholds
        self.monitor = monitor
        self.storage = storage
        self.study_name = study_name
        self.load_if_exists = load_if_exists
        self.sampler = sampler
        self.pruner = pruner
        self.refit = refit
        self.random_state = random_state
        self.show_progress_bar = show_progress_bar
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, groups=None):
        """Run the study, then refit the best configuration on all of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Training samples (image tiles for the CNN).
        y : array-like of shape (n_samples,)
            Targets (-1 marks unlabelled rows for a semi-supervised
            estimator; use :class:`~skcrater.model_selection.SemiSupervisedKFold`
            so that they are never scored).
        groups : array-like of shape (n_samples,), default=None
            Group labels for group splitters.

        Returns
        -------
        self : OptunaSearch
            The fitted search.
        """

        if self.n_trials is None and self.timeout is None:
            raise ValueError("Set n_trials or timeout, or the search never ends.")
        X, y, groups = indexable(X, y, groups)
        plan = self._plan(X, y, groups)
        with _optuna_verbosity(self.verbose):
            study = self._study(plan)
            _check_setup(study, _setup(self, plan, X, y, groups))
            if self.n_trials != 0:
                study.optimize(
                    functools.partial(_objective, plan=plan, X=X, y=y),
                    n_trials=self.n_trials,
                    timeout=self.timeout,
                    show_progress_bar=self.show_progress_bar,
                )
        self._read_best(study, plan)
        if self.refit:
            self.best_estimator_ = self._refit(X, y, plan)
        return self

    def _plan(self, X, y, groups):
        """Validate everything a trial needs, once."""
        space = self._search_space()
        epochs_param = _nested_param(self.estimator, "epochs")
        threshold_param = _decision_threshold_param(self.estimator)
        for name, role in ((epochs_param, "epochs"), (threshold_param, "threshold")):
            if name in space and (role == "epochs" or self.tune_threshold):
                raise ValueError(
                    f"{name!r} must not be in the search space: the {role} is chosen from each "
                    "trial without retraining"
                    + (" (set max_epochs instead)." if role == "epochs" else ".")
                )
        max_epochs = None
        if epochs_param is not None:
            max_epochs = self.max_epochs or int(self.estimator.get_params()[epochs_param])
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = list(cv.split(X, y, groups))
        if self.tune_threshold and not is_classifier(self.estimator):
            raise ValueError("tune_threshold=True needs a classifier; set tune_threshold=False.")
        return {
            "search": self,
            "space": space,
            "epochs_param": epochs_param,
            "threshold_param": threshold_param,
            "max_epochs": max_epochs,
            "callbacks_target": _callbacks_target(self.estimator),
            "splits": splits,
            "scorer": check_scoring(self.estimator, scoring=self.scoring),
        }

    def _search_space(self):
        from optuna.distributions import BaseDistribution

        space = self.param_distributions
        if space is None:
            space = default_search_space(self.estimator)
        valid = self.estimator.get_params(deep=True)
        unknown = sorted(set(space) - set(valid))
        if unknown:
            raise ValueError(
                f"Unknown parameters in param_distributions for {type(self.estimator).__name__}: "
                f"{unknown}. Valid names include {sorted(valid)[:12]}."
            )
        for name, dist in space.items():
            if not isinstance(dist, BaseDistribution):
                raise TypeError(
                    f"param_distributions[{name!r}] must be an optuna distribution (e.g. "
                    f"optuna.distributions.FloatDistribution), got {type(dist).__name__}."
                )
        return dict(space)

    def _study(self, plan):
        import optuna

        max_epochs = plan["max_epochs"]
        sampler = self.sampler
        if sampler is None:
            from ._sampler import SobolThenTPESampler

            sampler = SobolThenTPESampler(plan["space"], seed=_seed(self.random_state))
        pruner = self.pruner
        if pruner is None:
            pruner = optuna.pruners.MedianPruner(
                n_startup_trials=3, n_warmup_steps=(max_epochs or 0) // 4
            )
        return optuna.create_study(
            storage=_storage(self.storage),
            study_name=self.study_name,
            load_if_exists=self.load_if_exists,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
        )

    def _read_best(self, study, plan):
        try:
            best = study.best_trial
        except ValueError as exc:
            raise ValueError(
                f"Study {study.study_name!r} has no completed trial yet: every trial was pruned "
                "or failed, or n_trials=0 on a new study."
            ) from exc
        params = dict(best.params)
        if plan["epochs_param"] is not None and "best_epoch" in best.user_attrs:
            params[plan["epochs_param"]] = int(best.user_attrs["best_epoch"])
        threshold = best.user_attrs.get("threshold")
        if threshold is not None and plan["threshold_param"] is not None:
            params[plan["threshold_param"]] = float(threshold)
        self.study_ = study
        self.best_trial_ = best
        self.best_params_ = params
        self.best_score_ = float(best.value)
        self.best_threshold_ = None if threshold is None else float(threshold)
        self.scorer_ = plan["scorer"]
        self.n_splits_ = len(plan["splits"])

    def _refit(self, X, y, plan):
        estimator = clone(self.estimator).set_params(**self.best_params_)
        if self.best_threshold_ is not None and plan["threshold_param"] is None:
            estimator = FixedThresholdClassifier(
                estimator,
                threshold=self.best_threshold_,
                response_method=_response_method(estimator),
            )
        return estimator.fit(X, y)

    # -------------------------------------------------------- prediction
    def _best_has(attr):
        def check(self):
            check_is_fitted(self, "best_estimator_")
            return hasattr(self.best_estimator_, attr)

        return check

    @available_if(_best_has("predict"))
    def predict(self, X):
        """Predict with :attr:`best_estimator_` (at the tuned threshold).

        Parameters
        ----------
        X : array-like
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self.best_estimator_.predict(X)

    @available_if(_best_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of :attr:`best_estimator_`.

        Parameters
        ----------
        X : array-like
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self.best_estimator_.predict_proba(X)

    @available_if(_best_has("decision_function"))
    def decision_function(self, X):
        """Decision function of :attr:`best_estimator_`.

        Parameters
        ----------
        X : array-like
            Samples.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        return self.best_estimator_.decision_function(X)

    def score(self, X, y):
        """Score of :attr:`best_estimator_` on ``(X, y)`` with :attr:`scorer_`.

        Parameters
        ----------
        X : array-like
            Samples.
        y : array-like of shape (n_samples,)
            True targets.

        Returns
        -------
        score : float
        """
        check_is_fitted(self, "best_estimator_")
        return self.scorer_(self.best_estimator_, X, y)

    @property
    def classes_(self):
        """Class labels of :attr:`best_estimator_`."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self):
        """Number of features seen by :attr:`best_estimator_`."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.n_features_in_

    # ----------------------------------------------------------- figures
    def plot_optimization_history(self, path=None):
        """Optuna's optimisation history (matplotlib), saved as PNG if asked.

        Parameters
        ----------
        path : str or path-like, default=None
            Where to save the figure.

        Returns
        -------
        ax : matplotlib.axes.Axes
        """
        from optuna.visualization.matplotlib import plot_optimization_history

        return self._plot(plot_optimization_history, path)

    def plot_param_importances(self, path=None):
        """Optuna's parameter importances (matplotlib), saved as PNG if asked.

        Needs at least two completed trials.

        Parameters
        ----------
        path : str or path-like, default=None
            Where to save the figure.

        Returns
        -------
        ax : matplotlib.axes.Axes
        """
        from optuna.visualization.matplotlib import plot_param_importances

        return self._plot(plot_param_importances, path)

    def _plot(self, plot, path):
        import optuna

        check_is_fitted(self, "study_")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ax = plot(self.study_)
        if path is not None:
            ax.figure.savefig(path, format="png", dpi=120, bbox_inches="tight")
        return ax

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = deepcopy(inner.classifier_tags)
        tags.regressor_tags = deepcopy(inner.regressor_tags)
        tags.input_tags = deepcopy(inner.input_tags)
        tags.target_tags.required = True
        tags.non_deterministic = True
        return tags


# ------------------------------------------------------------------ trials
def _objective(trial, *, plan, X, y):
    """Cross-validate one sampled configuration; return its score."""
    params = {name: _suggest(trial, name, dist) for name, dist in plan["space"].items()}
    if plan["epochs_param"] is not None:
        params[plan["epochs_param"]] = plan["max_epochs"]
    search = plan["search"]
    target = plan["callbacks_target"]
    reporter = None if target is None else _make_reporter(trial, search.monitor, plan["max_epochs"])
    folds, best_epochs = [], []
    try:
        for k, (train, test) in enumerate(plan["splits"]):
            estimator = clone(search.estimator).set_params(**params)
            if reporter is not None:
                reporter.start_fold(k)
            _fit_fold(
                estimator, _safe_indexing(X, train), _safe_indexing(y, train), reporter, target
            )
            folds.append(_held_out(estimator, _safe_indexing(X, test), _safe_indexing(y, test)))
            epoch = _best_epoch(estimator)
            if epoch is not None:
                best_epochs.append(epoch)
    finally:
        if reporter is not None and reporter.total_epochs:
            trial.set_user_attr("trained_epochs", reporter.total_epochs)
    threshold, fold_scores = _best_threshold(folds, plan, search)
    if threshold is not None:
        trial.set_user_attr("threshold", threshold)
    if best_epochs:
        trial.set_user_attr("fold_best_epochs", best_epochs)
        trial.set_user_attr("best_epoch", int(np.ceil(np.median(best_epochs))))
    trial.set_user_attr("fold_scores", fold_scores)
    return float(np.mean(fold_scores))


def _fit_fold(estimator, X, y, reporter, target):
    """Fit one fold's clone, handing the reporter to the Keras estimator at ``target``."""
    if reporter is None:
        return estimator.fit(X, y)
    if not target:
        return estimator.fit(X, y, callbacks=[reporter])
    with config_context(enable_metadata_routing=True):
        estimator.get_params()[target].set_fit_request(callbacks=True)
        return estimator.fit(X, y, callbacks=[reporter])


def _suggest(trial, name, dist):
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise TypeError(f"Unsupported optuna distribution for {name!r}: {type(dist).__name__}.")


def _held_out(estimator, X_test, y_test):
    """What the scorer needs from one fold, computed once: responses on the held-out rows."""
    proba = estimator.predict_proba(X_test) if hasattr(estimator, "predict_proba") else None
    scores = None
    if proba is not None and proba.shape[1] == 2:
        scores = proba[:, 1]
    elif proba is None and hasattr(estimator, "decision_function"):
        scores = np.asarray(estimator.decision_function(X_test))
    return {
        "estimator": estimator,
        "X": X_test,
        "y": y_test,
        "classes": getattr(estimator, "classes_", None),
        "proba": proba,
        "scores": scores,
    }


def _best_threshold(folds, plan, search):
    """Return (threshold or None, per-fold scores at it)."""
    scorer = plan["scorer"]
    if not search.tune_threshold:
        return None, [float(scorer(f["estimator"], f["X"], f["y"])) for f in folds]
    if any(f["scores"] is None for f in folds):
        raise ValueError(
            "tune_threshold=True needs a binary classifier with predict_proba or "
            "decision_function; set tune_threshold=False."
        )
    default = _default_threshold(search.estimator, plan["threshold_param"], folds)
    candidates = _candidate_thresholds(search.thresholds, folds)
    responses = [_Responses(f["classes"], f["scores"], f["proba"], default, f["y"]) for f in folds]
    with warnings.catch_warnings():
        # extreme thresholds predict one class only: zero precision is a score, not a problem
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        best, best_scores = default, _fold_scores(scorer, responses, default)
        for threshold in candidates:
            scores = _fold_scores(scorer, responses, threshold)
            if np.mean(scores) > np.mean(best_scores):
                best, best_scores = float(threshold), scores
    return best, best_scores


def _fold_scores(scorer, responses, threshold):
    scores = []
    for r in responses:
        r.threshold = threshold
        scores.append(float(scorer(r, r.X, r.y)))
    return scores


def _default_threshold(estimator, threshold_param, folds):
    if threshold_param is not None:
        return float(estimator.get_params()[threshold_param])
    return 0.5 if folds[0]["proba"] is not None else 0.0


def _candidate_thresholds(thresholds, folds):
    if isinstance(thresholds, Integral):
        pooled = np.concatenate([f["scores"] for f in folds])
        return np.linspace(pooled.min(), pooled.max(), thresholds)
    return np.unique(np.asarray(thresholds, dtype=float))


class _Responses(ClassifierMixin, BaseEstimator):
    """Answers a scorer from one fold's held-out responses at a settable threshold."""

    def __init__(self, classes, scores, proba, threshold, y):
        self.classes = classes
        self.scores = scores
        self.proba = proba
        self.threshold = threshold
        self.y = y
        self.classes_ = classes
        self.X = np.zeros((len(scores), 1))

    def predict(self, X):
        return self.classes[(self.scores >= self.threshold).astype(int)]

    @available_if(lambda self: self.proba is not None)
    def predict_proba(self, X):
        return self.proba

    def decision_function(self, X):
        return self.scores


def _best_epoch(estimator):
    """``best_epoch_`` of the estimator or of the fitted estimator it wraps."""
    while estimator is not None:
        if hasattr(estimator, "best_epoch_"):
            return int(estimator.best_epoch_)
        estimator = getattr(estimator, "estimator_", None)
    return None


@functools.cache
def _reporter_class():
    import keras
    import optuna

    class OptunaReporter(keras.callbacks.Callback):
        """Reports a Keras log value of every epoch to an Optuna trial and prunes."""

        def __init__(self, trial, monitor, steps_per_fold):
            super().__init__()
            self.trial = trial
            self.monitor = monitor
            self.steps_per_fold = steps_per_fold
            self.sign = -1.0 if "loss" in monitor else 1.0
            self.fold = 0
            self.fold_epochs = 0
            self.total_epochs = 0

        def start_fold(self, fold):
            self.fold, self.fold_epochs = fold, 0

        def on_epoch_end(self, epoch, logs=None):
            self.fold_epochs += 1
            self.total_epochs += 1
            value = (logs or {}).get(self.monitor)
            # later self-training rounds would repeat the steps: only the first round reports
            if value is None or self.fold_epochs > self.steps_per_fold:
                return
            step = self.fold * self.steps_per_fold + self.fold_epochs - 1
            self.trial.report(self.sign * float(value), step)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at fold {self.fold}, epoch {self.fold_epochs}")

    return OptunaReporter


def _make_reporter(trial, monitor, max_epochs):
    if max_epochs is None:
        return None
    return _reporter_class()(trial, monitor, max_epochs)


# ------------------------------------------------------------- parameters
def _callbacks_target(estimator):
    """Where Keras callbacks can go: "" (``estimator.fit`` takes them), the name of a
    wrapped estimator (``"estimator"``, ``"estimator__estimator"``...) whose ``fit``
    takes them, reached through metadata routing, or None.
    """
    path = []
    while estimator is not None:
        if has_fit_parameter(estimator, "callbacks"):
            return "__".join(path)
        inner = estimator.get_params(deep=False).get("estimator")
        if not hasattr(inner, "set_fit_request"):
            return None
        estimator = inner
        path.append("estimator")
    return None


def _nested_param(estimator, name):
    """The shallowest (possibly nested) parameter called ``name``, or None."""
    found = [key for key in estimator.get_params(deep=True) if key.split("__")[-1] == name]
    return min(found, key=lambda key: key.count("__"), default=None)


def _decision_threshold_param(estimator):
    """The parameter holding the decision threshold, or None.

    A meta-estimator's own ``threshold`` (e.g. a self-training wrapper's
    pseudo-labelling threshold) is not a decision threshold: the one of the
    estimator it wraps is.
    """
    prefix = ""
    while True:
        params = estimator.get_params(deep=False)
        inner = params.get("estimator")
        if hasattr(inner, "get_params"):
            estimator, prefix = inner, f"{prefix}estimator__"
            continue
        return f"{prefix}threshold" if "threshold" in params else None


def _response_method(estimator):
    return "predict_proba" if hasattr(estimator, "predict_proba") else "decision_function"


# ---------------------------------------------------------------- studies
def _seed(random_state):
    if random_state is None or isinstance(random_state, Integral):
        return random_state
    return int(random_state.randint(np.iinfo(np.int32).max))


def _storage(storage):
    """Map a storage argument to what ``optuna.create_study`` takes."""
    if isinstance(storage, str) and "://" in storage:
        return _rdb_storage(storage)
    if isinstance(storage, str | os.PathLike):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(os.fspath(storage)))
    return storage


def _rdb_storage(url, attempts=5):
    """An ``RDBStorage``, retrying while another process creates the same new database.

    Processes started together on a fresh database race to create its tables
    (optuna/optuna#1092): the losers fail once and then find the tables made.
    SQLite waits up to a minute for a lock instead of failing after 5 s.
    """
    from optuna.storages import RDBStorage
    from sqlalchemy.exc import SQLAlchemyError

    kwargs = (
        {"engine_kwargs": {"connect_args": {"timeout": 60}}} if url.startswith("sqlite") else {}
    )
    for attempt in range(attempts):
        try:
            return RDBStorage(url, **kwargs)
        except SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def _setup(search, plan, X, y, groups):
    """What must not change between processes or runs sharing one study."""
    digest = hashlib.sha1()
    for array in (X, y, groups):
        if array is not None:
            array = np.ascontiguousarray(array)
            digest.update(f"{array.shape}{array.dtype}".encode())
            digest.update(array.tobytes())
    return {
        "estimator": type(search.estimator).__name__,
        "data": digest.hexdigest(),
        "scoring": search.scoring
        if isinstance(search.scoring, str | None)
        else repr(search.scoring),
        "splits": hashlib.sha1(
            b"".join(np.asarray(t).tobytes() + b"|" for _, t in plan["splits"])
        ).hexdigest(),
        "max_epochs": plan["max_epochs"],
        "monitor": search.monitor,
        "tune_threshold": search.tune_threshold,
    }


def _check_setup(study, setup):
    stored = study.user_attrs.get(_SETUP_ATTR)
    if stored is None:
        study.set_user_attr(_SETUP_ATTR, setup)
        return
    changed = [
        f"{k}: stored {stored.get(k)!r}, now {v!r}" for k, v in setup.items() if stored.get(k) != v
    ]
    if changed:
        raise ValueError(
            f"Study {study.study_name!r} was run with a different set-up, so its scores are not "
            f"comparable ({'; '.join(changed)}). Use another study_name or storage."
        )


@contextlib.contextmanager
def _optuna_verbosity(verbose):
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)
