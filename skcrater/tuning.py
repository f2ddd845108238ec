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

The estimator may be the CNN itself, a :class:`~sklearn.pipeline.Pipeline`
ending in it, or a :class:`~skcrater.SelfTrainingWrapper` around either: the
epochs, the decision threshold and the pruning callback work the same in all
three.

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
import dataclasses
import hashlib
import os
import time
import warnings
from copy import deepcopy
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from scipy.stats import rankdata
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
    is_classifier,
)
from sklearn.exceptions import FitFailedWarning, UndefinedMetricWarning
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import FixedThresholdClassifier, check_cv
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metadata_routing import MetadataRouter, get_routing_for_object
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, indexable

from ._inner import find, find_param, fit_with_callbacks, takes_callbacks, walk
from ._tensorboard import require_tensorboard, tensorboard_callback

__all__ = ["OptunaSearch", "default_search_space"]

#: Study user attribute holding the set-up a shared study was started with.
_SETUP_ATTR = "skcrater_setup"
#: The study's user attribute that says what the intermediate values are.
_INTERMEDIATE_ATTR = "intermediate_values"


def default_search_space(estimator, *, architecture=False):
    """A sensible Optuna search space for a skcrater estimator.

    Parameters
    ----------
    estimator : estimator object
        The estimator to tune: a :class:`~skcrater.CraterCNNClassifier`, a
        Pipeline ending in one, or a meta-estimator around either. The CNN's
        parameters get their ``set_params`` prefix (``estimator__``,
        ``cratercnnclassifier__``...).
        A :class:`~skcrater.SelfTrainingWrapper` on the way (a subclass
        too) adds its pseudo-labelling ``threshold``.
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

    Raises
    ------
    ValueError
        If there is no CraterCNNClassifier inside ``estimator``.

    Examples
    --------
    >>> from skcrater import CraterCNNClassifier, SelfTrainingWrapper
    >>> from skcrater.tuning import default_search_space
    >>> sorted(default_search_space(CraterCNNClassifier()))
    ['learning_rate']
    >>> sorted(default_search_space(SelfTrainingWrapper(CraterCNNClassifier())))
    ['estimator__learning_rate', 'threshold']
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from .cnn import CraterCNNClassifier
    from .self_training import SelfTrainingWrapper

    prefix, cnn = find(estimator, lambda inner: isinstance(inner, CraterCNNClassifier))
    if cnn is None:
        raise ValueError(
            f"No default search space for {type(estimator).__name__}; pass param_distributions."
        )
    space = {f"{prefix}learning_rate": FloatDistribution(1e-4, 1e-3, log=True)}
    if architecture:
        space |= {
            f"{prefix}dropout": FloatDistribution(0.0, 0.6),
            f"{prefix}kernel_size": CategoricalDistribution([3, 5]),
            f"{prefix}batch_norm": CategoricalDistribution([False, True]),
        }
    wrapper_prefix, wrapper = find(estimator, lambda inner: isinstance(inner, SelfTrainingWrapper))
    if wrapper is not None:
        space = {f"{wrapper_prefix}threshold": FloatDistribution(0.5, 0.99), **space}
    return space


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
      where it saves most. A Keras estimator inside a
      :class:`~sklearn.pipeline.Pipeline` or a
      :class:`~skcrater.SelfTrainingWrapper` gets the callback through
      scikit-learn's metadata routing; only its first self-training round
      reports.

    The CNN may be the estimator itself, the last step of a Pipeline, or
    inside a SelfTrainingWrapper around either: the epochs, the decision
    threshold and the pruning callback are found inside all of them.

    A trial whose fit or scoring raises an error does not stop the search
    (unless ``error_score="raise"``): it gets ``error_score``, and a
    :class:`~sklearn.exceptions.FitFailedWarning` names it in one line.

    The study lives in ``storage``: an interrupted search resumes where it
    stopped, and processes or hosts that use the same storage and
    ``study_name`` share one study (Optuna's distributed mode), each
    running ``n_trials`` more trials and refitting the best trial of the
    whole study. A worker killed mid-trial cannot finish its trial: a
    storage given as a URL or a journal path has Optuna's heartbeat, so
    that the next trial any worker of the study starts, once
    ``grace_period`` has passed since the killed trial's last heartbeat,
    first marks that trial failed and queues its parameters again (Optuna's
    :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`, at most
    twice per configuration). A storage URL that cannot work (an unknown
    database kind, a missing SQLite folder, a database that does not
    answer) is refused before any trial.

    Parameters
    ----------
    estimator : estimator object
        A classifier (or regressor, with ``tune_threshold=False``) to clone
        and fit in every trial.
    param_distributions : dict of str to optuna.distributions.BaseDistribution, default=None
        The search space, keyed by (nested) parameter name, e.g.
        ``{"learning_rate": FloatDistribution(1e-4, 1e-3, log=True)}``, or
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
        Choose the decision threshold from the held-out probabilities. It
        needs binary targets (``-1``, the unlabelled marker of
        semi-supervised estimators, is not a class), so the search's tags
        then say it is not multiclass.
    thresholds : int or array-like, default=100
        Candidate thresholds: that many evenly spaced between the lowest
        and the highest held-out probability, or the given values. The
        estimator's own threshold (0.5 for probabilities, 0.0 for a
        ``decision_function``, when it has no ``threshold`` parameter) is
        always a candidate and is kept unless another one scores strictly
        higher.
    monitor : str, default="val_loss"
        Keras log reported to the pruner after every epoch.
    error_score : "raise" or float, default=np.nan
        What a trial gets when fitting or scoring one of its folds raises
        an error: ``"raise"`` raises it and stops the search (unless its
        type is in ``catch``); a number is the trial's score (and every
        fold's), except that ``nan`` marks the trial failed, which the
        sampler ignores. The refit of the best trial always raises.
    catch : tuple of exception types, default=()
        Exceptions that Optuna catches in a trial: the trial is marked
        failed and the search goes on (``study.optimize``'s ``catch``). It
        matters with ``error_score="raise"``; otherwise every error of a
        fold already gets ``error_score``.
    callbacks : list of callable or None, default=None
        Optuna study callbacks, ``callback(study, frozen_trial)``, called
        after each trial (``study.optimize``'s ``callbacks``), e.g.
        :class:`optuna.study.MaxTrialsCallback`.
    tensorboard_dir : str, path-like or None, default=None
        Folder for Keras TensorBoard logs (:class:`keras.callbacks.TensorBoard`)
        of every fold's fit, one run per trial and fold
        (``trial_0003/fold_1``), and of the refit (``refit``); view them
        with ``tensorboard --logdir``. Needs an estimator whose ``fit``
        takes Keras ``callbacks``. None writes none.
    storage : None, str, path-like or optuna.storages.BaseStorage, default=None
        None keeps the study in memory. A string with ``://`` is a database
        URL (``"sqlite:///study.db"``, ``"postgresql://..."``), opened as an
        :class:`~optuna.storages.RDBStorage`; any other string or path is an
        Optuna journal file
        (:class:`~optuna.storages.journal.JournalFileBackend`), which suits
        several processes on one file system. Both get the heartbeat of
        ``heartbeat_interval``. An Optuna storage object is used as it is,
        heartbeat settings included: Optuna's own
        :class:`~optuna.storages.JournalStorage` has no heartbeat, and an
        ``RDBStorage`` has one only when given ``heartbeat_interval`` and
        ``heartbeat_stale_trial_callback``.
    heartbeat_interval : int or None, default=60
        Seconds between the heartbeats a running trial records in a
        ``storage`` given as a URL or a path. None records none: the trial
        of a killed worker then stays RUNNING and its configuration is never
        tried again.
    grace_period : int or None, default=None
        Seconds without a heartbeat after which a RUNNING trial counts as the
        trial of a dead worker, is marked failed and is retried with the same
        parameters; None is twice ``heartbeat_interval`` (120 s by default).
        It must be longer than ``heartbeat_interval``, and than the
        disagreement between the clocks of hosts that share a journal file
        (a journal heartbeat is the writing host's time; a database's is the
        database server's).
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
        0 silences Optuna's log but its errors (a failed trial is then the
        one line of its FitFailedWarning). 1 shows Optuna's per-trial log
        lines, one line per fold (epochs trained, best epoch, seconds) and,
        after the first fold, how long a trial and this ``fit``'s trials
        should take. 2 adds one line per epoch (the ``monitor``-ed value).

    Attributes
    ----------
    study_ : optuna.study.Study
        The study (all trials, of every process that shared it).
    cv_results_ : dict of str to ndarray
        One row per finished trial of the study, in trial order, in
        :class:`~sklearn.model_selection.GridSearchCV`'s format (it loads
        into a ``pandas.DataFrame``): ``params`` (the configuration each
        trial stands for, its epochs and threshold included, ready for
        ``set_params``), ``param_<name>`` masked arrays,
        ``split<k>_test_score``, ``mean_test_score``, ``std_test_score``,
        ``rank_test_score``, ``mean_fit_time``, ``std_fit_time``,
        ``mean_score_time`` and ``std_score_time`` (computing the held-out
        predictions), plus the Optuna trial's ``number`` and ``state``
        (``"COMPLETE"``, ``"PRUNED"``, ``"FAIL"``) and, with threshold
        tuning, the trial's decision ``threshold``. Pruned and failed
        trials have nan scores and share the last rank.
    best_index_ : int
        The row of the best trial in :attr:`cv_results_`.
    best_trial_ : optuna.trial.FrozenTrial
        The best completed trial that did not fail.
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
    >>> import pandas as pd
    >>> pd.DataFrame(search.cv_results_).shape[0]
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
        "error_score": [StrOptions({"raise"}), Real],
        "catch": [tuple, type],
        "callbacks": [list, None],
        "tensorboard_dir": [str, os.PathLike, None],
        "storage": [None, str, os.PathLike, HasMethods(["create_new_study"])],
        "heartbeat_interval": [Interval(Integral, 1, None, closed="left"), None],
        "grace_period": [Interval(Integral, 1, None, closed="left"), None],
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
        error_score=np.nan,
        catch=(),
        callbacks=None,
        tensorboard_dir=None,
        storage=None,
        heartbeat_interval=60,
        grace_period=None,
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
        self.error_score = error_score
        self.catch = catch
        self.callbacks = callbacks
        self.tensorboard_dir = tensorboard_dir
        self.storage = storage
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
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

        Raises
        ------
        ValueError
            If the arguments cannot work together or ``storage`` cannot be
            opened (both checked before any trial), or if no trial of the
            study completed without failing.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X, y, groups = indexable(X, y, groups)
        objective = self._objective(X, y, groups)
        with _optuna_verbosity(self.verbose):
            study = self._study(objective)
            _check_setup(study, _setup(self, objective, X, y, groups))
            _name_values(study, objective, self.scoring)
            if self.n_trials != 0:
                study.optimize(
                    objective,
                    n_trials=self.n_trials,
                    timeout=self.timeout,
                    catch=objective.catch,
                    callbacks=self.callbacks,
                    show_progress_bar=self.show_progress_bar,
                )
        self._read_best(study, objective)
        if self.refit:
            self.best_estimator_ = self._refit(X, y, objective)
        return self

    def _objective(self, X, y, groups):
        """Check everything a trial needs, once, and return the objective that runs trials."""
        name = type(self).__name__
        if self.n_trials is None and self.timeout is None:
            raise ValueError(f"{name}: set n_trials or timeout, or the search never ends.")
        space = self._search_space()
        epochs_param = find_param(self.estimator, "epochs")
        threshold_param = find_param(self.estimator, "threshold", innermost=True)
        for param, role in ((epochs_param, "epochs"), (threshold_param, "threshold")):
            if param in space and (role == "epochs" or self.tune_threshold):
                raise ValueError(
                    f"{param!r} must not be in the search space: the {role} is chosen from each "
                    "trial without retraining"
                    + (" (set max_epochs instead)." if role == "epochs" else ".")
                )
        scorer = check_scoring(self.estimator, scoring=self.scoring)
        if self.tune_threshold:
            self._check_threshold_tuning(y, scorer)
        max_epochs = None
        if epochs_param is not None:
            max_epochs = self.max_epochs or int(self.estimator.get_params()[epochs_param])
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = list(cv.split(X, y, groups))
        return _Objective(
            name=name,
            estimator=self.estimator,
            space=space,
            X=X,
            y=y,
            splits=splits,
            scorer=scorer,
            tune_threshold=self.tune_threshold,
            thresholds=self.thresholds,
            default_threshold=_default_threshold(self.estimator, threshold_param)
            if self.tune_threshold
            else None,
            threshold_param=threshold_param,
            epochs_param=epochs_param,
            max_epochs=max_epochs,
            monitor=self.monitor,
            reporter_path=_reporter_path(self.estimator),
            error_score=self.error_score,
            catch=self._catch(),
            progress=_Progress(self.verbose, self.n_trials, len(splits)),
            tensorboard_dir=self._tensorboard_dir(),
        )

    def _tensorboard_dir(self):
        if self.tensorboard_dir is None:
            return None
        if _reporter_path(self.estimator) is None:
            raise ValueError(
                f"{type(self).__name__}: tensorboard_dir needs an estimator whose fit takes "
                f"Keras callbacks; {type(self.estimator).__name__} cannot receive them."
            )
        require_tensorboard("tensorboard_dir")
        return os.fspath(self.tensorboard_dir)

    def _check_threshold_tuning(self, y, scorer):
        from .self_training import UNLABELED

        name = type(self).__name__
        if not is_classifier(self.estimator):
            raise ValueError(f"{name}: tune_threshold=True needs a classifier; set it to False.")
        if not any(hasattr(self.estimator, m) for m in ("predict_proba", "decision_function")):
            raise ValueError(
                f"{name}: tune_threshold=True needs a classifier with predict_proba or "
                "decision_function; set tune_threshold=False."
            )
        y = np.asarray(y)
        labelled = y[y != UNLABELED]
        kind = type_of_target(labelled, input_name="y", raise_unknown=True)
        if kind != "binary":
            raise ValueError(
                f"{name}: Only binary classification is supported. tune_threshold=True chooses "
                f"the threshold of one class, but y is {kind}; set tune_threshold=False."
            )
        classes = np.unique(labelled)
        if classes.size < 2:
            raise ValueError(
                f"{name}: tune_threshold=True needs labelled samples of 2 classes, got "
                f"{classes.size} class: {classes.tolist()}."
            )
        _check_scorer(name, scorer, self.scoring, self.estimator, labelled)

    def _catch(self):
        catch = (self.catch,) if isinstance(self.catch, type) else tuple(self.catch)
        if not all(isinstance(c, type) and issubclass(c, Exception) for c in catch):
            raise TypeError(
                f"{type(self).__name__}: catch must be a tuple of exception classes, got "
                f"{self.catch!r}."
            )
        return catch

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

    def _study(self, objective):
        import optuna

        sampler = self.sampler
        if sampler is None:
            from ._sampler import SobolThenTPESampler

            sampler = SobolThenTPESampler(objective.space, seed=_seed(self.random_state))
        pruner = self.pruner
        if pruner is None:
            pruner = optuna.pruners.MedianPruner(
                n_startup_trials=3, n_warmup_steps=(objective.max_epochs or 0) // 4
            )
        from ._storage import make_storage

        return optuna.create_study(
            storage=make_storage(self.storage, self.heartbeat_interval, self.grace_period),
            study_name=self.study_name,
            load_if_exists=self.load_if_exists,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
        )

    def _read_best(self, study, objective):
        from optuna.trial import TrialState

        trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        succeeded = [
            t for t in trials if t.state == TrialState.COMPLETE and "error" not in t.user_attrs
        ]
        if not succeeded:
            raise ValueError(_no_completed_trial(study.study_name, trials))
        best = max(succeeded, key=lambda trial: trial.value)
        self.study_ = study
        self.cv_results_ = _cv_results(trials, objective)
        self.best_index_ = trials.index(best)
        self.best_trial_ = best
        self.best_params_ = objective.params_of(best)
        self.best_score_ = float(best.value)
        threshold = best.user_attrs.get("threshold")
        self.best_threshold_ = None if threshold is None else float(threshold)
        self.scorer_ = objective.scorer
        self.n_splits_ = len(objective.splits)

    def _refit(self, X, y, objective):
        estimator = clone(self.estimator).set_params(**self.best_params_)
        if self.best_threshold_ is not None and objective.threshold_param is None:
            return FixedThresholdClassifier(
                estimator,
                threshold=self.best_threshold_,
                response_method=_response_method(estimator),
            ).fit(X, y)
        callbacks = []
        if objective.tensorboard_dir is not None:
            callbacks.append(tensorboard_callback(os.path.join(objective.tensorboard_dir, "refit")))
        return fit_with_callbacks(estimator, X, y, callbacks)

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
            ax = plot(self.study_, target_name=_objective_name(self.scoring))
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
        tags.target_tags = deepcopy(inner.target_tags)
        tags.target_tags.required = True
        if self.tune_threshold and tags.classifier_tags is not None:
            tags.classifier_tags.multi_class = False
        # a seeded default sampler on a fresh in-memory study repeats its trials
        reproducible = (
            isinstance(self.random_state, Integral)
            and self.sampler is None
            and self.storage is None
            and self.timeout is None
        )
        tags.non_deterministic = inner.non_deterministic or not reproducible
        return tags


# ------------------------------------------------------------------ trials
@dataclasses.dataclass(kw_only=True, eq=False)
class _Objective:
    """What Optuna calls with each trial: sample, cross-validate, choose what is free, score.

    :meth:`OptunaSearch._objective` checks the arguments and builds one per
    ``fit``; every field is fixed for the whole study.
    """

    #: The search's class name, for messages.
    name: str
    #: The unfitted estimator, cloned for every fold.
    estimator: object
    #: The searched parameters (name to Optuna distribution).
    space: dict
    X: object
    y: object
    #: The (train, test) index arrays, the same in every trial.
    splits: list
    #: ``scorer(estimator, X, y)``.
    scorer: object
    #: Choose the decision threshold from the held-out responses.
    tune_threshold: bool
    #: Candidate thresholds (see :class:`OptunaSearch`).
    thresholds: object
    #: The estimator's own threshold, always a candidate (None without threshold tuning).
    default_threshold: float | None
    #: ``set_params`` names of the decision threshold and of the epochs, or None.
    threshold_param: str | None
    epochs_param: str | None
    #: Epochs each fold trains (None: the estimator has no epochs).
    max_epochs: int | None
    #: Keras log reported to the pruner.
    monitor: str
    #: Where the Keras estimator that takes callbacks is (see :func:`_reporter_path`).
    reporter_path: str | None
    #: A failed trial's score, or "raise".
    error_score: object
    #: Exceptions that Optuna catches.
    catch: tuple
    #: Prints folds, epochs and the time estimate (see ``verbose``).
    progress: _Progress
    #: Folder of the TensorBoard logs, or None.
    tensorboard_dir: str | None = None

    def __call__(self, trial):
        import optuna

        params = {name: _suggest(trial, name, dist) for name, dist in self.space.items()}
        if self.epochs_param is not None:
            params[self.epochs_param] = self.max_epochs
        try:
            return self._evaluate(trial, params)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            return self._failed(trial, exc)

    def params_of(self, trial):
        """The parameters a finished trial stands for, its free ones included."""
        params = dict(trial.params)
        if self.epochs_param is not None and "best_epoch" in trial.user_attrs:
            params[self.epochs_param] = int(trial.user_attrs["best_epoch"])
        threshold = trial.user_attrs.get("threshold")
        if threshold is not None and self.threshold_param is not None:
            params[self.threshold_param] = float(threshold)
        return params

    def _evaluate(self, trial, params):
        reporter = self._reporter(trial)
        folds = []
        try:
            for k, (train, test) in enumerate(self.splits):
                if reporter is not None:
                    reporter.start_fold(k)
                folds.append(self._fold(params, train, test, self._callbacks(trial, k, reporter)))
                self.progress.fold_done(trial.number, k, folds[-1])
        finally:
            trial.set_user_attr("fold_fit_times", [fold.fit_time for fold in folds])
            trial.set_user_attr("fold_score_times", [fold.score_time for fold in folds])
            if reporter is not None and reporter.total_epochs:
                trial.set_user_attr("trained_epochs", reporter.total_epochs)
        if self.tune_threshold:
            threshold, scores = self._best_threshold([fold.held_out for fold in folds])
            trial.set_user_attr("threshold", threshold)
        else:
            scores = [fold.score for fold in folds]
        best_epochs = [fold.best_epoch for fold in folds if fold.best_epoch is not None]
        if best_epochs:
            trial.set_user_attr("fold_best_epochs", best_epochs)
            trial.set_user_attr("best_epoch", int(np.ceil(np.median(best_epochs))))
        trial.set_user_attr("fold_scores", scores)
        return float(np.mean(scores))

    def _fold(self, params, train, test, callbacks):
        """Fit one fold's clone and answer for its held-out rows."""
        estimator = clone(self.estimator).set_params(**params)
        start = time.perf_counter()
        X_train, y_train = _safe_indexing(self.X, train), _safe_indexing(self.y, train)
        fit_with_callbacks(estimator, X_train, y_train, callbacks)
        fitted = time.perf_counter()
        X_test, y_test = _safe_indexing(self.X, test), _safe_indexing(self.y, test)
        held_out = score = None
        if self.tune_threshold:
            held_out = _Responses.held_out(estimator, X_test, y_test)
        else:
            score = float(self.scorer(estimator, X_test, y_test))
        _, trained = find(estimator, "best_epoch_", fitted=True)
        return _Fold(
            held_out=held_out,
            score=score,
            best_epoch=None if trained is None else int(trained.best_epoch_),
            epochs=getattr(trained, "n_epochs_", None),
            fit_time=fitted - start,
            score_time=time.perf_counter() - fitted,
        )

    def _reporter(self, trial):
        if self.reporter_path is None or self.max_epochs is None:
            return None
        from ._pruning import EpochReporter

        return EpochReporter(
            trial,
            self.monitor,
            self.max_epochs,
            print_epochs=self.progress.verbose >= 2,
            n_folds=len(self.splits),
        )

    def _callbacks(self, trial, fold, reporter):
        """The Keras callbacks of one fold's fit: the pruning reporter, TensorBoard."""
        callbacks = [] if reporter is None else [reporter]
        if self.tensorboard_dir is not None:
            run = os.path.join(self.tensorboard_dir, f"trial_{trial.number:04d}", f"fold_{fold}")
            callbacks.append(tensorboard_callback(run))
        return callbacks

    def _failed(self, trial, exc):
        """Record a trial's error; return ``error_score`` or raise it again for Optuna."""
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
        trial.set_user_attr("error", error)
        raising = self.error_score == "raise"
        if raising and not isinstance(exc, self.catch):
            raise exc
        if raising:
            outcome = "is marked failed (its type is in catch)"
        elif np.isnan(self.error_score):
            outcome = "is marked failed (error_score=nan)"
        else:
            outcome = f"gets error_score={self.error_score!r}"
        warnings.warn(
            f"{self.name} trial {trial.number} with parameters {trial.params} {outcome}: {error}",
            FitFailedWarning,
            stacklevel=2,
        )
        if raising:
            raise exc
        if not np.isnan(self.error_score):
            trial.set_user_attr("fold_scores", [float(self.error_score)] * len(self.splits))
        return float(self.error_score)

    def _best_threshold(self, responses):
        """Return (threshold, per-fold scores at it): the best candidate, the default on ties."""
        candidates = _candidate_thresholds(self.thresholds, responses)
        with warnings.catch_warnings():
            # extreme thresholds predict one class only: zero precision is a score, not a problem
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            best = self.default_threshold
            best_scores = _fold_scores(self.scorer, responses, best)
            for threshold in candidates:
                scores = _fold_scores(self.scorer, responses, threshold)
                if np.mean(scores) > np.mean(best_scores):
                    best, best_scores = float(threshold), scores
        return best, best_scores


