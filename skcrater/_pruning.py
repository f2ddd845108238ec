"""The Keras callback through which :class:`skcrater.tuning.OptunaSearch` reports epochs.

It imports Keras and Optuna, so :mod:`skcrater.tuning` imports it only when a
search trains a Keras estimator.
"""

from __future__ import annotations

import keras
import optuna

__all__ = ["EpochReporter"]


class EpochReporter(keras.callbacks.Callback):
    """Report a Keras log value to an Optuna trial after every epoch, and prune.

    One reporter serves every cross-validation fold of a trial: call
    :meth:`start_fold` before each fold's fit.

    Parameters
    ----------
    trial : optuna.trial.Trial
        The trial to report to.
    monitor : str
        The Keras log to report (e.g. ``"val_loss"``). A loss is negated,
        because the study maximises.
    steps_per_fold : int
        Epochs reported per fold: epoch ``e`` (from 0) of fold ``k`` is
        step ``k * steps_per_fold + e``, so that a step means the same fold
        and epoch in every trial. Later epochs of the same fold (the later
        rounds of a self-training wrapper) are counted, not reported.

    Attributes
    ----------
    total_epochs : int
        Epochs trained in all folds so far, reported or not.
    """

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
        """Count the next epochs as those of fold number ``fold``."""
        self.fold, self.fold_epochs = fold, 0

    def on_epoch_end(self, epoch, logs=None):
        self.fold_epochs += 1
        self.total_epochs += 1
        value = (logs or {}).get(self.monitor)
        if value is None or self.fold_epochs > self.steps_per_fold:
            return
        step = self.fold * self.steps_per_fold + self.fold_epochs - 1
        self.trial.report(self.sign * float(value), step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at fold {self.fold}, epoch {self.fold_epochs}")
