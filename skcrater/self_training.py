"""Self-training: pseudo-label confident unlabelled samples and refit."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, InvalidParameterError, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    _routing_enabled,
    get_routing_for_object,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_method_params,
    _estimator_has,
    _num_samples,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    has_fit_parameter,
)

from ._images import check_images, check_same_range, pixel_range
from ._inner import walk

__all__ = ["SelfTrainingWrapper", "UNLABELED"]

#: The label that marks an unlabelled sample in ``y`` (scikit-learn's convention).
UNLABELED = -1

#: The fit parameter through which the wrapper restricts a base estimator's
#: internal validation split to human-labelled samples.
_VALIDATION_PARAM = "validation_candidates"

_SPARSE_FORMATS = ["csr", "csc", "lil", "dok"]


class SelfTrainingWrapper(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Self-training meta-classifier for images or tabular data.

    Fits ``estimator`` on the labelled samples, predicts the unlabelled ones,
    adds the confident predictions as pseudo-labels and fits again on the
    union, for up to ``max_iter`` rounds. It does what
    :class:`sklearn.semi_supervised.SelfTrainingClassifier` does and adds:

    * per-class thresholds (``threshold={0: 0.75}`` pseudo-labels class 0
      only) and a per-class cap on the pseudo-labels added each round;
    * N-dimensional inputs (image tiles ``(n, h, w[, 1])``) as well as 2-D;
    * unlabelled samples given either as ``y == -1`` or as ``X_unlabeled``;
    * a fresh estimator every round (the published recipe) or one that goes
      on training from the previous round's weights (``retrain="continue"``);
    * honest validation: when the base estimator (or the final step of a
      :class:`~sklearn.pipeline.Pipeline`) accepts a
      ``validation_candidates`` fit parameter, as
      :class:`~skcrater.CraterCNNClassifier` does, it is passed the mask of
      human-labelled rows, so that the best epoch and early stopping are
      never judged on pseudo-labels;
    * a base :class:`~skcrater.CraterCNNClassifier` that trains on
      unlabelled tiles itself (``unlabeled_weight`` or
      ``unlabeled_entropy_weight`` above 0) is given, in every round, the
      samples still unlabelled as ``X_unlabeled``: consistency training on
      what the pseudo-labels have not reached. One that estimates their
      class shares (``unlabeled_prior="em"``) is given all the samples that
      came without a label, pseudo-labelled or not.

    To cross-validate it with unlabelled rows in ``y``, use
    :class:`~skcrater.model_selection.SemiSupervisedKFold`: it keeps every
    unlabelled row out of the test folds.

    Parameters
    ----------
    estimator : estimator object
        A classifier with ``fit`` and ``predict_proba`` (and ``classes_``
        once fitted); it need not inherit scikit-learn's ``ClassifierMixin``.
        ``fit`` refuses one without ``predict_proba`` before any training
        (a meta-estimator that exposes it only once fitted is checked after
        its first fit).
        Every fit works on clones; the final one is ``estimator_``. Its tags
        carry over: around a binary-only classifier such as
        :class:`~skcrater.CraterCNNClassifier`, the wrapper is binary-only
        too (``multi_class=False``).
    threshold : float or dict of {label: float}, default=0.75
        Confidence needed to pseudo-label a sample with ``criterion=
        "threshold"``. A sample is pseudo-labelled with its most probable
        class ``c`` when ``p(c) >= threshold`` (float: the same for every
        class) or ``p(c) >= threshold[c]`` (dict); classes missing from the
        dict are never pseudo-labelled. Values in (0, 1]. With a well
        calibrated estimator, ``threshold={0: 0.75}`` keeps the samples with
        ``p(class 1) <= 0.25`` as class 0. Unlike scikit-learn's
        ``SelfTrainingClassifier`` (strict ``>``), the bound is inclusive;
        the two select the same samples unless a probability equals the
        threshold exactly.
    criterion : {"threshold", "k_best"}, default="threshold"
        ``"threshold"`` adds every sample that passes ``threshold``;
        ``"k_best"`` adds the ``k_best`` most confident samples of each round
        and ignores ``threshold``.
    k_best : int, default=10
        Pseudo-labels added per round with ``criterion="k_best"``.
    max_iter : int or None, default=10
        Maximum number of self-training rounds (0 fits on the labelled
        samples only). None goes on until a round adds nothing or every
        sample is labelled. The published recipe uses 1.
    max_per_class : int, dict of {label: int} or None, default=None
        Most pseudo-labels of one class added in one round (the most
        confident are kept): an int caps every class, a dict the classes it
        names. Use it to keep a confident majority class from swamping the
        training set. None: no cap.
    retrain : {"fresh", "continue"}, default="fresh"
        ``"fresh"`` fits a new clone of ``estimator`` every round (the
        recipe). ``"continue"`` fits the first round's estimator again with
        ``warm_start=True``, so that a network goes on from its current
        weights (cheaper, with fewer epochs). ``"continue"`` needs an
        estimator, or a Pipeline whose final step (through nested
        Pipelines), has a ``warm_start`` parameter, and raises a
        ``ValueError`` otherwise.
    retrain_params : dict or None, default=None
        Parameters set on the estimator for every fit after the first one
        (the fits on pseudo-labelled data), e.g. ``{"epochs": 50}`` to train
        the retrained network for fewer epochs than the first. Keys as in
        ``estimator.set_params``.
    verbose : bool, default=False
        Print the number of pseudo-labels added each round.

    Attributes
    ----------
    estimator_ : estimator object
        The estimator fitted on the final training set.
    classes_ : ndarray of shape (n_classes,)
        Class labels (from ``estimator_``).
    transduction_ : ndarray of shape (n_samples,)
        Labels of the final training set: the given labels, the
        pseudo-labels, and -1 where a sample stayed unlabelled. Rows of
        ``X_unlabeled`` follow those of ``X``.
    labeled_iter_ : ndarray of shape (n_samples,)
        Round in which each sample was labelled: 0 for the given labels, -1
        for samples never labelled.
    n_iter_ : int
        Number of self-training rounds run (fits followed by pseudo-labelling).
    termination_condition_ : {"max_iter", "no_change", "all_labeled"}
        Why self-training stopped.
    pseudo_label_counts_ : ndarray of shape (n_iter_, n_classes)
        Pseudo-labels of each class (columns follow ``classes_``) added in
        each round.
    n_features_in_ : int
        Number of features seen by ``estimator_`` during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen by ``estimator_`` during fit. Defined only
        when ``estimator_`` defines it.

    See Also
    --------
    sklearn.semi_supervised.SelfTrainingClassifier : The scikit-learn peer.
    skcrater.model_selection.SemiSupervisedKFold : Cross-validation that
        keeps unlabelled samples out of the test folds.

    Notes
    -----
    The human-labelled mask reaches a ``validation_candidates`` fit
    parameter of the estimator itself, of the final step of a Pipeline, or,
    with metadata routing enabled, of any consumer that requested it
    (``set_fit_request(validation_candidates=True)``) inside a meta-estimator.

    Like the peer, the estimator is fitted once per round and once more on
    the final training set; when the last round added no pseudo-label, its
    estimator is already fitted on that set and is kept as ``estimator_``.

    Labelled and unlabelled samples (``X_unlabeled`` and the rows of ``X``
    whose label is -1) are checked together before any training: NaN or
    infinity in either is refused, naming the argument (unless the
    estimator's tags allow NaN), and so are unlabelled samples that clearly
    come from another range than the labelled ones, by the rule of
    :class:`~skcrater.CraterCNNClassifier`: one set floats within [0, 1],
    the other integers or floats beyond [0, 1], with largest values 10 times
    apart or more (``fit(X / 255.0, y, X_unlabeled=U_uint8)``), which would
    pseudo-label tiles read on another scale than the model was fitted on.

    Like the peer too, labelled samples of a single class are passed to the
    estimator as they are: a classifier that needs two classes (most do, the
    CNN included) refuses them in its first fit, before any pseudo-labelling;
    one that accepts them pseudo-labels every confident sample with that class.

    ``retrain="continue"`` and the ``validation_candidates`` mask reach
    through Pipelines (whose final step is fitted as it is) but not into a
    meta-estimator, which fits a clone of what it wraps; there, use metadata
    routing for the mask.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skcrater import SelfTrainingWrapper
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> y_semi = y.copy()
    >>> y_semi[50:] = -1
    >>> clf = SelfTrainingWrapper(LogisticRegression(), threshold={0: 0.9, 1: 0.8})
    >>> clf = clf.fit(X, y_semi)
    >>> clf.pseudo_label_counts_.shape[1]
    2
    >>> bool((clf.transduction_[:50] == y[:50]).all())
    True
    """

    _parameter_constraints: dict = {
        # predict_proba is checked in fit: a meta-estimator may expose it only once fitted
        "estimator": [HasMethods(["fit"])],
        "threshold": [Interval(Real, 0.0, 1.0, closed="right"), dict],
        "criterion": [StrOptions({"threshold", "k_best"})],
        "k_best": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left"), None],
        "max_per_class": [Interval(Integral, 0, None, closed="left"), dict, None],
        "retrain": [StrOptions({"fresh", "continue"})],
        "retrain_params": [dict, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator,
        threshold=0.75,
        criterion="threshold",
        k_best=10,
        max_iter=10,
        max_per_class=None,
        retrain="fresh",
        retrain_params=None,
        verbose=False,
    ):
        self.estimator = estimator
        self.threshold = threshold
        self.criterion = criterion
        self.k_best = k_best
        self.max_iter = max_iter
        self.max_per_class = max_per_class
        self.retrain = retrain
        self.retrain_params = retrain_params
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(
        # the base estimator is validated when it is fitted
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, X_unlabeled=None, **fit_params):
        """Self-train ``estimator`` on labelled and unlabelled samples.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or (n_samples, h, w[, 1])
            Training samples: 2-D features or image tiles.
        y : array-like of shape (n_samples,)
            Labels; -1 marks an unlabelled sample (with string labels, use
            an object array or ``X_unlabeled``). Other negative numbers, NaN
            and None are refused rather than taken for classes. At least one
            sample must be labelled; whether one labelled class is enough is
            the estimator's to say (see Notes).
        X_unlabeled : array-like of shape (n_unlabeled, ...), default=None
            More unlabelled samples, shaped like the rows of ``X`` (for
            images: the same image shape, flat or not) and in the same range
            (see Notes). Appended after ``X`` in ``transduction_`` and
            ``labeled_iter_``.
        **fit_params : dict
            Metadata routed to ``estimator.fit`` (only with
            ``sklearn.set_config(enable_metadata_routing=True)``); arrays of
            one value per sample are indexed like the training rows of each
            fit (the rows of ``X``, then those of ``X_unlabeled``).

        Returns
        -------
        self : SelfTrainingWrapper
            The fitted estimator.

        Raises
        ------
        ValueError
            Before any training, for invalid labels or parameters, for NaN
            or infinity in ``X`` or ``X_unlabeled`` (unless the estimator's
            tags allow NaN), and for unlabelled samples that clearly come
            from another range than the labelled ones (see Notes).
        TypeError
            Before any training, when ``X_unlabeled`` is boolean and ``X`` is
            not (or the reverse).
        InvalidParameterError
            Before any training (a ``ValueError`` and a ``TypeError``), when
            ``estimator`` has no ``predict_proba``.
        """
        _raise_for_params(fit_params, self, "fit")
        self._check_predict_proba()
        X, y = self._validate_training_data(X, y, X_unlabeled)
        classes = np.unique(y[y != UNLABELED])
        thresholds = _per_class(self.threshold, classes, "threshold", default=np.inf)
        caps = _per_class(self.max_per_class, classes, "max_per_class", default=np.inf)
        routed = process_routing(self, "fit", **fit_params).estimator.fit if fit_params else {}
        self._check_retrain()

        has_label = y != UNLABELED
        self.transduction_ = y.copy()
        self.labeled_iter_ = np.where(has_label, 0, -1)
        counts, self.n_iter_ = [], 0
        estimator, added = None, None
        while not has_label.all() and (self.max_iter is None or self.n_iter_ < self.max_iter):
            self.n_iter_ += 1
            estimator = self._fit_round(estimator, X, has_label, routed)
            _check_classes(estimator, classes, type(self).__name__)
            self._check_predict_proba(estimator)
            added, per_class = self._select(estimator, X, has_label, thresholds, caps)
            self.transduction_[added] = estimator.classes_[per_class.argmax(axis=1)]
            has_label[added] = True
            self.labeled_iter_[added] = self.n_iter_
            counts.append(per_class.sum(axis=0))
            if self.verbose:
                print(f"End of iteration {self.n_iter_}, added {added.size} new labels.")
            if added.size == 0:
                break

        # the peer's precedence: all_labeled > max_iter > no_change
        if has_label.all():
            self.termination_condition_ = "all_labeled"
        elif self.n_iter_ == self.max_iter:
            self.termination_condition_ = "max_iter"
        else:
            self.termination_condition_ = "no_change"
        if added is None or added.size:
            estimator = self._fit_round(estimator, X, has_label, routed)
        self.estimator_ = estimator
        self.classes_ = estimator.classes_
        self.pseudo_label_counts_ = np.array(counts, dtype=np.intp).reshape(-1, classes.size)
        return self

    def _check_predict_proba(self, estimator=None):
        """Refuse an estimator that cannot give the probabilities self-training ranks by.

        Called on ``self.estimator`` before any training, and on the first
        fitted estimator when the unfitted one could not tell (a search that
        exposes ``predict_proba`` only once fitted, as ``OptunaSearch`` does).
        """
        estimator = self.estimator if estimator is None else estimator
        try:
            estimator.predict_proba  # noqa: B018 - looked up for its AttributeError
        except AttributeError as exc:
            if estimator is self.estimator and _known_once_fitted(exc):
                return
            kind = type(estimator).__name__
            raise InvalidParameterError(
                f"{type(self).__name__} ranks unlabelled samples by the estimator's "
                f"predict_proba, but {kind} has none (with these parameters). Use a "
                f"classifier with predict_proba, e.g. CalibratedClassifierCV({kind}(...)) "
                "or SVC(probability=True)."
            ) from None

    def _validate_training_data(self, X, y, X_unlabeled):
        name = type(self).__name__
        X = _check_X(X, name)
        if y is None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None.")
        y = _check_y(y)
        check_consistent_length(X, y)
        U = None if X_unlabeled is None else _check_unlabeled(X, X_unlabeled, name)
        self._check_samples_together(X, y, U)
        if U is not None:
            X = _stack(X, U)
            marker = np.full(
                _num_samples(U), UNLABELED, dtype=object if y.dtype.kind in "US" else y.dtype
            )
            y = np.concatenate([y.astype(marker.dtype, copy=False), marker])
        labelled = y[y != UNLABELED]
        if labelled.size == 0:
            raise ValueError(
                f"{name} needs labelled samples, but every label of y is {UNLABELED} (unlabelled)."
            )
        if labelled.size == y.size:
            warnings.warn("y contains no unlabeled samples", UserWarning, stacklevel=3)
        if self.criterion == "k_best" and self.k_best > y.size - labelled.size:
            warnings.warn(
                "k_best is larger than the amount of unlabeled samples. All unlabeled "
                "samples will be labeled in the first iteration",
                UserWarning,
                stacklevel=3,
            )
        return X, y

    def _check_samples_together(self, X, y, U):
        """Check labelled and unlabelled samples together, before any training.

        The estimator checks the labelled samples in its first fit, but the
        unlabelled ones only when it predicts them, after a whole round, and
        in a message about ``X``; so NaN, a boolean/numeric mix and samples
        of another range are looked for here, named by their argument.
        """
        name = type(self).__name__
        if not get_tags(self.estimator).input_tags.allow_nan:
            _check_finite(X, "X", name)
            if U is not None:
                _check_finite(U, "X_unlabeled", name)
        labelled = pixel_range(X, rows=y != UNLABELED) if _is_numeric_array(X) else None
        if labelled is None:  # no labelled sample: refused with its own message later
            return
        if U is not None and _is_numeric_array(U):
            _check_same_kind(X, U)
            check_same_range(labelled, pixel_range(U), input_name="X_unlabeled", **_RANGE_TEXT)
        in_x = pixel_range(X, rows=y == UNLABELED)
        if in_x is not None:
            check_same_range(labelled, in_x, input_name="X (its rows with y == -1)", **_RANGE_TEXT)

    def _check_retrain(self):
        if self.retrain == "continue" and _warm_start_key(self.estimator) is None:
            raise ValueError(
                f"retrain='continue' needs an estimator with a warm_start parameter (or a "
                f"Pipeline whose final step has one); {type(self.estimator).__name__} has "
                "none. Use retrain='fresh'."
            )

    def _fit_round(self, previous, X, has_label, routed):
        """Fit an estimator on the labelled rows; reuse ``previous`` when continuing."""
        if previous is None or self.retrain == "fresh":
            estimator = clone(self.estimator)
        else:
            estimator = previous
        if previous is not None:
            params = dict(self.retrain_params or {})
            if self.retrain == "continue":
                params[_warm_start_key(estimator)] = True
            estimator.set_params(**params)
        rows = np.flatnonzero(has_label)
        kwargs = _check_method_params(X, routed, rows)
        kwargs.update(_validation_kwargs(estimator, self.labeled_iter_[rows] == 0))
        kwargs.update(_pool_kwargs(estimator, X, has_label, self.labeled_iter_ != 0))
        return estimator.fit(_safe_indexing(X, rows), self.transduction_[rows], **kwargs)

    def _select(self, estimator, X, has_label, thresholds, caps):
        """Return (rows to pseudo-label, one-hot matrix of their classes)."""
        candidates = np.flatnonzero(~has_label)
        proba = estimator.predict_proba(_safe_indexing(X, candidates))
        best = proba.argmax(axis=1)
        confidence = proba[np.arange(best.size), best]
        if self.criterion == "threshold":
            passed = confidence >= thresholds[best]
        else:
            passed = np.ones(best.size, dtype=bool)
        # most confident first, then at most caps[c] of each class c, then k_best of all
        ranked = np.argsort(-confidence, kind="stable")
        ranked = ranked[passed[ranked]]
        ranked = ranked[_rank_within_groups(best[ranked]) < caps[best[ranked]]]
        if self.criterion == "k_best":
            ranked = ranked[: self.k_best]
        chosen = np.sort(ranked)
        one_hot = np.zeros((chosen.size, thresholds.size), dtype=np.intp)
        one_hot[np.arange(chosen.size), best[chosen]] = 1
        return candidates[chosen], one_hot

    # ------------------------------------------------------------- delegate
    def _delegate(self, method, X, *args, **params):
        check_is_fitted(self)
        _raise_for_params(params, self, method)
        routed = process_routing(self, method, **params).estimator[method] if params else {}
        return getattr(self.estimator_, method)(X, *args, **routed)

    @available_if(_estimator_has("predict"))
    def predict(self, X, **params):
        """Predict classes with ``estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples, shaped as in ``fit``.
        **params : dict
            Metadata routed to ``estimator_.predict`` (metadata routing only).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self._delegate("predict", X, **params)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X, **params):
        """Class probabilities from ``estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples, shaped as in ``fit``.
        **params : dict
            Metadata routed to ``estimator_.predict_proba`` (metadata routing only).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return self._delegate("predict_proba", X, **params)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X, **params):
        """Log class probabilities from ``estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples, shaped as in ``fit``.
        **params : dict
            Metadata routed to ``estimator_.predict_log_proba`` (metadata routing only).

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return self._delegate("predict_log_proba", X, **params)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X, **params):
        """Decision function of ``estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples, shaped as in ``fit``.
        **params : dict
            Metadata routed to ``estimator_.decision_function`` (metadata routing only).

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        return self._delegate("decision_function", X, **params)

    @available_if(_estimator_has("score"))
    def score(self, X, y, **params):
        """Score of ``estimator_`` on labelled data (accuracy for classifiers).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples, shaped as in ``fit``.
        y : array-like of shape (n_samples,)
            True labels (no -1).
        **params : dict
            Metadata routed to ``estimator_.score`` (metadata routing only).

        Returns
        -------
        score : float
        """
        return self._delegate("score", X, y, **params)

    @property
    def n_features_in_(self):
        """Number of features seen by ``estimator_`` during fit."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.n_features_in_

    @property
    def feature_names_in_(self):
        """Names of the features seen by ``estimator_`` during fit."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.feature_names_in_

    def get_metadata_routing(self):
        """Get the metadata routing of this object.

        Returns
        -------
        routing : MetadataRouter
            Routes ``fit`` metadata to the estimator's ``fit`` and each
            prediction method's metadata to the same method of
            ``estimator_``.
        """
        mapping = MethodMapping().add(caller="fit", callee="fit")
        for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
            mapping.add(caller=method, callee=method)
        mapping.add(caller="score", callee="score")
        return MetadataRouter(owner=self).add(estimator=self.estimator, method_mapping=mapping)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.input_tags.three_d_array = inner.input_tags.three_d_array
        tags.non_deterministic = inner.non_deterministic
        # None for a duck-typed classifier (fit, predict_proba, classes_) that does not
        # declare itself one: keep the defaults, as scikit-learn's peer does
        if inner.classifier_tags is not None:
            tags.classifier_tags.poor_score = inner.classifier_tags.poor_score
            tags.classifier_tags.multi_class = inner.classifier_tags.multi_class
        return tags