class _Progress:
    """What ``verbose`` asks to print while trials run: a line per fold and,
    after this process's first fold, how long a trial and its trials should take."""

    def __init__(self, verbose, n_trials, n_folds):
        self.verbose = int(verbose)
        self.n_trials = n_trials
        self.n_folds = n_folds
        self.estimated = False

    def fold_done(self, number, fold, result):
        if self.verbose < 1:
            return
        epochs = "" if result.epochs is None else f"{result.epochs} epochs"
        if result.best_epoch is not None:
            epochs += f" (best {result.best_epoch})"
        seconds = result.fit_time + result.score_time
        print(
            f"trial {number}, fold {fold + 1}/{self.n_folds}: "
            + (f"{epochs}, " if epochs else "")
            + _duration(seconds),
            flush=True,
        )
        if not self.estimated:
            self.estimated = True
            print(self._estimate(seconds), flush=True)

    def _estimate(self, seconds):
        # the first fold is the only evidence before a trial ends; pruning and
        # early stopping can only shorten what it predicts
        line = f"first fold took {_duration(seconds)}: a trial of {self.n_folds} folds "
        line += f"should take about {_duration(seconds * self.n_folds)}"
        if self.n_trials and self.n_trials > 1:
            total = seconds * self.n_folds * self.n_trials
            line += f", the {self.n_trials} trials about {_duration(total)}"
        return line + " (less if pruned or stopped early)"


