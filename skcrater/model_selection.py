"""Cross-validation with unlabelled samples (``y == -1``)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import check_cv
from sklearn.model_selection._split import BaseCrossValidator, GroupsConsumerMixin
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_consistent_length, column_or_1d

from .self_training import UNLABELED

__all__ = ["SemiSupervisedKFold"]


class SemiSupervisedKFold(GroupsConsumerMixin, BaseCrossValidator):
    """Cross-validator that tests on labelled samples only.

    The labelled samples (``y != -1``) are split by ``cv``; every unlabelled
    sample (``y == -1``) is added to every training set and never to a test
    set. A semi-supervised estimator such as
    :class:`~skcrater.SelfTrainingWrapper` is thus trained with all the
    unlabelled data and scored on held-out human labels only, which makes
    ``cross_val_score`` and ``GridSearchCV`` honest with ``y`` holding -1.

    Parameters
    ----------
    cv : int, cross-validation generator or iterable, default=5
        How the labelled samples are split. An int ``k`` is
        ``StratifiedKFold(k)`` for classification labels (``KFold(k)``
        otherwise); any scikit-learn splitter works, group splitters such as
        ``StratifiedGroupKFold`` included (``groups`` is passed through,
        restricted to the labelled samples).

    See Also
    --------
    skcrater.SelfTrainingWrapper : The semi-supervised classifier to validate.

    Notes
    -----
    Unlabelled samples that share a group with a test sample are still
    trained on (without their label); groups only separate labelled samples.

    Examples
    --------
    >>> import numpy as np
    >>> from skcrater.model_selection import SemiSupervisedKFold
    >>> y = np.array([0, 1, -1, 0, 1, -1, 0, 1])
    >>> for train, test in SemiSupervisedKFold(2).split(np.zeros((8, 1)), y):
    ...     print(train, test)
    [2 4 5 6 7] [0 1 3]
    [0 1 2 3 5] [4 6 7]
    """

    def __init__(self, cv=5):
        self.cv = cv

    def _labelled(self, X, y, groups):
        if y is None:
            raise ValueError(
                "SemiSupervisedKFold needs y to find the unlabelled samples (y == -1)."
            )
        y = column_or_1d(y)
        if X is not None:
            check_consistent_length(X, y)
        if groups is not None:
            groups = column_or_1d(groups)
            check_consistent_length(y, groups)
        labelled = np.flatnonzero(y != UNLABELED)
        if labelled.size == 0:
            raise ValueError("SemiSupervisedKFold needs labelled samples; every label is -1.")
        X_l = None if X is None else _safe_indexing(X, labelled)
        g_l = None if groups is None else groups[labelled]
        splitter = check_cv(self.cv, y[labelled], classifier=True)
        return splitter, labelled, X_l, y[labelled], g_l

    def split(self, X, y, groups=None):
        """Generate indices to split data into training and test set.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples (only their number, and whatever ``cv`` reads, is used).
        y : array-like of shape (n_samples,)
            Labels; -1 marks an unlabelled sample.
        groups : array-like of shape (n_samples,), default=None
            Group labels, for group splitters.

        Yields
        ------
        train : ndarray
            Training indices: that split's labelled training samples and
            every unlabelled sample, sorted.
        test : ndarray
            Test indices: labelled samples only, sorted.
        """
        splitter, labelled, X_l, y_l, g_l = self._labelled(X, y, groups)
        unlabelled = np.flatnonzero(column_or_1d(y) == UNLABELED)
        if X_l is None:
            X_l = np.zeros((labelled.size, 1))
        for train, test in splitter.split(X_l, y_l, g_l):
            yield np.sort(np.concatenate([labelled[train], unlabelled])), np.sort(labelled[test])

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits.

        Parameters
        ----------
        X, y, groups : array-like or None
            As in :meth:`split`; needed only when ``cv`` needs them to count
            its splits (e.g. ``LeaveOneGroupOut``).

        Returns
        -------
        n_splits : int
        """
        if y is None:
            return check_cv(self.cv, classifier=True).get_n_splits(X, y, groups)
        splitter, _, X_l, y_l, g_l = self._labelled(X, y, groups)
        return splitter.get_n_splits(X_l, y_l, g_l)