# ------------------------------------------------------------------ helpers
#: How the messages of the labelled/unlabelled range check name the two sides.
_RANGE_TEXT = dict(
    reference_name="the labelled samples of X",
    advice="Give labelled and unlabelled samples in the same range (e.g. both uint8 "
    "0..255, or both floats in [0, 1]).",
)


def _check_X(X, name, input_name="X"):
    """Make ``X`` row-indexable, keeping DataFrames and the dtype for the estimator."""
    if hasattr(X, "iloc"):
        return X
    return check_array(
        X,
        accept_sparse=_SPARSE_FORMATS,
        dtype=None,
        ensure_all_finite=False,
        allow_nd=True,
        input_name=input_name,
        estimator=name,
    )


def _check_finite(X, input_name, name):
    """Refuse NaN and infinity in ``X``, naming ``input_name`` (an array is read, not copied)."""
    check_array(
        X,
        accept_sparse=_SPARSE_FORMATS,
        dtype=None,
        ensure_all_finite=True,
        allow_nd=True,
        input_name=input_name,
        estimator=name,
    )


def _is_numeric_array(X):
    return isinstance(X, np.ndarray) and X.dtype.kind in "biuf"


def _check_same_kind(X, U):
    # a boolean array stacked with a numeric one becomes numbers (True -> 1) silently
    if (X.dtype.kind == "b") != (U.dtype.kind == "b"):
        raise TypeError(
            f"X_unlabeled has dtype {U.dtype} but X has dtype {X.dtype}: give labelled and "
            "unlabelled samples of the same kind (both boolean, or both numeric)."
        )