def _duration(seconds):
    """A duration for people: seconds, minutes or hours."""
    if seconds < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


#: How a scorer's name reads in plots and the study's metric name.
_SCORE_NAMES = {"f1": "F1", "accuracy": "accuracy", "roc_auc": "ROC AUC", "precision": "precision"}


def _objective_name(scoring):
    """The objective, as people read it: ``"CV F1"`` for ``scoring="f1"``."""
    if scoring is None:
        return "CV score"
    if isinstance(scoring, str):
        return f"CV {_SCORE_NAMES.get(scoring, scoring)}"
    return f"CV {getattr(scoring, '__name__', 'score')}"


def _name_values(study, objective, scoring):
    """Name the study's objective and say what its intermediate values are.

    Optuna stores numbers without meaning; the metric name shows in Optuna's
    dashboard and plots, the user attribute explains the steps.
    """
    import optuna

    if study.metric_names is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([_objective_name(scoring)])
    if objective.max_epochs is None or objective.reporter_path is None:
        return
    sign = "minus " if "loss" in objective.monitor else ""
    meaning = (
        f"{sign}{objective.monitor} after epoch e (from 0) of fold k (from 0), at step "
        f"k * {objective.max_epochs} + e"
    )
    if study.user_attrs.get(_INTERMEDIATE_ATTR) != meaning:
        study.set_user_attr(_INTERMEDIATE_ATTR, meaning)


