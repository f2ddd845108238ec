"""CraterCNNClassifier: a small Keras CNN as a scikit-learn classifier."""

from __future__ import annotations

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

from ._consistency import STRONG_AUGMENTATIONS
from ._images import (
    PREPROCESSING_MODES,
    check_grey_levels,
    check_images,
    check_pixels,
    check_prediction_range,
    check_same_range,
    input_scale_of,
    pixel_range,
    range_hull,
    scale_images,
    square_shape,
    to_images,
)
from ._network import (
    AUGMENTATIONS,
    LR_SCHEDULES,
    TRANSPOSING,
    auto_pool_sizes,
    check_geometry,
    upsampled_shape,
)

__all__ = ["CraterCNNClassifier"]

#: Training tiles on which a fitted network is checked for a constant output.
_CONSTANT_CHECK_TILES = 256
#: Smallest batch size of predict_proba (every batch has the same size).
_PREDICT_BATCH = 256
#: The preprocessings that read grey levels on the scale fixed in fit
#: (``"standardize"`` rescales every tile on its own, whatever its range).
_SCALED = ("scale", "local")


class CraterCNNClassifier(ClassifierMixin, BaseEstimator):
    """Convolutional network classifier for small grayscale image tiles.

    A scikit-learn classifier that builds, trains and holds a Keras network
    (``model_``). The default network and learning rate are the published
    crater recipe: Conv2D(16, 3x3, relu) -> MaxPool(3) -> Conv2D(32, 3x3,
    relu) -> MaxPool(2) -> Flatten -> Dense(8, relu) -> Dropout(0.5) ->
    Dense(1, sigmoid), Adam at 3e-4, binary cross-entropy, and the weights of
    the epoch with the lowest validation loss are kept.

    TensorFlow is imported on the first ``fit``, not when skcrater is.

    Parameters
    ----------
    conv_filters : tuple of int, default=(16, 32)
        Filters of each convolution block (its length is the depth).
    kernel_size : int, default=3
        Side of the square convolution kernels.
    pool_sizes : tuple of int or "auto", default=(3, 2)
        Max-pooling size after each convolution block; one per block (1: no
        pooling). ``"auto"`` (the :meth:`recommended` preset's) chooses them
        in ``fit`` from the tile size: going block by block, each pools by
        the largest of 3, 2 and 1 that still leaves the last feature map at
        least 4 pixels a side, as the preset leaves 48 px tiles. The sides
        are counted without the local contrast layer of
        ``preprocessing="local"`` (a tile size gets the same pools whatever
        the preprocessing), but no choice whose maps vanish is taken; where
        no choice leaves 4 pixels, no block pools. The pools used are in
        ``pool_sizes_``; the parameter keeps ``"auto"``.
    dense_units : tuple of int, default=(8,)
        Units of each hidden dense layer; ``()`` for none.
    dropout : float, default=0.5
        Dropout rate after each hidden dense layer.
    batch_norm : bool, default=False
        Batch normalisation after every convolution.
    padding : {"valid", "same"}, default="valid"
        Padding of the convolutions.
    preprocessing : {"scale", "standardize", "local"}, default="scale"
        ``"scale"`` maps grey levels to [0, 1] (0..255 integers or floats
        outside [0, 1] are divided by 255, floats in [0, 1] are kept; the
        choice is made in ``fit`` and reused in ``predict``, which refuses
        tiles of another range: see Notes). ``"standardize"`` gives each
        tile zero mean and unit variance, which makes the model blind to
        exposure and contrast. ``"local"`` scales
        as ``"scale"`` does, then the network's first layer gives each pixel
        zero mean and unit variance over its ``local_size x local_size``
        neighbourhood: as blind to exposure and contrast, and, being a
        convolution-like operation, it computes the same in a cut tile as in
        a whole image, so that :class:`~skcrater.detection.CraterDetector`
        can scan images fully convolutionally. It makes the feature maps
        ``local_size - 1`` pixels smaller.
    local_size : int, default=15
        Side (odd) of the neighbourhood of ``preprocessing="local"``;
        ignored otherwise.
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
        Decision threshold on the probability of ``classes_[1]``:
        :meth:`predict` gives ``classes_[1]`` where the probability is
        ``>= threshold``, and :meth:`decision_function` is positive exactly
        there. :meth:`predict_proba` does not depend on it.
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
        and rotations, a shift keeps the direction of the light. It counts
        pixels of the tiles as the network sees them: tiles enlarged by
        ``upsample_to`` shift by ``round(max_shift / factor)`` of their own
        pixels (a 28 px tile enlarged to 48 px by up to 2 for
        ``max_shift=4``). It must be smaller than the tile's sides.
    upsample_to : int or None, default=None
        Tiles whose shorter side is below this many pixels are enlarged by
        bilinear interpolation inside the network (its first layer, a Keras
        ``Resizing`` layer), scaling both sides alike until the shorter one
        is ``upsample_to``; the convolutions, ``pool_sizes="auto"``,
        ``local_size`` and ``max_shift`` then count pixels of the enlarged
        tiles, while :meth:`predict` keeps taking tiles of their own size.
        None (and tiles at least that large) leave the tiles as they are.
        A network that enlarges its tiles cannot scan whole images densely
        (:class:`~skcrater.detection.CraterDetector` then cuts windows).
    lr_schedule : {"cosine", "plateau"} or None, default=None
        ``"cosine"`` decays the learning rate along a half cosine from
        ``learning_rate`` to 1% of it over ``epochs`` epochs; ``"plateau"``
        halves it whenever the validation loss stalls for ``max(2, patience
        // 3)`` epochs (3 without ``patience``; needs a validation split).
        None keeps it constant.
    unlabeled_weight : float, default=0.0
        Weight of consistency training on unlabelled tiles (``y == -1`` rows
        and ``X_unlabeled`` in :meth:`fit`), FixMatch-style: in every step,
        the network's prediction on a weakly augmented view of each
        unlabelled tile (the training augmentation, ``augment`` and
        ``max_shift``, with dropout off) is its pseudo-label where it is
        confident enough (``unlabeled_threshold``), and the network is
        trained to give that label to a strongly augmented view of the same
        tile (``unlabeled_augment``), with this weight on that loss beside
        the supervised one. ``0`` (the default) trains on the labelled tiles
        alone, exactly as without unlabelled tiles. Validation, the best
        epoch and early stopping use labelled tiles only. See the user guide
        ("Consistency training") for where it pays and where it does not.
    unlabeled_threshold : float or dict, default=0.95
        Confidence, ``max(p, 1 - p)``, that an unlabelled tile's weak-view
        prediction needs to become a pseudo-label, in (0, 1]; ``1.0`` uses
        none. A dict gives one per class label (a class left out gets no
        pseudo-labels). The share of unlabelled tiles that passed, per epoch,
        is ``history_["unlabeled_share"]``.
    unlabeled_entropy_weight : float, default=0.0
        Weight of entropy minimisation on the unlabelled tiles: the mean
        binary entropy of the network's predictions on their weak views
        (dropout on) is added to the loss, which pushes the decision
        boundary away from them. Works with or without ``unlabeled_weight``.
    unlabeled_ratio : int, default=1
        Unlabelled tiles per labelled tile in each training step (FixMatch's
        mu); the unlabelled tiles are cycled in fresh random orders.
    unlabeled_augment : tuple of str, default=("gamma", "contrast", "blur", "noise", "cutout")
        The strong view's operations, all of which keep the direction of
        the light (no mirror or rotation beyond the weak view's): a gamma in
        [0.6, 1.6], contrast x[0.6, 1.4] and a brightness shift, a 3x3 blur
        (half the tiles), Gaussian noise up to 10% of the tile's standard
        deviation, a cutout square of a quarter to a third of the side.
        Under ``preprocessing="standardize"`` the tile is standardised
        again afterwards, which undoes contrast and brightness.
    unlabeled_warmup : int, default=0
        Epochs over which the unlabelled terms (``unlabeled_weight`` and
        ``unlabeled_entropy_weight``) grow linearly from 0 to their weights,
        so that pseudo-labels start from a network trained on the labelled
        tiles; 0 applies them in full from the first epoch.
    unlabeled_prior : "em", float or None, default=None
        The share of ``classes_[1]`` among the tiles to be classified, when
        it differs from the labelled tiles' (e.g. another region with fewer
        craters). After training, the network's output is corrected by
        Bayes' rule for the change from the labelled share
        (``class_prior_``) to this one: every logit moves by
        ``logit(new share) - logit(labelled share)``, so the ranking of the
        tiles is unchanged and only the probabilities, and what passes
        ``threshold``, move. ``"em"`` estimates the share from the network's
        own probabilities on the unlabelled tiles (``y == -1`` rows and
        ``X_unlabeled``, which it then requires): the share that makes them
        most likely, where the EM algorithm of Saerens et al. (2002)
        converges; a float in (0, 1) gives it. None (the
        default) keeps the network's output as trained. The correction is
        part of the network (the bias of its output unit), so saved models,
        :meth:`predict_proba` and dense scans all include it. It assumes
        that only the share changes, not what a crater looks like, and that
        the probabilities are calibrated on the labelled tiles; EM runs away
        to 0 or 1 when they barely separate the classes (a warning says so
        for estimates below 1% or above 99%). See the user guide
        (:ref:`label_shift`) for where it pays.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two class labels; ``classes_[1]`` is the positive class.
    n_features_in_ : int
        Pixels per image (``h * w``).
    image_shape_ : tuple of int
        ``(h, w)`` of the training images; ``predict`` requires the same.
    input_scale_ : float
        Grey value mapped to 1 by ``preprocessing="scale"`` (and
        ``"local"``): 255.0, or 1.0 for training tiles of floats in [0, 1].
    input_range_ : dict
        The training tiles' ``"dtype"`` (str), ``"min"`` and ``"max"``
        (floats; a ``warm_start`` fit widens them to its tiles), against
        which ``predict`` checks new tiles (see Notes).
    pool_sizes_ : tuple of int
        The max-pooling sizes of the fitted network, one per block: equal to
        ``pool_sizes``, or what ``"auto"`` resolved to for these tiles.
    network_summary_ : str
        The fitted network, one line per layer with its output shape, and
        its number of parameters (``model_.summary()`` prints Keras' table).
    model_ : keras.Model
        The fitted network; its single sigmoid output is the probability of
        ``classes_[1]``.
    history_ : dict of str to list of float
        Per-epoch training record: ``loss``, ``accuracy``, ``precision``,
        ``recall`` and ``f1`` (at ``threshold``, counting ``p > threshold`` as
        Keras does) and, with a validation split, the same with a ``val_``
        prefix. Training figures are averaged over the epoch's batches;
        validation figures are exact for the weights at the epoch's end.
        Trained with unlabelled tiles (``unlabeled_weight`` or
        ``unlabeled_entropy_weight`` > 0), also ``unlabeled_share``, the
        share of unlabelled tiles whose pseudo-label passed the threshold,
        and ``unlabeled_loss``, the consistency loss before its weight.
    best_epoch_ : int
        The (1-based) epoch whose weights were kept.
    class_prior_ : ndarray of shape (2,)
        The share of each class in the loss of the labelled training tiles
        (their weights, ``sample_weight`` times ``class_weight``, summed per
        class): the prior the trained network's probabilities reflect.
    unlabeled_prior_ : ndarray of shape (2,) or None
        The class shares the output was corrected to (``unlabeled_prior``:
        estimated by EM or given), or None without the correction.
    n_epochs_ : int
        Epochs run in the last ``fit`` (fewer than ``epochs`` after an early
        stop).

    See Also
    --------
    skcrater.SelfTrainingWrapper : Pseudo-labels unlabelled tiles with it.

    Notes
    -----
    **Which tiles are accepted.** Tiles are real numbers: booleans (masks),
    text and object arrays holding booleans or strings raise a
    ``TypeError``, complex numbers, NaN and infinity a ``ValueError``. With
    ``preprocessing="scale"`` or ``"local"``, the grey levels are read as
    follows, and ``fit`` records the training tiles' dtype and range in
    ``input_range_``:

    * integer tiles (any integer dtype, uint16 included) are 8-bit grey
      levels, 0..255: values outside it raise a ``ValueError`` in ``fit``
      and ``predict`` (convert 12- or 16-bit tiles to 8 bits or to floats
      in [0, 1] first);
    * float tiles within [0, 1] are already scaled (``input_scale_ = 1``);
    * other float tiles are 0..255 grey levels (``input_scale_ = 255``);
      beyond [0, 255] (negative values, say) ``fit`` warns
      (``UserWarning``) and divides them by 255 all the same.

    ``predict`` (``predict_proba``, ``decision_function``), a ``warm_start``
    fit and ``validation_data`` refuse tiles that clearly come from another
    range than the training tiles, with a ``ValueError``: one set read as
    floats in [0, 1], the other as 0..255 grey levels, and the largest value
    of the latter at least 10 times that of the former (which is not all
    zeros), as when a model fitted on uint8 tiles is given ``X / 255.0``, or
    one fitted on ``X / 255.0`` is given uint8 tiles. Tiles read the same
    way are accepted whatever their range: uint8 tiles of a darker or
    brighter image, or floats 0..255 for a model fitted on uint8 tiles.
    Tiles that go beyond both 0..``input_scale_`` and the training range,
    by more than 1% of ``input_scale_``, draw a ``UserWarning``. With
    ``preprocessing="standardize"`` every tile is standardised on its own, so
    its range does not matter and none of these range rules applies.

    ``predict_proba`` streams the tiles through the network in batches, so
    that the memory it needs beyond its input does not grow with their
    number (``benchmarks/bench_predict_memory.py``).

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
        "pool_sizes": ["array-like", StrOptions({"auto"})],
        "dense_units": ["array-like"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "padding": [StrOptions({"valid", "same"})],
        "preprocessing": [StrOptions(set(PREPROCESSING_MODES))],
        "local_size": [Interval(Integral, 3, None, closed="left")],
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
        "upsample_to": [Interval(Integral, 1, None, closed="left"), None],
        "unlabeled_weight": [Interval(Real, 0, None, closed="left")],
        "unlabeled_threshold": [Interval(Real, 0, 1, closed="right"), dict],
        "unlabeled_entropy_weight": [Interval(Real, 0, None, closed="left")],
        "unlabeled_ratio": [Interval(Integral, 1, None, closed="left")],
        "unlabeled_augment": ["array-like"],
        "unlabeled_warmup": [Interval(Integral, 0, None, closed="left")],
        "unlabeled_prior": [StrOptions({"em"}), Interval(Real, 0, 1, closed="neither"), None],
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
        local_size=15,
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
        upsample_to=None,
        unlabeled_weight=0.0,
        unlabeled_threshold=0.95,
        unlabeled_entropy_weight=0.0,
        unlabeled_ratio=1,
        unlabeled_augment=STRONG_AUGMENTATIONS,
        unlabeled_warmup=0,
        unlabeled_prior=None,
    ):
        self.conv_filters = conv_filters
        self.kernel_size = kernel_size
        self.pool_sizes = pool_sizes
        self.dense_units = dense_units
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.padding = padding
        self.preprocessing = preprocessing
        self.local_size = local_size
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
        self.upsample_to = upsample_to
        self.unlabeled_weight = unlabeled_weight
        self.unlabeled_threshold = unlabeled_threshold
        self.unlabeled_entropy_weight = unlabeled_entropy_weight
        self.unlabeled_ratio = unlabeled_ratio
        self.unlabeled_augment = unlabeled_augment
        self.unlabeled_warmup = unlabeled_warmup
        self.unlabeled_prior = unlabeled_prior

    def __reduce_ex__(self, protocol):
        from ._layers import new_with_layers

        holds_keras = getattr(self, "model_", None) is not None
        return (new_with_layers, (type(self), holds_keras), self.__getstate__())

    @classmethod
    def recommended(cls, **params):
        """skcrater's recommended configuration, unfitted.

        ``CraterCNNClassifier()`` keeps the published recipe's network and
        training. This preset standardises each tile (blind to exposure and
        contrast) and uses three 3x3 convolutions of 16, 64 and 64 filters
        ('valid' padding), each followed by max-pooling sized for the tiles by
        ``pool_sizes="auto"``, then dense 32 with dropout 0.3. It mirrors
        training tiles up-down and shifts them by up to 4 pixels, trains at
        learning rate 1e-3 with batch size 64, halves the rate when the
        validation loss stalls and stops after 12 epochs without improvement.

        Only the network's input size and its pooling depend on the tile
        size, and both are chosen in ``fit``. Tiles smaller than 48 px a side
        are first enlarged to 48 px (``upsample_to=48``: bilinear, inside the
        network, so that :meth:`predict` takes the tiles as they are; shifts
        count pixels of the enlarged tiles, so 28 px tiles shift by up to 2
        of their own). Then, going block by block, each pools by the largest
        of 3, 2 and 1 that still leaves the last feature map at least 4
        pixels a side (the rule of ``pool_sizes="auto"``, see the class
        parameters). Tiles up to 48 px thus all get the network the preset
        was chosen with on 48 px tiles, (3, 2, 1) pools and 4x4x64 maps
        before the dense layer; larger tiles keep their pixels and pool
        more:

        ========  =============  ===========  =========
        tiles     network input  pool_sizes_  last map
        ========  =============  ===========  =========
        16 px     48x48          (3, 2, 1)    4x4
        28 px     48x48          (3, 2, 1)    4x4
        32 px     48x48          (3, 2, 1)    4x4
        48 px     48x48          (3, 2, 1)    4x4
        64 px     64x64          (3, 3, 1)    4x4
        128 px    128x128        (3, 3, 2)    5x5
        ========  =============  ===========  =========

        Non-square tiles are enlarged by one factor, until their shorter
        side is 48 px. The detector's classifier,
        ``recommended(preprocessing="local", upsample_to=None)``, keeps its
        windows' pixels, as the dense scan of whole images needs; its local
        contrast layer takes ``local_size - 1`` (14) pixels, so on 48 px
        windows it gets the same pools and 2x2 last maps. After ``fit``,
        ``pool_sizes_`` and ``network_summary_`` show the network built.

        How it compares with the recipe on real tiles, in quality and in
        training time, and the ablations behind each choice are in
        ``benchmarks/README.md`` (section "Model quality and time to result").

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
        >>> clf.preprocessing, clf.batch_size, clf.pool_sizes
        ('standardize', 64, 'auto')
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
        X_unlabeled=None,
    ):
        """Train the network on labelled tiles, and on unlabelled ones if asked.

        Parameters
        ----------
        X : array-like of shape (n_samples, side*side), (n_samples, h, w) or (n_samples, h, w, 1)
            Grayscale tiles: integers 0..255, floats in [0, 1] or floats
            0..255 (see the class Notes for what else is accepted).
        y : array-like of shape (n_samples,)
            Labels, exactly two distinct values, and -1 for unlabelled tiles
            (scikit-learn's semi-supervised convention; -1 is read so only
            when the other labels hold two classes, so that labels ``{-1,
            1}`` stay a binary problem). Unlabelled tiles join
            ``X_unlabeled``; they are only used with ``unlabeled_weight > 0``,
            ``unlabeled_entropy_weight > 0`` or ``unlabeled_prior="em"`` and
            never reach the validation split.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-tile weights in the loss (multiplied by ``class_weight``);
            both classes must keep some non-zero weight.
        validation_candidates : array-like of bool of shape (n_samples,), default=None
            Tiles from which the validation split may be drawn (default:
            all). :class:`~skcrater.SelfTrainingWrapper` passes its
            human-labelled tiles here, so that the best epoch is never chosen
            on pseudo-labels. Tiles that are not candidates are always
            trained on.
        validation_data : tuple (X_val, y_val), default=None
            A fixed validation set used instead of the internal split; its
            tiles must be in the range of ``X`` (see the class Notes).
        callbacks : list of keras.callbacks.Callback, default=None
            Extra Keras callbacks for this fit (e.g. Optuna pruning).
        X_unlabeled : array-like of shape (n_unlabeled, ...), default=None
            Unlabelled tiles for consistency training (``unlabeled_weight``),
            entropy minimisation (``unlabeled_entropy_weight``) and the
            estimate of their class shares (``unlabeled_prior="em"``), of the
            shape of ``X`` and in its range (see the class Notes). Ignored,
            once checked, when none of these is asked for.

        Returns
        -------
        self : CraterCNNClassifier
            The fitted estimator.

        Raises
        ------
        TypeError
            For boolean, text or other non-numeric tiles.
        ValueError
            For invalid parameters, labels or tiles: with
            ``preprocessing="scale"`` or ``"local"``, integer tiles outside
            0..255, and (``warm_start``, ``validation_data``) tiles of another
            range than the training tiles (see the class Notes).

        Warns
        -----
        ConvergenceWarning
            If the fitted network gives (nearly) the same probability to every
            training tile, so that it predicts one class whatever the tile.
        UserWarning
            With ``preprocessing="scale"`` or ``"local"``, for float tiles
            outside [0, 255].
        """
        self._check_network_params()
        X, y, sample_weight, validation_candidates, in_y = self._split_unlabeled(
            X, y, sample_weight, validation_candidates
        )
        warm = self._continues_training()
        images, y, weights, classes = self._check_training_data(X, y, sample_weight, warm)
        image_shape = images.shape[1:3]
        input_range = self._check_training_range(images, warm)
        input_scale = self.input_scale_ if warm else input_scale_of(input_range)
        pool = self._check_unlabeled(in_y, X_unlabeled, image_shape, input_range, input_scale)
        self._check_prior_pool(pool)
        thresholds = self._unlabeled_thresholds(classes)
        y01 = (y == classes[1]).astype(np.float32)
        train, val = self._split_validation(y01, validation_candidates, validation_data)
        if validation_data is not None:
            val_data = self._check_validation_data(
                validation_data, classes, image_shape, input_scale, input_range
            )
        x = self._scale(images, input_scale)
        if validation_data is None:
            val_data = None if val is None else (x[val], y01[val])
        self._check_schedule(val_data)
        self.classes_ = classes
        self.image_shape_ = image_shape
        self.n_features_in_ = image_shape[0] * image_shape[1]
        self.input_scale_ = input_scale
        self.input_range_ = input_range
        scaled_pool = None
        if pool is not None and self._uses_pool():
            scaled_pool = self._scale(pool, input_scale)
        if warm:
            self._remove_prior_correction()
        self._train(
            x[train], y01[train], weights[train], val_data, callbacks, warm, scaled_pool, thresholds
        )
        self._warn_if_constant(x[train])
        self._correct_prior(y01[train], weights[train], pool)
        return self

    # ---------------------------------------------------- unlabelled tiles
    def _uses_pool(self):
        return self.unlabeled_weight > 0 or self.unlabeled_entropy_weight > 0

    def _check_prior_pool(self, pool):
        if _is_option(self.unlabeled_prior, "em") and pool is None:
            raise ValueError(
                'unlabeled_prior="em" estimates the class shares of unlabelled tiles: pass '
                "them as rows of X with y == -1 or as X_unlabeled, or give the share as a "
                "float."
            )

    def _correct_prior(self, y01, weights, pool):
        """Set ``class_prior_`` and ``unlabeled_prior_``; move the output's bias by Bayes' rule."""
        from ._prior import em_prior

        positive = float(np.dot(weights, y01) / weights.sum())
        self.class_prior_ = np.array([1.0 - positive, positive])
        self.unlabeled_prior_ = None
        if self.unlabeled_prior is None:
            return
        if _is_option(self.unlabeled_prior, "em"):
            share = em_prior(self._positive_proba(pool), positive)
            _warn_if_extreme(share, self.classes_[1])
        else:
            share = float(self.unlabeled_prior)
        self.unlabeled_prior_ = np.array([1.0 - share, share])
        self._shift_output(self._prior_shift())

    def _prior_shift(self):
        """The logit offset that the fitted output unit carries (0 without a correction)."""
        from ._prior import logit_shift

        if getattr(self, "unlabeled_prior_", None) is None:
            return 0.0
        return logit_shift(self.class_prior_[1], self.unlabeled_prior_[1])

    def _remove_prior_correction(self):
        # a warm fit trains on from the network as trained, not as corrected
        self._shift_output(-self._prior_shift())
        self.unlabeled_prior_ = None

    def _shift_output(self, shift):
        """Add ``shift`` to the logit of the network's sigmoid output unit."""
        if shift == 0.0:
            return
        output = self.model_.layers[-1]
        kernel, bias = output.get_weights()
        output.set_weights([kernel, bias + np.float32(shift)])

    def _split_unlabeled(self, X, y, sample_weight, validation_candidates):
        """Take the rows with ``y == -1`` out of the training data.

        Returns ``(X, y, sample_weight, validation_candidates, X_rows)``;
        ``X_rows`` (checked pixels) is None when ``y`` marks no row with -1,
        or when its other labels do not hold two classes (then ``y`` is left
        as it is: labels ``{-1, 1}`` are a binary problem).
        """
        if y is None:
            return X, y, sample_weight, validation_candidates, None
        labels = np.asarray(y)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels.ravel()
        if labels.ndim != 1 or labels.dtype.kind not in "iufO":
            return X, y, sample_weight, validation_candidates, None
        unlabelled = np.asarray(labels == -1, dtype=bool)
        if not unlabelled.any() or np.unique(labels[~unlabelled]).size != 2:
            return X, y, sample_weight, validation_candidates, None
        pixels = check_pixels(X, estimator_name=type(self).__name__)
        check_consistent_length(pixels, labels)
        keep = ~unlabelled
        if sample_weight is not None and not np.isscalar(sample_weight):
            sample_weight = column_or_1d(sample_weight)
            check_consistent_length(labels, sample_weight)
            sample_weight = sample_weight[keep]
        if validation_candidates is not None:
            validation_candidates = column_or_1d(validation_candidates)
            check_consistent_length(labels, validation_candidates)
            validation_candidates = validation_candidates[keep]
        return pixels[keep], labels[keep], sample_weight, validation_candidates, pixels[unlabelled]

    def _check_unlabeled(self, in_y, X_unlabeled, image_shape, input_range, input_scale):
        """Check the unlabelled tiles; return them as ``(n, h, w, 1)`` or None."""
        name = type(self).__name__
        parts = []
        if in_y is not None:
            shape = image_shape if in_y.ndim == 2 else None
            parts.append(to_images(in_y, image_shape=shape, estimator_name=name)[0])
        if X_unlabeled is not None:
            pixels = check_pixels(X_unlabeled, estimator_name=name, input_name="X_unlabeled")
            flat = pixels.ndim == 2 and pixels.shape[1] == image_shape[0] * image_shape[1]
            if pixels.ndim == 2 and not flat:
                found = f"rows of {pixels.shape[1]} pixels"
            elif pixels.ndim > 2 and tuple(pixels.shape[1:3]) != tuple(image_shape):
                found = f"tiles of {pixels.shape[1]}x{pixels.shape[2]} pixels"
            else:
                found = None
            if found is not None:
                raise ValueError(
                    f"X_unlabeled holds {found}, but the tiles of X are "
                    f"{image_shape[0]}x{image_shape[1]}: give unlabelled tiles of the same shape."
                )
            parts.append(to_images(pixels, image_shape=image_shape, estimator_name=name)[0])
        if not parts:
            return None
        pool = (
            parts[0] if len(parts) == 1 else np.concatenate([p.astype(np.float64) for p in parts])
        )
        found = pixel_range(pool)
        if self.preprocessing in _SCALED:
            self._check_new_range(
                found, input_name="X_unlabeled", reference=input_range, input_scale=input_scale
            )
        else:  # standardised tiles: only refuse the clear [0, 1] / 0..255 mix-up
            check_same_range(
                input_range, found, input_name="X_unlabeled", reference_name="the tiles of X"
            )
        return pool

    def _unlabeled_thresholds(self, classes):
        """(threshold of predicted classes_[0], of classes_[1]); 1.0 means never."""
        t = self.unlabeled_threshold
        if not isinstance(t, dict):
            return (float(t), float(t))
        unknown = [k for k in t if k not in classes.tolist()]
        if unknown:
            raise ValueError(
                f"unlabeled_threshold has keys {unknown!r} that are not classes of y "
                f"({classes.tolist()})."
            )
        out = []
        for c in classes.tolist():
            value = t.get(c, 1.0)
            if not isinstance(value, Real) or not 0 < value <= 1:
                raise ValueError(
                    f"unlabeled_threshold[{c!r}] must be a float in (0, 1], got {value!r}."
                )
            out.append(float(value))
        return tuple(out)

    def _flat_image_shape(self, n_features):
        """Return the ``(h, w)`` of the tile held in a flat row of ``n_features`` pixels.

        A flat row is a square tile (``2304 = 48 x 48``); any other length
        raises ``ValueError``. The one place where ``fit`` reads flat rows as
        images, so that a subclass can read them otherwise.
        """
        return square_shape(n_features)

    def _continues_training(self):
        return bool(self.warm_start) and hasattr(self, "model_")

    def _warn_if_constant(self, x):
        # A network whose units are all inactive for every tile (or that barely
        # trained) gives all tiles one probability and predicts one class; the
        # recipe did so on some real cross-validation folds (benchmarks/README.md).
        # Say so at fit time, not in the scores.
        p = np.asarray(self.model_(x[:_CONSTANT_CHECK_TILES], training=False)).ravel()
        if p.size > 1 and np.std(p) < 1e-3:
            warnings.warn(
                f"The fitted network gives every training tile nearly the same "
                f"p(class 1) (about {np.mean(p):.3f}), so it predicts one class whatever "
                "the tile: its units are inactive for every input, or it trained too "
                "briefly. Fit again with another random_state, more epochs, a different "
                'learning_rate, preprocessing="standardize" or '
                f"{type(self).__name__}.recommended().",
                ConvergenceWarning,
                stacklevel=4,  # the caller of fit, past _fit_context
            )

    def _check_network_params(self):
        """Parameter checks that ``_parameter_constraints`` cannot express (no data needed)."""
        conv = _ints(self.conv_filters)
        # "auto" is resolved per tile size in fit (_pool_sizes_for)
        pools = (1,) * len(conv) if _is_option(self.pool_sizes, "auto") else _ints(self.pool_sizes)
        if not conv or min(conv) < 1 or min(pools, default=1) < 1:
            raise ValueError(
                "conv_filters and pool_sizes must be non-empty sequences of positive ints, got "
                f"conv_filters={self.conv_filters!r}, pool_sizes={self.pool_sizes!r}."
            )
        if self.local_size % 2 == 0:
            raise ValueError(
                f"local_size={self.local_size} must be odd, so that each pixel is the centre "
                "of its neighbourhood."
            )
        unknown = [op for op in self.unlabeled_augment if op not in STRONG_AUGMENTATIONS]
        if isinstance(self.unlabeled_augment, str) or unknown:
            raise ValueError(
                f"unlabeled_augment must be a sequence of names from {STRONG_AUGMENTATIONS}, "
                f"got {self.unlabeled_augment!r}."
            )
        if len(pools) != len(conv):
            raise ValueError(
                f"pool_sizes has {len(pools)} entries but conv_filters has {len(conv)}: give "
                "one pooling size per convolution block."
            )

    def _check_training_data(self, X, y, sample_weight, warm):
        """Validate the training data against the parameters; sets nothing.

        Returns ``(images, y, weights, classes)``: ``(n, h, w, 1)`` tiles, the
        1-D labels, float32 per-tile loss weights and the two classes.
        """
        name = type(self).__name__
        if y is None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None.")
        pixels = check_pixels(X, estimator_name=name)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        classes = np.unique(y)
        if classes.size != 2:
            raise ValueError(
                f"Only binary classification is supported by {name}: y must hold exactly two "
                f"classes, got {classes.size} class(es): {classes.tolist()[:10]}."
            )
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start fit got classes {classes.tolist()}, but the estimator was fitted on "
                f"{self.classes_.tolist()}."
            )
        check_consistent_length(pixels, y)
        if warm:
            shape = self.image_shape_
        else:
            shape = self._flat_image_shape(pixels.shape[1]) if pixels.ndim == 2 else None
        images, image_shape = to_images(pixels, image_shape=shape, estimator_name=name)
        self._check_tile_shape(image_shape)
        return images, y, self._check_weights(sample_weight, images, y), classes

    def _check_training_range(self, images, warm):
        """Check the training tiles' grey levels; return their range (sets nothing).

        A first fit refuses integer tiles outside 0..255 (and warns about floats
        outside [0, 255]); a warm fit checks the tiles against the range of the
        first, as predict does, and returns the range that holds both.
        """
        found = pixel_range(images)
        if warm:
            if self.preprocessing in _SCALED:
                self._check_new_range(found, input_name="X")
            return range_hull(self._training_range(), found)
        if self.preprocessing in _SCALED:
            check_grey_levels(found, estimator_name=type(self).__name__)
        return found

    def _training_range(self):
        # files saved before input_range_ existed: the nominal range of the scale
        fallback = {
            "dtype": "float64" if self.input_scale_ == 1.0 else "uint8",
            "min": 0.0,
            "max": float(self.input_scale_),
        }
        return getattr(self, "input_range_", fallback)

    def _check_new_range(self, found, *, input_name, reference=None, input_scale=None):
        """Refuse (or warn about) tiles of another range than the training tiles.

        ``reference`` and ``input_scale`` default to the fitted ones.
        """
        check_prediction_range(
            self._training_range() if reference is None else reference,
            found,
            input_scale=float(self.input_scale_ if input_scale is None else input_scale),
            estimator_name=type(self).__name__,
            input_name=input_name,
        )

    def _check_tile_shape(self, image_shape):
        h, w = image_shape
        if self.augment in TRANSPOSING and h != w:
            raise ValueError(
                f"augment={self.augment!r} rotates tiles by 90 degrees and needs square tiles, "
                f"got {h}x{w}; use 'flips' or 'rot180' instead."
            )
        if self._shift_for(image_shape) >= min(h, w):
            raise ValueError(
                f"max_shift={self.max_shift} must be smaller than the tiles' sides ({h}x{w})."
            )
        check_geometry(
            self._network_shape(image_shape),
            conv_filters=_ints(self.conv_filters),
            kernel_size=self.kernel_size,
            pool_sizes=self._pool_sizes_for(image_shape),
            padding=self.padding,
            local_size=self._local_size(),
        )

    def _pool_sizes_for(self, image_shape):
        """The pooling sizes of the network for tiles of ``image_shape``:
        ``pool_sizes`` itself, or what ``"auto"`` resolves to (raises
        ``ValueError`` for tiles too small even without pooling)."""
        if not _is_option(self.pool_sizes, "auto"):
            return _ints(self.pool_sizes)
        return auto_pool_sizes(
            self._network_shape(image_shape),
            conv_filters=_ints(self.conv_filters),
            kernel_size=int(self.kernel_size),
            padding=self.padding,
            local_size=self._local_size(),
        )

    def _network_shape(self, image_shape):
        """(h, w) of the tiles as the network's convolutions see them."""
        return upsampled_shape(image_shape, self.upsample_to)

    def _shift_for(self, image_shape):
        """``max_shift`` in the tiles' own pixels: it counts pixels of the
        tiles as the network sees them, so an enlarged tile shifts less."""
        factor = self._network_shape(image_shape)[0] / image_shape[0]
        return int(round(self.max_shift / factor))

    def _local_size(self):
        return int(self.local_size) if self.preprocessing == "local" else None

    def _check_weights(self, sample_weight, images, y):
        weights = _check_sample_weight(
            sample_weight, images, dtype=np.float32, ensure_non_negative=True
        )
        if self.class_weight is not None:
            weights = weights * compute_sample_weight(self.class_weight, y)
        if not weights.any():
            raise ValueError("Sample weights must contain at least one non-zero weight.")
        weighted = np.unique(y[weights > 0])
        if weighted.size < 2:
            # a loss that ignores one class cannot learn where the boundary lies
            raise ValueError(
                f"{type(self).__name__} needs non-zero weight on both classes, but "
                "sample_weight and class_weight leave only class "
                f"{weighted.tolist()[0]!r} weighted."
            )
        return weights.astype(np.float32)

    def _check_schedule(self, val_data):
        if self.lr_schedule == "plateau" and val_data is None:
            raise ValueError(
                'lr_schedule="plateau" watches the validation loss: it needs '
                "validation_fraction > 0 (and enough tiles to hold some out) or "
                "validation_data."
            )

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

    def _check_validation_data(
        self, validation_data, classes, image_shape, input_scale, input_range
    ):
        try:
            X_val, y_val = validation_data
        except (TypeError, ValueError) as exc:
            raise ValueError("validation_data must be a tuple (X_val, y_val).") from exc
        images, _ = check_images(
            X_val, image_shape=image_shape, estimator_name=type(self).__name__, input_name="X_val"
        )
        if self.preprocessing in _SCALED:
            self._check_new_range(
                pixel_range(images),
                input_name="X_val",
                reference=input_range,
                input_scale=input_scale,
            )
        y_val = column_or_1d(y_val)
        check_consistent_length(images, y_val)
        unknown = np.setdiff1d(np.unique(y_val), classes)
        if unknown.size:
            raise ValueError(f"validation_data has labels not seen in y: {unknown.tolist()}.")
        return self._scale(images, input_scale), (y_val == classes[1]).astype(np.float32)

    def _seed(self):
        if self.random_state is None:
            return None
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _train(self, x, y01, weights, val_data, callbacks, warm, pool=None, thresholds=None):
        from ._network import build_network, describe_network, seeded

        seed = self._seed()
        stopper = None
        if val_data is not None:
            stopper = _best_epoch_callback(self.epochs if self.patience is None else self.patience)
        own = [c for c in (stopper, self._schedule_callback()) if c is not None]
        # a warm fit keeps the fitted network's pools (files saved before
        # pool_sizes_ existed lack it: their pools were the parameter's)
        if not warm or not hasattr(self, "pool_sizes_"):
            self.pool_sizes_ = self._pool_sizes_for(self.image_shape_)
        with seeded(seed):
            model = self.model_ if warm else build_network(**self._network_params())
            if pool is None:
                history = model.fit(
                    **self._training_batches(x, y01, weights, seed),
                    epochs=self.epochs,
                    validation_data=val_data,
                    callbacks=own + list(callbacks or []),
                    verbose=self.verbose,
                ).history
            else:
                history = self._train_consistency(
                    model,
                    x,
                    y01,
                    weights,
                    pool,
                    thresholds,
                    seed,
                    val_data,
                    own + list(callbacks or []),
                )
        self.model_ = model
        self.network_summary_ = describe_network(model)
        history = {key: [float(v) for v in values] for key, values in history.items()}
        self.history_ = _with_f1(history)
        self.n_epochs_ = len(self.history_["loss"])
        self.best_epoch_ = self.n_epochs_ if stopper is None else stopper.best_epoch + 1

    def _train_consistency(
        self, model, x, y01, weights, pool, thresholds, seed, val_data, callbacks
    ):
        from ._consistency import consistency_batches, fit_consistency

        batches = consistency_batches(
            x,
            y01,
            weights,
            pool,
            augment=self.augment,
            max_shift=self._shift_for(self.image_shape_),
            strong=tuple(self.unlabeled_augment),
            standardize=self.preprocessing == "standardize",
            batch_size=self.batch_size,
            ratio=int(self.unlabeled_ratio),
            seed=seed,
        )
        return fit_consistency(
            model,
            batches,
            weight=float(self.unlabeled_weight),
            entropy_weight=float(self.unlabeled_entropy_weight),
            thresholds=thresholds,
            epochs=self.epochs,
            val_data=val_data,
            callbacks=callbacks,
            verbose=self.verbose,
            warmup=int(self.unlabeled_warmup),
            threshold=float(self.threshold),
        )

    def _training_batches(self, x, y01, weights, seed):
        """Keras ``fit`` arguments for the training data: arrays, or a
        ``tf.data`` pipeline of freshly augmented batches."""
        max_shift = self._shift_for(self.image_shape_)
        if self.augment is None and not max_shift:
            return dict(x=x, y=y01, sample_weight=weights, batch_size=self.batch_size, shuffle=True)
        from ._network import augmented_batches

        batches = augmented_batches(
            x,
            y01,
            weights,
            augment=self.augment,
            max_shift=max_shift,
            batch_size=self.batch_size,
            seed=seed,
        )
        return dict(x=batches, shuffle=False)  # the dataset shuffles every epoch itself

    def _schedule_callback(self):
        from ._network import lr_schedule_callback

        return lr_schedule_callback(
            self.lr_schedule,
            learning_rate=float(self.learning_rate),
            epochs=self.epochs,
            patience=self.patience,
        )

    def _network_params(self):
        return dict(
            image_shape=self.image_shape_,
            conv_filters=_ints(self.conv_filters),
            kernel_size=int(self.kernel_size),
            pool_sizes=self.pool_sizes_,
            dense_units=_ints(self.dense_units),
            dropout=float(self.dropout),
            batch_norm=bool(self.batch_norm),
            padding=self.padding,
            learning_rate=float(self.learning_rate),
            local_size=self._local_size(),
            threshold=float(self.threshold),
            upsample_to=None if self.upsample_to is None else int(self.upsample_to),
        )

    # -------------------------------------------------------------- predict
    def _scale(self, images, input_scale):
        return scale_images(images, preprocessing=self.preprocessing, input_scale=input_scale)

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

        Raises
        ------
        TypeError
            For boolean, text or other non-numeric tiles.
        ValueError
            For tiles of another shape than the training tiles, or (with
            ``preprocessing="scale"`` or ``"local"``) integer tiles outside
            0..255 and tiles that clearly come from another range than the
            training tiles, e.g. ``X / 255.0`` for a model fitted on uint8
            tiles (the rule is in the class Notes).

        Warns
        -----
        UserWarning
            With ``preprocessing="scale"`` or ``"local"``, for tiles beyond both
            the training range and 0..``input_scale_`` (see the class Notes).
        """
        check_is_fitted(self, "model_")
        images, _ = check_images(
            X, image_shape=self.image_shape_, estimator_name=type(self).__name__
        )
        if self.preprocessing in _SCALED:
            self._check_new_range(pixel_range(images), input_name="X")
        p1 = self._positive_proba(images)
        return np.column_stack([1.0 - p1, p1])

    def _positive_proba(self, images):
        """p(``classes_[1]``) of checked, unscaled tiles, as float64.

        The tiles are scaled and predicted one batch at a time, so that the
        float32 copies never hold more than one batch, whatever the number of
        tiles. Keras' last float32 bit depends on the batch shape (a tile alone
        and in a batch of 20 differ): batches of one fixed size, the last one
        padded with zeros, make a tile's probability independent of the tiles
        predicted with it.
        """
        size = max(_PREDICT_BATCH, self.batch_size)
        n = images.shape[0]
        p1 = np.empty(n, dtype=np.float64)
        for start in range(0, n, size):
            x = self._scale(images[start : start + size], self.input_scale_)
            if x.shape[0] < size:
                x = np.concatenate([x, np.zeros((size - x.shape[0], *x.shape[1:]), x.dtype)])
            # predict_on_batch runs the same compiled step as predict, without
            # predict's per-call set-up (a tf.data pipeline), which would dominate
            batch = np.asarray(self.model_.predict_on_batch(x)).reshape(-1)
            p1[start : start + size] = batch[: min(size, n - start)]
        return p1

    def decision_function(self, X):
        """Signed score of ``classes_[1]``: positive exactly where :meth:`predict` gives it.

        The score is ``logit(p) - logit(threshold)``, in float64, where ``p`` is
        the probability of ``classes_[1]``. ``p`` and ``threshold`` are clipped
        to ``[1e-300, 1 - 2**-53]`` first, so that the score stays finite
        (p = 0 or 1, threshold = 0 or 1). Where ``p == threshold``, or where
        the clipping makes the two logits equal, the score is the smallest
        float of :meth:`predict`'s sign (``p >= threshold`` is positive), so it
        is never 0. It orders tiles as ``predict_proba`` does.

        Parameters
        ----------
        X : array-like
            Tiles, as in :meth:`predict_proba`.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``scores > 0`` exactly where ``predict`` returns ``classes_[1]``;
            ``FixedThresholdClassifier(clf, response_method="decision_function")``
            predicts as ``clf`` does.
        """
        p = self.predict_proba(X)[:, 1]
        t = float(self.threshold)
        score = _logit(p) - _logit(t)
        tiny = np.nextafter(0.0, 1.0)
        return np.where(p >= t, np.maximum(score, tiny), np.minimum(score, -tiny))

    def predict(self, X):
        """Predict labels: ``classes_[1]`` where its probability >= ``threshold``.

        Parameters
        ----------
        X : array-like
            Tiles, as in :meth:`predict_proba`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            ``classes_[1]`` exactly where :meth:`decision_function` is positive.
        """
        positive = self.decision_function(X) > 0  # checks that it is fitted
        return self.classes_[positive.astype(int)]

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
    # (3, 2, 1) on 48 px tiles, the size the preset was chosen on; other sizes
    # get pools that keep the last map about as small (4x4 or a little more),
    # where fixed pools left 28 px tiles 1x1 maps and 128 px tiles 18x18 ones
    pool_sizes="auto",
    # smaller tiles are enlarged to the 48 px the network was chosen on: on
    # Cohen28's 28 px tiles this beat pooling their own pixels (benchmarks/README.md)
    upsample_to=48,
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


#: EM estimates of the positive share outside this range get a warning.
_EM_PLAUSIBLE = (0.01, 0.99)


#: Probabilities are clipped to this range before their logit, to keep it finite:
#: the ends lie beyond every float32 probability strictly between 0 and 1.
_P_RANGE = (1e-300, 1.0 - 2.0**-53)


def _with_f1(history):
    """Add ``f1`` (and ``val_f1``) to a Keras history that has precision and recall."""
    for prefix in ("", "val_"):
        precision, recall = history.get(prefix + "precision"), history.get(prefix + "recall")
        if precision is not None and recall is not None:
            history[prefix + "f1"] = [
                0.0 if p + r == 0 else 2 * p * r / (p + r)
                for p, r in zip(precision, recall, strict=True)
            ]
    return history


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), *_P_RANGE)
    return np.log(p) - np.log1p(-p)


def _ints(values):
    return tuple(int(v) for v in values)


def _warn_if_extreme(share, positive):
    # EM runs away to 0 or 1 when the probabilities barely separate the
    # classes (a constant probability has no other fixed point): say so rather
    # than predict one class for every tile
    if not _EM_PLAUSIBLE[0] <= share <= _EM_PLAUSIBLE[1]:
        warnings.warn(
            f'unlabeled_prior="em" estimated that {share:.2%} of the unlabelled tiles are of '
            f"class {positive!r}: an estimate this extreme usually means that the network's "
            "probabilities barely separate the classes on these tiles. Check the network "
            "(train longer), or give the share as a float.",
            UserWarning,
            stacklevel=4,
        )


def _is_option(value, option):
    """Whether a parameter that also takes numbers or tuples holds the string ``option``."""
    return isinstance(value, str) and value == option


def _best_epoch_callback(patience):
    import keras

    return keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True
    )
