"""The Keras network behind :class:`skcrater.CraterCNNClassifier`.

Keras and TensorFlow are imported inside the functions that need them, so that
importing this module (and so ``skcrater``) stays cheap: the geometry checks
run before anything heavy is loaded.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random

import numpy as np

__all__ = [
    "AUGMENTATIONS",
    "LR_SCHEDULES",
    "augment_tiles",
    "shift_tiles",
    "augmented_batches",
    "check_geometry",
    "auto_pool_sizes",
    "upsampled_shape",
    "build_network",
    "describe_network",
    "lr_schedule_callback",
    "seeded",
]

# Each augmentation is a set of symmetries of the square; every training tile
# gets one of them, drawn uniformly, anew in every epoch. "k" rotates by k*90
# degrees (counter-clockwise), "lr"/"ud" mirror left-right / up-down.
# Mirroring or rotating a tile moves its shadows to where the sun would put
# them under another lighting direction, so which of these help is measured
# per image set (benchmarks/README.md), not assumed.
_IDENTITY = (0, False)
AUGMENTATIONS = {
    "flip_lr": (_IDENTITY, (0, True)),
    "flip_ud": (_IDENTITY, (2, True)),
    "rot180": (_IDENTITY, (2, False)),
    "flips": (_IDENTITY, (0, True), (2, True), (2, False)),
    "rot90": tuple((k, False) for k in range(4)),
    "dihedral": tuple((k, m) for k in range(4) for m in (False, True)),
}
#: Augmentations that turn h x w tiles into w x h ones (need square tiles).
TRANSPOSING = frozenset({"rot90", "dihedral"})

#: Learning-rate schedules of ``CraterCNNClassifier(lr_schedule=...)``.
LR_SCHEDULES = ("cosine", "plateau")


def _feature_sides(image_shape, conv_filters, kernel_size, pool_sizes, padding, local_size=None):
    """Yield the (h, w) after every stage: local normalisation, convolutions, poolings."""
    h, w = image_shape
    if local_size is not None:
        h, w = h - local_size + 1, w - local_size + 1
        yield "local contrast normalisation", h, w
    for pool in pool_sizes[: len(conv_filters)]:
        if padding == "valid":
            h, w = h - kernel_size + 1, w - kernel_size + 1
        yield "convolution", h, w
        h, w = h // pool, w // pool
        yield "pooling", h, w


def check_geometry(
    image_shape, *, conv_filters, kernel_size, pool_sizes, padding="valid", local_size=None
):
    """Raise ``ValueError`` if the network cannot run on images of this shape.

    Returns the (h, w) of the last feature map. ``pool_sizes`` has one entry
    per convolution block (``CraterCNNClassifier`` checks that first).
    """
    h, w = image_shape
    stages = _feature_sides(image_shape, conv_filters, kernel_size, pool_sizes, padding, local_size)
    for stage, h, w in stages:
        if h < 1 or w < 1:
            raise ValueError(
                f"Images of {image_shape[0]}x{image_shape[1]} pixels are too small for this "
                f"network: the feature map vanishes at a {stage} layer "
                f"(conv_filters={tuple(conv_filters)}, kernel_size={kernel_size}, "
                f"pool_sizes={tuple(pool_sizes)}, local_size={local_size}). Use larger images, "
                "fewer blocks or smaller pooling."
            )
    return h, w


#: The pooling sizes that ``pool_sizes="auto"`` chooses from, largest first.
AUTO_POOLS = (3, 2, 1)
#: Smallest side of the last feature map that ``pool_sizes="auto"`` leaves: what
#: the recommended network, chosen on 48 px tiles, leaves of them (4x4 maps).
AUTO_MIN_SIDE = 4


def _last_sides(image_shape, conv_filters, kernel_size, pools, padding, local_size):
    """(h, w) of the last feature map, or None if a map vanishes on the way."""
    h, w = image_shape
    for _, h, w in _feature_sides(
        image_shape, conv_filters, kernel_size, pools, padding, local_size
    ):
        if h < 1 or w < 1:
            return None
    return h, w


def auto_pool_sizes(image_shape, *, conv_filters, kernel_size, padding="valid", local_size=None):
    """Resolve ``pool_sizes="auto"`` for tiles of ``image_shape``.

    One pooling size per convolution block, each 3, 2 or 1, chosen block by
    block: each block pools by the largest of them that would still leave
    both sides of the last feature map at least :data:`AUTO_MIN_SIDE` pixels
    if the later blocks did not pool. Pooling early keeps the
    costly full-resolution stages few and bounds the flattened map whatever
    the tile size. The sides are counted without the local contrast layer
    (``local_size``), so that a tile size gets the same pools whatever the
    preprocessing (the detector's ``preprocessing="local"`` network on 48 px
    windows keeps its 2x2 last maps); choices whose maps vanish once that
    layer is counted are never taken. When no choice leaves
    :data:`AUTO_MIN_SIDE` pixels, no block pools.

    Raises ``ValueError`` when even that network's maps vanish.
    """
    conv_filters = tuple(conv_filters)
    args = (conv_filters, kernel_size)
    best = None
    # itertools.product runs through (3, 3, 3), (3, 3, 2), ... (1, 1, 1): in this
    # order the first choice that fits pools each block as much as it can
    for pools in itertools.product(AUTO_POOLS, repeat=len(conv_filters)):
        sides = _last_sides(image_shape, *args, pools, padding, None)
        if sides is None or min(sides) < AUTO_MIN_SIDE:
            continue
        if _last_sides(image_shape, *args, pools, padding, local_size) is not None:
            best = pools
            break
    if best is None:
        best = (1,) * len(conv_filters)
    if _last_sides(image_shape, *args, best, padding, local_size) is None:
        shrink = (kernel_size - 1) * len(conv_filters) if padding == "valid" else 0
        local = 0 if local_size is None else local_size - 1
        raise ValueError(
            f"Images of {image_shape[0]}x{image_shape[1]} pixels are too small for this "
            f"network even without pooling (pool_sizes='auto'): {len(conv_filters)} "
            f"convolution blocks of {kernel_size}x{kernel_size} kernels with "
            f"padding={padding!r}"
            + ("" if local_size is None else f" after local_size={local_size}")
            + f" need tiles of at least {shrink + local + 1} pixels a side. Use larger tiles, "
            "fewer convolution blocks (conv_filters) or padding='same'."
        )
    return best


def describe_network(model):
    """One line per layer of a Keras model: the layer, its settings and output shape.

    A compact, plain-text view of the network actually built (what
    ``CraterCNNClassifier.network_summary_`` holds); ``model.summary()`` gives
    Keras' own table.
    """
    lines = []
    for layer in model.layers:
        config = layer.get_config()
        kind = type(layer).__name__
        if kind == "Conv2D":
            k = "x".join(str(v) for v in config["kernel_size"])
            what = f"Conv2D({config['filters']}, {k}, {config['padding']})"
        elif kind == "MaxPooling2D":
            what = f"MaxPooling2D({config['pool_size'][0]})"
        elif kind == "Dense":
            what = f"Dense({config['units']}, {config['activation']})"
        elif kind == "Dropout":
            what = f"Dropout({config['rate']:g})"
        elif kind == "Activation":
            what = f"Activation({config['activation']})"
        else:
            what = kind
        shape = "x".join(str(v) for v in tuple(layer.output.shape)[1:])
        lines.append(f"{what:<28} -> {shape}")
    lines.append(f"{model.count_params()} parameters")
    return "\n".join(lines)


def upsampled_shape(image_shape, upsample_to):
    """The (h, w) a network enlarges tiles of ``image_shape`` to (``upsample_to``).

    Tiles whose shorter side is below ``upsample_to`` are scaled by one
    factor along both axes, so that the shorter side becomes ``upsample_to``;
    other tiles (and ``upsample_to=None``) keep their shape.
    """
    h, w = image_shape
    if upsample_to is None or min(h, w) >= upsample_to:
        return h, w
    factor = upsample_to / min(h, w)
    return max(upsample_to, round(h * factor)), max(upsample_to, round(w * factor))


def build_network(
    *,
    image_shape,
    conv_filters=(16, 32),
    kernel_size=3,
    pool_sizes=(3, 2),
    dense_units=(8,),
    dropout=0.5,
    batch_norm=False,
    padding="valid",
    learning_rate=3e-4,
    local_size=None,
    threshold=0.5,
    upsample_to=None,
):
    """Build and compile the CNN for binary classification.

    The default is the published crater recipe: Conv2D(16, 3x3, relu) ->
    MaxPool(3) -> Conv2D(32, 3x3, relu) -> MaxPool(2) -> Flatten -> Dense(8,
    relu) -> Dropout(0.5) -> Dense(1, sigmoid), Adam, binary cross-entropy.

    Parameters
    ----------
    image_shape : tuple of int
        ``(h, w)`` of the (single-channel) input tiles.
    conv_filters : sequence of int
        Filters of each convolution block.
    kernel_size : int
        Side of the square convolution kernels.
    pool_sizes : sequence of int
        Max-pooling size after each convolution block.
    dense_units : sequence of int
        Units of each hidden dense layer, each followed by dropout.
    dropout : float
        Dropout rate after each hidden dense layer.
    batch_norm : bool
        Insert batch normalisation after every convolution.
    padding : {"valid", "same"}
        Padding of the convolutions.
    learning_rate : float
        Adam's learning rate.
    local_size : int or None
        When given, the network first normalises each pixel by the mean and
        standard deviation of its ``local_size x local_size`` neighbourhood
        (``skcrater._layers``), which shrinks the maps by ``local_size - 1``.
    threshold : float
        Decision threshold of the precision and recall that Keras records
        every epoch (Keras counts ``p > threshold`` as positive).
    upsample_to : int or None
        When the tiles' shorter side is below it, the network first enlarges
        them by bilinear interpolation (a ``Resizing`` layer) to
        :func:`upsampled_shape`; every later layer works on the enlarged tiles.

    Returns
    -------
    model : keras.Model
        Compiled, with one sigmoid output giving p(class 1).
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(*image_shape, 1), name="tiles")
    x = inputs
    resized = upsampled_shape(image_shape, upsample_to)
    if resized != tuple(image_shape):
        x = layers.Resizing(*resized, interpolation="bilinear", name="upsample")(x)
    if local_size is not None:
        from ._layers import local_contrast_layer

        x = local_contrast_layer(local_size, name="local_contrast")(x)
    for filters, pool in zip(conv_filters, pool_sizes, strict=True):
        x = layers.Conv2D(filters, kernel_size, padding=padding, use_bias=not batch_norm)(x)
        if batch_norm:
            x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(pool)(x)
    x = layers.Flatten()(x)
    for units in dense_units:
        x = layers.Dense(units, activation="relu")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid", name="p_crater")(x)
    model = keras.Model(inputs, outputs, name="crater_cnn")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        # with precision and recall every epoch's F1 follows exactly (see CraterCNNClassifier)
        metrics=[
            "accuracy",
            keras.metrics.Precision(thresholds=threshold, name="precision"),
            keras.metrics.Recall(thresholds=threshold, name="recall"),
        ],
    )
    return model