class _Fold(NamedTuple):
    """One fold of a trial."""

    #: Its held-out responses (with threshold tuning), else None.
    held_out: _Responses | None
    #: Its held-out score (without threshold tuning), else None.
    score: float | None
    #: The epoch the fitted Keras estimator kept, or None.
    best_epoch: int | None
    #: The epochs it trained (its last fit's), or None.
    epochs: int | None
    #: Seconds to fit, and to compute the held-out responses or score.
    fit_time: float
    score_time: float


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


class _Responses(ClassifierMixin, BaseEstimator):
    """Answers a scorer from one fold's held-out responses at a settable threshold.

    ``scores`` are p(``classes[1]``) when the estimator has ``predict_proba``
    (whatever its ``decision_function`` means), else its decision function;
    :meth:`decision_function` keeps scikit-learn's contract: > 0 exactly
    where :meth:`predict` gives ``classes[1]``.
    """

    def __init__(self, classes, scores, proba, threshold, y):
        self.classes = classes
        self.scores = scores
        self.proba = proba
        self.threshold = threshold
        self.y = y
        self.classes_ = classes
        self.X = np.zeros((len(scores), 1))

    @classmethod
    def held_out(cls, estimator, X, y):
        """The responses of a fitted binary classifier on held-out rows."""
        proba = None
        if _response_method(estimator) == "predict_proba":
            proba = estimator.predict_proba(X)
            scores = proba[:, 1] if proba.shape[1] == 2 else None
        else:
            scores = np.asarray(estimator.decision_function(X), dtype=float)
            scores = scores if scores.ndim == 1 else None
        if scores is None:
            raise ValueError(
                f"tune_threshold=True needs a binary classifier; {type(estimator).__name__} "
                f"learnt classes {list(estimator.classes_)}. Set tune_threshold=False."
            )
        return cls(estimator.classes_, scores, proba, None, y)

    def predict(self, X):
        return self.classes[(self.scores >= self.threshold).astype(int)]

    @available_if(lambda self: self.proba is not None)
    def predict_proba(self, X):
        return self.proba

    def decision_function(self, X):
        return self.scores - self.threshold


