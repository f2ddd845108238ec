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
    print_epochs : bool, default=False
        Print one line per epoch: trial, fold, epoch and the monitored value.
    n_folds : int or None, default=None
        Folds per trial, for those lines.

    Attributes
    ----------
    total_epochs : int
        Epochs trained in all folds so far, reported or not.
    """

    def __init__(self, trial, monitor, steps_per_fold, *, print_epochs=False, n_folds=None):
        super().__init__()
        self.print_epochs = print_epochs
        self.n_folds = n_folds
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
        if self.print_epochs:
            self._print(value)
        if value is None or self.fold_epochs > self.steps_per_fold:
            return
        step = self.fold * self.steps_per_fold + self.fold_epochs - 1
        self.trial.report(self.sign * float(value), step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at fold {self.fold}, epoch {self.fold_epochs}")

    def _print(self, value):
        folds = "" if self.n_folds is None else f"/{self.n_folds}"
        shown = "" if value is None else f": {self.monitor} {float(value):.4f}"
        print(
            f"  trial {self.trial.number}, fold {self.fold + 1}{folds}, "
            f"epoch {self.fold_epochs}/{self.steps_per_fold}{shown}",
            flush=True,
        )
