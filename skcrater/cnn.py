"""CraterCNNClassifier: a small Keras CNN as a scikit-learn classifier."""

from __future__ import annotations

import functools
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, compute_sample_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from ._images import (
    PREPROCESSING_MODES,
    check_images,
    check_pixels,
    infer_input_scale,
    scale_images,
    to_images,
)
from ._network import AUGMENTATIONS, LR_SCHEDULES, TRANSPOSING, check_geometry

__all__ = ["CraterCNNClassifier"]

_NAME = "CraterCNNClassifier"

#: Training tiles on which a fitted network is checked for a constant output.
_CONSTANT_CHECK_TILES = 256


class CraterCNNClassifier(ClassifierMixin, BaseEstimator):
    """Convolutional network classifier for small grayscale image tiles.

    A scikit-learn classifier around a Keras network trained through
    `scikeras <https://adriangb.com/scikeras/>`_. The default network and
    learning rate are the published crater recipe: Conv2D(16, 3x3, relu) ->
    MaxPool(3) -> Conv2D(32, 3x3, relu) -> MaxPool(2) -> Flatten -> Dense(8,
    relu) -> Dropout(0.5) -> Dense(1, sigmoid), Adam at 3e-4, binary
    cross-entropy, and the weights of the epoch with the lowest validation
    loss are kept.

    TensorFlow is imported on the first ``fit``, not when skcrater is.

    Parameters
    ----------
    conv_filters : tuple of int, default=(16, 32)
        Filters of each convolution block (its length is the depth).
    kernel_size : int, default=3
        Side of the square convolution kernels.
    pool_sizes : tuple of int, default=(3, 2)
        Max-pooling size after each convolution block; one per block.
    dense_units : tuple of int, default=(8,)
        Units of each hidden dense layer; ``()`` for none.
    dropout : float, default=0.5
        Dropout rate after each hidden dense layer.
    batch_norm : bool, default=False
        Batch normalisation after every convolution.
    padding : {"valid", "same"}, default="valid"
        Padding of the convolutions.
    preprocessing : {"scale", "standardize"}, default="scale"
        ``"scale"`` maps grey levels to [0, 1] (0..255 integers or floats
        outside [0, 1] are divided by 255, floats in [0, 1] are kept; the
        choice is made in ``fit`` and reused in ``predict``).
        ``"standardize"`` gives each tile zero mean and unit variance, which
        makes the model blind to exposure and contrast.
    learning_rate : float, default=3e-4
        Adam's learning rate.
    epochs : int, default=75
        Maximum number of training epochs.
    batch_size : int, default=32
        Mini-batch size.
    validation_fraction : float, default=0.2
        Fraction of the training tiles held out (stratified) to choose the
        best epoch: the weights with the lowest validation loss are restored
        after training. ``0`` trains on every tile and keeps the last epoch.
    patience : int or None, default=None
        Stop when the validation loss has not improved for this many epochs.
        None trains all ``epochs``. Needs ``validation_fraction > 0``.
    threshold : float, default=0.5
        Decision threshold on the probability of ``classes_[1]`` used by
        :meth:`predict`; :meth:`predict_proba` does not depend on it.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn.
    warm_start : bool, default=False
        When True and the estimator is already fitted, ``fit`` goes on
        training the current network instead of starting afresh.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the weight initialisation, dropout and
        shuffling, and makes TensorFlow's ops deterministic during ``fit``:
        the same seed gives the same ``predict_proba`` on the same machine.
    verbose : int, default=0
        Keras' training output: 0 silent, 1 progress bar, 2 one line per
        epoch.
    augment : {"flip_lr", "flip_ud", "rot180", "flips", "rot90", "dihedral"} or None, \
default=None
        Data augmentation during training only: in every epoch each training
        tile is replaced by a random one of its images under the named
        symmetries (left-right or up-down mirror, half turn, all of them,
        quarter turns, or all eight symmetries of the square; the last two
        need square tiles). Validation tiles and :meth:`predict_proba` see
        the tiles unchanged. Mirrors and rotations move shadows as another
        sun direction would; see ``benchmarks/README.md`` for what they do on
        real tiles.
    max_shift : int, default=0
        Data augmentation during training only: every epoch each training
        tile is translated by a random whole number of pixels, at most
        ``max_shift`` along each axis (its borders mirrored). Unlike mirrors
        and rotations, a shift keeps the direction of the light. It must be
        smaller than the tile's sides.
    lr_schedule : {"cosine", "plateau"} or None, default=None
        ``"cosine"`` decays the learning rate along a half cosine from
        ``learning_rate`` to 1% of it over ``epochs`` epochs; ``"plateau"``
        halves it whenever the validation loss stalls for ``max(2, patience
        // 3)`` epochs (3 without ``patience``; needs a validation split).
        None keeps it constant.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two class labels; ``classes_[1]`` is the positive class.
    n_features_in_ : int
        Pixels per image (``h * w``).
    image_shape_ : tuple of int
        ``(h, w)`` of the training images; ``predict`` requires the same.
    input_scale_ : float
        Grey value mapped to 1 by ``preprocessing="scale"``.
    keras_classifier_ : scikeras.wrappers.KerasClassifier
        The fitted scikeras estimator that holds the network.
    history_ : dict of str to list of float
        Per-epoch training record (``loss``, ``accuracy`` and, with a
        validation split, ``val_loss``, ``val_accuracy``).
    best_epoch_ : int
        The (1-based) epoch whose weights were kept.
    n_epochs_ : int
        Epochs run in the last ``fit`` (fewer than ``epochs`` after an early
        stop).

    See Also
    --------
    skcrater.SelfTrainingWrapper : Pseudo-labels unlabelled tiles with it.

    Examples
    --------
    >>> from skcrater import CraterCNNClassifier
    >>> from skcrater.datasets import make_craters
    >>> X, y = make_craters(n_samples=60, image_size=16, random_state=0)
    >>> clf = CraterCNNClassifier(conv_filters=(4,), pool_sizes=(2,), epochs=2,
    ...                           random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:3]).shape
    (3, 2)
    >>> clf.image_shape_
    (16, 16)
    """

    _parameter_constraints: dict = {
        "conv_filters": ["array-like"],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "pool_sizes": ["array-like"],
        "dense_units": ["array-like"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "padding": [StrOptions({"valid", "same"})],
        "preprocessing": [StrOptions(set(PREPROCESSING_MODES))],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "threshold": [Interval(Real, 0, 1, closed="both")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "augment": [StrOptions(set(AUGMENTATIONS)), None],
        "lr_schedule": [StrOptions(set(LR_SCHEDULES)), None],
        "max_shift": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        conv_filters=(16, 32),
        kernel_size=3,
        pool_sizes=(3, 2),
        dense_units=(8,),
        dropout=0.5,
        batch_norm=False,
        padding="valid",
        preprocessing="scale",
        learning_rate=3e-4,
        epochs=75,
        batch_size=32,
        validation_fraction=0.2,
        patience=None,
        threshold=0.5,
        class_weight=None,
        warm_start=False,
        random_state=None,
        verbose=0,
        augment=None,
        lr_schedule=None,
        max_shift=0,
    ):
        self.conv_filters = conv_filters
        self.kernel_size = kernel_size
        self.pool_sizes = pool_sizes
        self.dense_units = dense_units
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.padding = padding
        self.preprocessing = preprocessing
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.threshold = threshold
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.augment = augment
        self.lr_schedule = lr_schedule
        self.max_shift = max_shift

    @classmethod
    def recommended(cls, **params):
        """skcrater's recommended configuration, unfitted.

        ``CraterCNNClassifier()`` keeps the published recipe's network and
        training. This preset standardises each tile (blind to exposure and
        contrast) and uses three convolutions of 16, 64 and 64 filters, with
        max-pooling by 3 and 2 after the first two (dense 32, dropout 0.3). It
        mirrors training tiles up-down and shifts them by up to 4 pixels,
        trains at learning rate 1e-3 with batch size 64, halves the rate when
        the validation loss stalls and stops after 12 epochs without
        improvement. Nothing in it depends on the tile size, but tiles must be
        at least 26 pixels a side; for smaller ones, override ``conv_filters``
        and ``pool_sizes`` (e.g. ``conv_filters=(16, 64), pool_sizes=(3, 2)``,
        from 14 pixels).

        In 2 x 5-fold spatially grouped cross-validation on the real HRSC48
        tiles it reached macro-F1 0.914 +- 0.016 against the recipe's 0.884 +-
        0.016 (better on all 10 folds), and trained on all the data in 0.44
        to 0.49 of the recipe's wall time (two runs); see
        ``benchmarks/README.md`` for the ablations behind each choice.

        Parameters
        ----------
        **params
            Override any parameter of the preset (e.g. ``random_state``).

        Returns
        -------
        estimator : CraterCNNClassifier
            A new, unfitted estimator.

        Examples
        --------
        >>> from skcrater import CraterCNNClassifier
        >>> clf = CraterCNNClassifier.recommended(random_state=0)
        >>> clf.preprocessing, clf.batch_size
        ('standardize', 64)
        """
        return cls(**{**_RECOMMENDED, **params})

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X,
        y,
        sample_weight=None,
        *,
        validation_candidates=None,
        validation_data=None,
        callbacks=None,
    ):
        """Train the network on labelled tiles.

        Parameters
        ----------
        X : array-like of shape (n_samples, side*side), (n_samples, h, w) or (n_samples, h, w, 1)
            Grayscale tiles (uint8 0..255 or float).
        y : array-like of shape (n_samples,)
            Labels, exactly two distinct values.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-tile weights in the loss (multiplied by ``class_weight``).
        validation_candidates : array-like of bool of shape (n_samples,), default=None
            Tiles from which the validation split may be drawn (default:
            all). :class:`~skcrater.SelfTrainingWrapper` passes its
            human-labelled tiles here, so that the best epoch is never chosen
            on pseudo-labels. Tiles that are not candidates are always
            trained on.
        validation_data : tuple (X_val, y_val), default=None
            A fixed validation set used instead of the internal split.
        callbacks : list of keras.callbacks.Callback, default=None
            Extra Keras callbacks for this fit (e.g. Optuna pruning).

        Returns
        -------
        self : CraterCNNClassifier
            The fitted estimator.

        Warns
        -----
        ConvergenceWarning
            If the fitted network gives (nearly) the same probability to every
            training tile, so that it predicts one class whatever the tile.
        """
        images, y01, weights, classes = self._validate_training_data(X, y, sample_weight)
        train, val = self._split_validation(y01, validation_candidates, validation_data)
        x = self._scale(images)
        if validation_data is not None:
            val_data = self._validation_arrays(validation_data, classes)
        elif val is not None:
            val_data = (x[val], y01[val])
        else:
            val_data = None
        self._train(x[train], y01[train], weights[train], val_data, callbacks)
        self._warn_if_constant(x[train])
        return self

    def _warn_if_constant(self, x):
        # A network whose units are all inactive for every tile (or that barely
        # trained) gives all tiles one probability and predicts one class; the
        # recipe did so on 2 of 25 real cross-validation folds
        # (benchmarks/README.md). Say so at fit time, not in the scores.
        p = np.asarray(self.model_(x[:_CONSTANT_CHECK_TILES], training=False)).ravel()
        if p.size > 1 and np.std(p) < 1e-3:
            warnings.warn(
                f"The fitted network gives every training tile nearly the same "
                f"p(class 1) (about {np.mean(p):.3f}), so it predicts one class whatever "
                "the tile: its units are inactive for every input, or it trained too "
                "briefly. Fit again with another random_state, more epochs, a different "
                'learning_rate, preprocessing="standardize" or '
                "CraterCNNClassifier.recommended().",
                ConvergenceWarning,
                stacklevel=4,  # the caller of fit, past _fit_context
            )

    def _validate_training_data(self, X, y, sample_weight):
        conv = tuple(int(f) for f in self.conv_filters)
        pools = tuple(int(p) for p in self.pool_sizes)
        if not conv or min(conv) < 1 or min(pools, default=1) < 1:
            raise ValueError(
                "conv_filters and pool_sizes must be non-empty sequences of positive ints, got "
                f"conv_filters={self.conv_filters!r}, pool_sizes={self.pool_sizes!r}."
            )
        reuse = self.warm_start and hasattr(self, "keras_classifier_")
        if y is None:
            raise ValueError(f"{_NAME} requires y to be passed, but the target y is None.")
        pixels = check_pixels(X, estimator_name=_NAME)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        classes = np.unique(y)
        if classes.size != 2:
            raise ValueError(
                f"Only binary classification is supported by {_NAME}: y must hold exactly two "
                f"classes, got {classes.size} class(es): {classes.tolist()[:10]}."
            )
        check_consistent_length(pixels, y)
        images, image_shape = to_images(
            pixels, image_shape=self.image_shape_ if reuse else None, estimator_name=_NAME
        )
        if self.augment in TRANSPOSING and image_shape[0] != image_shape[1]:
            raise ValueError(
                f"augment={self.augment!r} rotates tiles by 90 degrees and needs square tiles, "
                f"got {image_shape[0]}x{image_shape[1]}; use 'flips' or 'rot180' instead."
            )
        if self.max_shift >= min(image_shape):
            raise ValueError(
                f"max_shift={self.max_shift} must be smaller than the tiles' sides "
                f"({image_shape[0]}x{image_shape[1]})."
            )
        check_geometry(
            image_shape,
            conv_filters=conv,
            kernel_size=self.kernel_size,
            pool_sizes=pools,
            padding=self.padding,
        )
        if reuse and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start fit got classes {classes.tolist()}, but the estimator was fitted on "
                f"{self.classes_.tolist()}."
            )
        y01 = (y == classes[1]).astype(np.float32)
        weights = _check_sample_weight(
            sample_weight, images, dtype=np.float32, ensure_non_negative=True
        )
        if self.class_weight is not None:
            weights = weights * compute_sample_weight(self.class_weight, y)
        if not weights.any():
            raise ValueError("Sample weights must contain at least one non-zero weight.")
        if not reuse:
            self.input_scale_ = infer_input_scale(images)
        self.classes_ = classes
        self.image_shape_ = image_shape
        self.n_features_in_ = image_shape[0] * image_shape[1]
        return images, y01, weights.astype(np.float32), classes

    def _split_validation(self, y01, candidates, validation_data):
        """Return (train indices, validation indices or None)."""
        n = y01.shape[0]
        everything = np.arange(n)
        if validation_data is not None or self.validation_fraction == 0:
            return everything, None
        pool = everything
        if candidates is not None:
            candidates = column_or_1d(candidates).astype(bool)
            check_consistent_length(y01, candidates)
            pool = everything[candidates]
        n_val = int(np.floor(self.validation_fraction * pool.size))
        if n_val < 1 or pool.size - n_val < 1:
            return everything, None
        counts = np.bincount(y01[pool].astype(int), minlength=2)
        stratify = y01[pool] if counts.min() >= 2 and n_val >= 2 else None
        rng = check_random_state(self.random_state)
        _, val = train_test_split(
            pool, test_size=n_val, stratify=stratify, random_state=rng.randint(2**31 - 1)
        )
        train = np.setdiff1d(everything, val, assume_unique=True)
        return train, np.sort(val)

    def _validation_arrays(self, validation_data, classes):
        try:
            X_val, y_val = validation_data
        except (TypeError, ValueError) as exc:
            raise ValueError("validation_data must be a tuple (X_val, y_val).") from exc
        images, _ = check_images(X_val, image_shape=self.image_shape_, estimator_name=_NAME)
        y_val = column_or_1d(y_val)
        check_consistent_length(images, y_val)
        unknown = np.setdiff1d(np.unique(y_val), classes)
        if unknown.size:
            raise ValueError(f"validation_data has labels not seen in y: {unknown.tolist()}.")
        return self._scale(images), (y_val == classes[1]).astype(np.float32)

    def _seed(self):
        if self.random_state is None:
            return None
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _train(self, x, y01, weights, val_data, callbacks):
        from scikeras.wrappers import KerasClassifier

        from ._network import build_network, lr_schedule_callback, seeded

        seed = self._seed()
        stopper = _best_epoch_callback(self.epochs if self.patience is None else self.patience)
        extra = list(callbacks or [])
        if self.lr_schedule == "plateau" and val_data is None:
            raise ValueError(
                'lr_schedule="plateau" watches the validation loss: it needs '
                "validation_fraction > 0 or validation_data."
            )
        schedule = lr_schedule_callback(
            self.lr_schedule,
            learning_rate=float(self.learning_rate),
            epochs=self.epochs,
            patience=self.patience,
        )
        extra = ([schedule] if schedule is not None else []) + extra
        if self.warm_start and hasattr(self, "keras_classifier_"):
            # scikeras uses a Model instance as it is: training goes on from its weights.
            model = self.keras_classifier_.model_
        else:
            model = functools.partial(build_network, **self._network_params())
        # A new scikeras wrapper per fit: scikeras only reads its callbacks when it initialises.
        self.keras_classifier_ = KerasClassifier(
            model=model,
            epochs=self.epochs,
            batch_size=self.batch_size,
            verbose=self.verbose,
            callbacks=([stopper] if val_data is not None else []) + extra,
        )
        with seeded(seed):
            if self.augment is None and not self.max_shift:
                self.keras_classifier_.fit(
                    x, y01, sample_weight=weights, validation_data=val_data, shuffle=True
                )
                history = self.keras_classifier_.history_
            else:
                history = self._fit_augmented(x, y01, weights, val_data, seed)
        self.history_ = {key: [float(v) for v in values] for key, values in history.items()}
        self.n_epochs_ = len(self.history_["loss"])
        self.best_epoch_ = stopper.best_epoch + 1 if val_data is not None else self.n_epochs_

    def _fit_augmented(self, x, y01, weights, val_data, seed):
        """Train on freshly augmented batches; scikeras only takes arrays, so
        it builds the network and Keras trains it on a ``tf.data.Dataset``."""
        from ._network import augmented_batches

        wrapper = self.keras_classifier_.initialize(x, y01)
        batches = augmented_batches(
            x,
            y01,
            weights,
            augment=self.augment,
            max_shift=self.max_shift,
            batch_size=self.batch_size,
            seed=seed,
        )
        return wrapper.model_.fit(
            batches,
            epochs=self.epochs,
            validation_data=val_data,
            callbacks=wrapper.callbacks,
            verbose=self.verbose,
            shuffle=False,  # the dataset shuffles every epoch itself
        ).history

    def _network_params(self):
        return dict(
            image_shape=self.image_shape_,
            conv_filters=tuple(int(f) for f in self.conv_filters),
            kernel_size=int(self.kernel_size),
            pool_sizes=tuple(int(p) for p in self.pool_sizes),
            dense_units=tuple(int(u) for u in self.dense_units),
            dropout=float(self.dropout),
            batch_norm=bool(self.batch_norm),
            padding=self.padding,
            learning_rate=float(self.learning_rate),
        )

    # -------------------------------------------------------------- predict
    @property
    def model_(self):
        """The fitted ``keras.Model`` (read-only view of ``keras_classifier_.model_``)."""
        check_is_fitted(self, "keras_classifier_")
        return self.keras_classifier_.model_

    def _scale(self, images):
        return scale_images(images, preprocessing=self.preprocessing, input_scale=self.input_scale_)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, side*side), (n_samples, h, w) or (n_samples, h, w, 1)
            Tiles of the training image shape.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Columns follow ``classes_``.
        """
        check_is_fitted(self, "keras_classifier_")
        images, _ = check_images(X, image_shape=self.image_shape_, estimator_name=_NAME)
        x = self._scale(images)
        p1 = self.model_.predict(x, batch_size=max(256, self.batch_size), verbose=0)
        p1 = np.asarray(p1, dtype=np.float64).reshape(-1)
        return np.column_stack([1.0 - p1, p1])

    def decision_function(self, X):
        """Probability of ``classes_[1]`` (the score ``threshold`` applies to).

        Parameters
        ----------
        X : array-like
            Tiles, as in :meth:`predict_proba`.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        return self.predict_proba(X)[:, 1]

    def predict(self, X):
        """Predict labels: ``classes_[1]`` where its probability >= ``threshold``.

        Parameters
        ----------
        X : array-like
            Tiles, as in :meth:`predict_proba`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        scores = self.decision_function(X)
        return self.classes_[(scores >= self.threshold).astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags.multi_class = False
        tags.classifier_tags.poor_score = True
        tags.input_tags.three_d_array = True
        tags.non_deterministic = self.random_state is None
        return tags


#: Parameters of :meth:`CraterCNNClassifier.recommended` (see benchmarks/README.md).
_RECOMMENDED = dict(
    # a narrow first convolution keeps the full-resolution stage cheap; the
    # second, at a ninth of the pixels, can afford 64 filters; the third runs
    # on the second's pooled 6x6 maps (48 px tiles), so it adds depth for
    # little arithmetic, with no pooling after it
    conv_filters=(16, 64, 64),
    pool_sizes=(3, 2, 1),
    dense_units=(32,),
    dropout=0.3,
    # Batch normalisation collapsed to one class on real HRSC48 folds (best epoch 1).
    batch_norm=False,
    preprocessing="standardize",
    # HRSC tiles are lit from the side: an up-down mirror keeps the shading
    # pattern, a left-right mirror reverses it (benchmarks/README.md)
    augment="flip_ud",
    max_shift=4,
    learning_rate=1e-3,
    lr_schedule="plateau",
    epochs=60,
    batch_size=64,
    patience=12,
)


def _best_epoch_callback(patience):
    import keras

    return keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True
    )