def _check_scorer(name, scorer, scoring, estimator, y):
    """Score a constant prediction of ``y``, so that a scorer that cannot score these
    targets (``"f1"`` and string labels, which lack its positive label 1; a
    probability scorer and an estimator without ``predict_proba``) fails before any
    trial rather than in every one.
    """
    scores = np.full(len(y), 0.5)
    proba = np.column_stack([1 - scores, scores])
    if _response_method(estimator) != "predict_proba":
        proba = None
    responses = _Responses(np.unique(y), scores, proba, 0.5, y)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            scorer(responses, responses.X, y)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"{name}: scoring={scoring!r} cannot score these targets with threshold tuning: {exc}"
        ) from exc


def _fold_scores(scorer, responses, threshold):
    scores = []
    for r in responses:
        r.threshold = threshold
        scores.append(float(scorer(r, r.X, r.y)))
    return scores


def _default_threshold(estimator, threshold_param):
    """The estimator's own decision threshold, on the scores tuning thresholds."""
    if threshold_param is not None:
        return float(estimator.get_params()[threshold_param])
    return 0.5 if _response_method(estimator) == "predict_proba" else 0.0


def _candidate_thresholds(thresholds, responses):
    if isinstance(thresholds, Integral):
        pooled = np.concatenate([r.scores for r in responses])
        return np.linspace(pooled.min(), pooled.max(), thresholds)
    return np.unique(np.asarray(thresholds, dtype=float))