def _known_once_fitted(exc):
    """Whether an AttributeError only says that the estimator is not fitted yet."""
    while exc is not None:
        if isinstance(exc, NotFittedError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _check_y(y):
    y = column_or_1d(y, warn=True)
    if y.dtype.kind in "US" and (y == str(UNLABELED)).any():
        raise ValueError(
            "y has dtype string and holds '-1': the unlabelled marker is the integer -1; use "
            "an object array with -1 for the unlabelled samples, or pass them as X_unlabeled."
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(
            "y contains NaN or infinity: mark unlabelled samples with -1 (or pass them as "
            "X_unlabeled), not NaN."
        )
    if y.dtype.kind == "O" and any(v is None or (isinstance(v, float) and v != v) for v in y):
        raise ValueError(
            "y contains None or NaN: mark unlabelled samples with -1 (or pass them as X_unlabeled)."
        )
    check_classification_targets(y[y != UNLABELED])
    if y.dtype.kind in "if" and not np.isin(y[y < 0], UNLABELED).all():
        others = np.unique(y[(y < 0) & (y != UNLABELED)])
        raise ValueError(
            f"y contains the negative label(s) {others.tolist()[:5]}, but only {UNLABELED} "
            "marks unlabelled samples; mark them with -1, or encode negative classes as "
            "non-negative labels (e.g. with sklearn.preprocessing.LabelEncoder)."
        )
    return y


def _check_unlabeled(X, X_unlabeled, name):
    """Validate ``X_unlabeled`` against ``X`` and return it shaped like ``X``'s rows."""
    if hasattr(X, "iloc"):
        if not hasattr(X_unlabeled, "iloc") or list(X_unlabeled.columns) != list(X.columns):
            raise ValueError("X_unlabeled must be a DataFrame with the same columns as X.")
        return X_unlabeled
    U = _check_X(X_unlabeled, name, input_name="X_unlabeled")
    if U.shape[1:] == X.shape[1:]:
        return U
    if X.ndim > 2 or U.ndim > 2:
        # images: any accepted layout (flat, (h, w), (h, w, 1)) of the same image shape
        try:
            _, image_shape = check_images(X, estimator_name=name)
        except ValueError as exc:
            raise ValueError(
                f"X_unlabeled has samples of shape {U.shape[1:]}, but X has samples of "
                f"shape {X.shape[1:]}."
            ) from exc
        check_images(U, image_shape=image_shape, estimator_name=name, input_name="X_unlabeled")
        return U.reshape(U.shape[0], *X.shape[1:])
    raise ValueError(
        f"X_unlabeled has {U.shape[1]} features, but X has {X.shape[1]} features; they must match."
    )


def _stack(X, U):
    if hasattr(X, "iloc"):
        import pandas as pd

        return pd.concat([X, U], ignore_index=True)
    if sp.issparse(X):
        return sp.vstack([X, U], format="csr")
    return np.concatenate([X, U])


def _per_class(value, classes, name, default):
    """Map a scalar or ``{label: value}`` parameter to an array aligned with ``classes``."""
    if value is None:
        return np.full(classes.size, default, dtype=float)
    if not isinstance(value, dict):
        return np.full(classes.size, value, dtype=float)
    unknown = [key for key in value if key not in set(classes.tolist())]
    if unknown:
        raise ValueError(
            f"{name} names class(es) {unknown} that are not among the labelled classes "
            f"{classes.tolist()}."
        )
    out = np.full(classes.size, default, dtype=float)
    for index, label in enumerate(classes.tolist()):
        if label in value:
            out[index] = _check_class_value(value[label], name, label)
    return out


def _check_class_value(value, name, label):
    if name == "threshold":
        valid = isinstance(value, Real) and not isinstance(value, bool) and 0 < value <= 1
        expected = "a float in (0, 1]"
    else:
        valid = isinstance(value, Integral) and not isinstance(value, bool) and value >= 0
        expected = "an int >= 0"
    if not valid:
        raise ValueError(f"{name}[{label!r}] must be {expected}, got {value!r}.")
    return float(value)


def _check_classes(estimator, classes, name):
    if not np.array_equal(np.asarray(estimator.classes_), classes):
        raise ValueError(
            f"The estimator's classes_ {np.asarray(estimator.classes_).tolist()} differ from "
            f"the labelled classes {classes.tolist()}; {name} needs classes_ == "
            "np.unique(y) of the fitted labels."
        )


def _rank_within_groups(labels):
    """0-based position of each element among the earlier elements of its label."""
    ranks = np.empty(labels.size, dtype=np.intp)
    for label in np.unique(labels):
        where = labels == label
        ranks[where] = np.arange(where.sum())
    return ranks


def _final_estimator(estimator):
    """``(set_params prefix, estimator)`` at the end of a chain of Pipeline final steps.

    The walk goes through Pipelines only: a Pipeline fits its final step itself,
    whereas a meta-estimator fits a clone of the estimator it wraps, so that a
    ``warm_start`` or a fit argument given to that inner estimator through it would
    not reach the fit (with metadata routing, the meta-estimator routes fit
    arguments itself). ``(None, None)`` for a Pipeline ending in ``"passthrough"``.
    """
    for prefix, inner in walk(estimator):
        if not isinstance(inner, Pipeline):
            return prefix, inner
    return None, None


def _warm_start_key(estimator):
    """Name of the ``set_params`` key of the final estimator's ``warm_start``, or None."""
    prefix, final = _final_estimator(estimator)
    if final is None or "warm_start" not in final.get_params(deep=False):
        return None
    return f"{prefix}warm_start"


def _pool_kwargs(estimator, X, has_label, unlabelled):
    """``X_unlabeled`` for an estimator that trains on unlabelled samples itself.

    A :class:`~skcrater.CraterCNNClassifier` with ``unlabeled_weight`` or
    ``unlabeled_entropy_weight`` above 0 (an estimator whose ``fit`` takes
    ``X_unlabeled`` and who has either parameter) gets the samples still
    unlabelled in each round. With ``unlabeled_prior="em"`` it gets every
    sample that came without a label (``unlabelled``), pseudo-labelled or
    not: their class shares are what it estimates. Any other estimator gets
    nothing.
    """
    if not has_fit_parameter(estimator, "X_unlabeled"):
        return {}
    params = estimator.get_params(deep=False)
    if isinstance(params.get("unlabeled_prior"), str):
        rows = unlabelled
    elif params.get("unlabeled_weight") or params.get("unlabeled_entropy_weight"):
        rows = ~has_label
    else:
        return {}
    if not rows.any():
        return {}
    return {"X_unlabeled": _safe_indexing(X, np.flatnonzero(rows))}


def _validation_kwargs(estimator, mask):
    """Fit kwargs that restrict the estimator's validation split to ``mask``'s rows.

    An estimator whose ``fit`` accepts ``validation_candidates`` gets it. A
    Pipeline whose final step accepts it gets ``step__validation_candidates``
    without metadata routing. With routing enabled, any meta-estimator that
    routes ``validation_candidates`` (its consumer requested it) gets it, and
    a Pipeline whose final step accepts it but did not request it is an
    error, so that the mask is never silently dropped.
    """
    if has_fit_parameter(estimator, _VALIDATION_PARAM):
        return {_VALIDATION_PARAM: mask}
    if _routing_enabled() and get_routing_for_object(estimator).consumes(
        "fit", [_VALIDATION_PARAM]
    ):
        return {_VALIDATION_PARAM: mask}
    prefix, final = _final_estimator(estimator)
    if final is None or final is estimator or not has_fit_parameter(final, _VALIDATION_PARAM):
        return {}
    if not _routing_enabled():
        return {f"{prefix}{_VALIDATION_PARAM}": mask}
    raise ValueError(
        f"With metadata routing enabled, the final step of the Pipeline must request "
        f"{_VALIDATION_PARAM!r} so that its validation split uses human-labelled samples "
        f"only: call .set_fit_request({_VALIDATION_PARAM}=True) on it."
    )
