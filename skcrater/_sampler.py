"""The default sampler of :class:`skcrater.tuning.OptunaSearch` (imports Optuna)."""

from __future__ import annotations

import warnings

import optuna

__all__ = ["SobolThenTPESampler"]


class SobolThenTPESampler(optuna.samplers.BaseSampler):
    """Scrambled Sobol points for a study's first trials, then TPE.

    With a handful of expensive trials, TPE's random start-up draws can all
    land in one part of the range; Sobol points cover it evenly, edges
    included. :class:`optuna.samplers.QMCSampler` alone samples a study's
    first trial at random, because it learns the space from that trial; here
    the space is given, so every start-up trial is a Sobol point.

    Parameters
    ----------
    search_space : dict of str to optuna.distributions.BaseDistribution
        The space every trial samples (not conditional).
    n_startup_trials : int, default=10
        Trials numbered below this are Sobol points (TPE's own default
        start-up count). Trial numbers are global to a study, so processes
        sharing one study share the start-up sequence.
    seed : int or None, default=None
        Seeds both samplers.
    """

    def __init__(self, search_space, *, n_startup_trials=10, seed=None):
        self._space = dict(search_space)
        self._n_startup_trials = n_startup_trials
        with warnings.catch_warnings():
            # skcrater chose it; the warning would only alarm users who did not
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._qmc = optuna.samplers.QMCSampler(
                scramble=True, seed=seed, warn_asynchronous_seeding=False
            )
        self._tpe = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)

    def _for(self, trial):
        return self._qmc if trial.number < self._n_startup_trials else self._tpe

    def infer_relative_search_space(self, study, trial):
        if trial.number < self._n_startup_trials:
            return dict(self._space)
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values):
        self._for(trial).after_trial(study, trial, state, values)

    def reseed_rng(self):
        self._qmc.reseed_rng()
        self._tpe.reseed_rng()