def _response_method(estimator):
    return "predict_proba" if hasattr(estimator, "predict_proba") else "decision_function"


def _reporter_path(estimator):
    """Where Keras callbacks can go: the ``set_params`` prefix of the estimator whose
    ``fit`` takes them (``""``: ``estimator`` itself), or None when there is none, or
    when an estimator on the way (a Pipeline's last step, a wrapped ``estimator``)
    cannot route them by metadata routing.
    """
    for prefix, inner in walk(estimator):
        if takes_callbacks(inner):
            return prefix
        if not isinstance(get_routing_for_object(inner), MetadataRouter):
            return None
    return None


# ---------------------------------------------------------------- results
def _cv_results(trials, objective):
    """GridSearchCV's ``cv_results_`` of finished trials (pruned and failed ones: nan)."""
    from optuna.trial import TrialState

    n_splits = len(objective.splits)
    scores = np.full((len(trials), n_splits), np.nan)
    for row, trial in enumerate(trials):
        fold_scores = trial.user_attrs.get("fold_scores")
        if trial.state == TrialState.COMPLETE and fold_scores and len(fold_scores) == n_splits:
            scores[row] = fold_scores
    results = {}
    for key in ("fit_time", "score_time"):
        times = [trial.user_attrs.get(f"fold_{key}s") or [np.nan] for trial in trials]
        results[f"mean_{key}"] = np.array([np.mean(t) for t in times])
        results[f"std_{key}"] = np.array([np.std(t) for t in times])
    params = [objective.params_of(trial) for trial in trials]
    results.update(_param_columns(params))
    results["params"] = params
    for k in range(n_splits):
        results[f"split{k}_test_score"] = scores[:, k]
    results["mean_test_score"] = scores.mean(axis=1)
    results["std_test_score"] = scores.std(axis=1)
    results["rank_test_score"] = _rank(results["mean_test_score"])
    results["number"] = np.array([trial.number for trial in trials])
    results["state"] = np.array([trial.state.name for trial in trials], dtype=object)
    if objective.tune_threshold:
        results["threshold"] = np.array(
            [trial.user_attrs.get("threshold", np.nan) for trial in trials], dtype=float
        )
    return results