def augment_tiles(images, augment, rng, max_shift=0):
    """Return a copy of ``(n, h, w, 1)`` tiles, each under a random symmetry
    and shifted by up to ``max_shift`` pixels along each axis.

    ``augment`` names an entry of :data:`AUGMENTATIONS` (None: no symmetry);
    ``rng`` is a NumPy ``Generator``. ``(0, True)`` mirrors left-right;
    ``(2, True)``, a half turn after that mirror, is the up-down mirror.
    """
    choices = AUGMENTATIONS[augment] if augment is not None else (_IDENTITY,)
    picks = rng.integers(len(choices), size=images.shape[0])
    out = np.empty_like(images)
    for i, (k, mirror) in enumerate(choices):
        rows = picks == i
        tiles = images[rows]
        if mirror:
            tiles = tiles[:, :, ::-1]
        out[rows] = np.rot90(tiles, k, axes=(1, 2))
    return shift_tiles(out, max_shift, rng) if max_shift else out


def shift_tiles(images, max_shift, rng):
    """Translate each ``(n, h, w, 1)`` tile by a random whole number of pixels in
    ``[-max_shift, max_shift]`` along each axis, mirroring the tile at its borders.

    A shift keeps the direction of the light, unlike mirrors and rotations.
    """
    n, h, w = images.shape[:3]
    s = int(max_shift)
    padded = np.pad(images, ((0, 0), (s, s), (s, s), (0, 0)), mode="reflect")
    dy, dx = rng.integers(0, 2 * s + 1, size=(2, n))
    rows = dy[:, None, None] + np.arange(h)[None, :, None]
    cols = dx[:, None, None] + np.arange(w)[None, None, :]
    return padded[np.arange(n)[:, None, None], rows, cols]


def augmented_batches(x, y, sample_weight, *, augment, max_shift, batch_size, seed):
    """A ``tf.data.Dataset`` of shuffled, freshly augmented mini-batches.

    Every pass over it (every epoch) draws a new order and new augmentations
    for the whole epoch at once, in NumPy from one generator seeded by
    ``seed``; a Python call per batch would cost more than the augmentation.
    Only the training data goes through it: validation and prediction see the
    tiles as they are.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    def epoch(_):
        order = rng.permutation(len(x))
        return augment_tiles(x[order], augment, rng, max_shift), y[order], sample_weight[order]

    def batched(tiles, labels, weights):
        tiles.set_shape((None, *x.shape[1:]))
        labels.set_shape((None, *y.shape[1:]))
        weights.set_shape((None,))
        return tf.data.Dataset.from_tensor_slices((tiles, labels, weights)).batch(batch_size)

    dtypes = (tf.as_dtype(x.dtype), tf.as_dtype(y.dtype), tf.as_dtype(sample_weight.dtype))
    return (
        tf.data.Dataset.range(1)
        .map(lambda e: tf.numpy_function(epoch, [e], dtypes, stateful=True))
        .flat_map(batched)
        # tells Keras the epoch length, which a numpy_function hides
        .apply(tf.data.experimental.assert_cardinality(-(-len(x) // batch_size)))
        .prefetch(2)
    )


def lr_schedule_callback(schedule, *, learning_rate, epochs, patience=None):
    """Keras callback for a learning-rate schedule name (None gives None).

    ``"cosine"`` decays the rate from ``learning_rate`` to 1% of it along a
    half cosine over ``epochs`` epochs. ``"plateau"`` halves it when the
    validation loss has not improved for ``max(2, patience // 3)`` epochs
    (3 without ``patience``), so that it decays before early stopping fires.
    """
    if schedule is None:
        return None
    import keras

    if schedule == "cosine":
        floor = 0.01 * learning_rate

        def rate(epoch, _current):
            progress = min(epoch / max(epochs - 1, 1), 1.0)
            return float(floor + (learning_rate - floor) * 0.5 * (1 + np.cos(np.pi * progress)))

        return keras.callbacks.LearningRateScheduler(rate)
    if schedule == "plateau":
        wait = 3 if patience is None else max(2, patience // 3)
        return keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=wait, min_lr=0.01 * learning_rate
        )
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES} or None, got {schedule!r}.")


@contextlib.contextmanager
def seeded(seed):
    """Seed Python, NumPy, TensorFlow and Keras and make TF ops deterministic.

    Everything is restored on exit, so that fitting one estimator with a
    ``random_state`` does not change the global random state of the caller.
    With ``seed=None`` nothing is touched.
    """
    if seed is None:
        yield
        return
    import keras
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    # keras.utils.set_random_seed reseeds the legacy global NumPy state; put it back after.
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    env = os.environ.get("TF_DETERMINISTIC_OPS")
    was_deterministic = tf_config.is_op_determinism_enabled()
    try:
        keras.utils.set_random_seed(int(seed))
        tf.config.experimental.enable_op_determinism()
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
        if env is None:
            os.environ.pop("TF_DETERMINISTIC_OPS", None)
        else:
            os.environ["TF_DETERMINISTIC_OPS"] = env
        if not was_deterministic:
            tf_config.disable_op_determinism()