def _param_columns(params):
    """``param_<name>`` masked arrays, masked where a trial has no such parameter."""
    columns = {}
    for name in dict.fromkeys(name for p in params for name in p):
        values = [p[name] for p in params if name in p]
        try:
            array = np.asarray(values)
        except ValueError:  # sequences of different lengths
            array = np.asarray(values, dtype=object)
        dtype = array.dtype if array.ndim == 1 and array.dtype.kind in "biuf" else object
        column = np.ma.MaskedArray(np.empty(len(params), dtype=dtype), mask=True)
        for row, p in enumerate(params):
            if name in p:
                column[row] = p[name]
        columns[f"param_{name}"] = column
    return columns


def _rank(means):
    """1 for the best mean; nan means tie for the last rank (as in GridSearchCV)."""
    if np.isnan(means).all():
        return np.ones(len(means), dtype=np.int32)
    filled = np.where(np.isnan(means), np.nanmin(means) - 1, means)
    return rankdata(-filled, method="min").astype(np.int32)


def _no_completed_trial(study_name, trials):
    from optuna.trial import TrialState

    failed = [t for t in trials if t.state == TrialState.FAIL or "error" in t.user_attrs]
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    message = (
        f"Study {study_name!r} has no completed trial yet: of its {len(trials)} finished "
        f"trials, {len(failed)} failed and {pruned} were pruned"
    )
    errors = [t for t in failed if "error" in t.user_attrs]
    if errors:
        last = errors[-1]
        message += (
            f". The last failure, trial {last.number} with parameters {last.params}: "
            f"{last.user_attrs['error']}"
        )
    elif not trials:
        message += " (n_trials=0 runs none)"
    return message + "."


# ---------------------------------------------------------------- studies
def _seed(random_state):
    if random_state is None or isinstance(random_state, Integral):
        return random_state
    return int(random_state.randint(np.iinfo(np.int32).max))


def _setup(search, objective, X, y, groups):
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
            b"".join(np.asarray(t).tobytes() + b"|" for _, t in objective.splits)
        ).hexdigest(),
        "max_epochs": objective.max_epochs,
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
    # at verbose=0 a failed trial is the one line of its FitFailedWarning, without
    # Optuna's warning and traceback
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)
