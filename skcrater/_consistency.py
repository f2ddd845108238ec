"""Consistency training on unlabelled tiles (FixMatch-style), for
:class:`skcrater.CraterCNNClassifier` with ``unlabeled_weight > 0``.

Every training step takes a batch of labelled tiles and ``ratio`` times as
many unlabelled ones. The network's prediction on a *weak* view of each
unlabelled tile (the estimator's own augmentation: up-down mirror, shifts) is
its pseudo-label when it is confident enough; the network is then trained to
give that label to a *strong* view of the same tile (noise, blur, contrast,
gamma, cutout: photometric changes and occlusion that move no shadow, so the
direction of the light is kept). An optional entropy term pushes the
predictions on unlabelled tiles away from 0.5.

The loss of a step is::

    supervised + weight * mean(mask * bce(pseudo, p(strong)))
               + entropy_weight * mean(H(p(weak)))

with ``mask`` 1 where max(p, 1 - p) of the weak view (dropout off, no
gradient) reaches the threshold of its predicted class. Validation (best
epoch, early stopping, learning-rate schedule) sees labelled tiles only.

Keras and TensorFlow are imported inside the functions.
"""

from __future__ import annotations

import numpy as np

from ._network import augment_tiles

__all__ = ["STRONG_AUGMENTATIONS", "strong_augment", "consistency_batches", "fit_consistency"]

#: The operations of the strong view, applied in this order.
STRONG_AUGMENTATIONS = ("gamma", "contrast", "blur", "noise", "cutout")


def strong_augment(x, ops, rng, *, standardize):
    """Return a strongly augmented copy of scaled ``(n, h, w, 1)`` tiles.

    ``ops`` is a subset of :data:`STRONG_AUGMENTATIONS`; each tile draws its
    own strengths. ``gamma`` raises the tile, mapped to [0, 1] over its own
    range, to a power in [0.6, 1.6]; ``contrast`` scales deviations from the
    tile mean by [0.6, 1.4] and shifts it by up to 15% of its range;
    ``blur`` smooths half of the tiles with a 3x3 binomial kernel; ``noise``
    adds Gaussian noise of up to 10% of the tile's standard deviation;
    ``cutout`` fills a square of a quarter to a third of the side with the
    tile mean. With ``standardize`` the tiles are standardised again
    afterwards, as the network's input always is then.
    """
    x = np.array(x, dtype=np.float32, copy=True)
    n, h, w = x.shape[:3]
    axes = (1, 2, 3)
    if n == 0:
        return x
    if "gamma" in ops:
        lo = x.min(axis=axes, keepdims=True)
        span = np.maximum(x.max(axis=axes, keepdims=True) - lo, 1e-6)
        g = np.exp(rng.uniform(np.log(0.6), np.log(1.6), size=(n, 1, 1, 1))).astype(np.float32)
        x = lo + span * ((x - lo) / span) ** g
    if "contrast" in ops:
        mean = x.mean(axis=axes, keepdims=True)
        span = x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True)
        c = rng.uniform(0.6, 1.4, size=(n, 1, 1, 1)).astype(np.float32)
        b = rng.uniform(-0.15, 0.15, size=(n, 1, 1, 1)).astype(np.float32) * span
        x = mean + c * (x - mean) + b
    if "blur" in ops:
        rows = rng.random(n) < 0.5
        if rows.any():
            p = np.pad(x[rows], ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
            p = 0.25 * p[:, :-2] + 0.5 * p[:, 1:-1] + 0.25 * p[:, 2:]
            x[rows] = 0.25 * p[:, :, :-2] + 0.5 * p[:, :, 1:-1] + 0.25 * p[:, :, 2:]
    if "noise" in ops:
        sigma = rng.uniform(0.0, 0.1, size=(n, 1, 1, 1)) * x.std(axis=axes, keepdims=True)
        x = x + (sigma * rng.standard_normal(x.shape)).astype(np.float32)
    if "cutout" in ops:
        side = rng.integers(max(1, h // 4), max(2, h // 3 + 1), size=n)
        top = rng.integers(0, h - side + 1)
        left = rng.integers(0, w - side + 1)
        r, c = np.arange(h)[None, :], np.arange(w)[None, :]
        inside = ((r >= top[:, None]) & (r < (top + side)[:, None]))[:, :, None] & (
            (c >= left[:, None]) & (c < (left + side)[:, None])
        )[:, None, :]
        fill = np.broadcast_to(x.mean(axis=axes, keepdims=True), x.shape)
        x = np.where(inside[..., None], fill, x)
    if standardize:
        mean = x.mean(axis=axes, keepdims=True)
        x = (x - mean) / np.maximum(x.std(axis=axes, keepdims=True), 1e-6)
    return x.astype(np.float32)


def consistency_batches(
    x, y, sample_weight, u, *, augment, max_shift, strong, standardize, batch_size, ratio, seed
):
    """A ``tf.data.Dataset`` of ``((x, u_weak, u_strong), y, weight)`` batches.

    Every epoch draws, in NumPy from one generator seeded by ``seed``, a new
    order and augmentation of the labelled tiles (as
    :func:`skcrater._network.augmented_batches` does) and, for each of its
    batches, ``ratio * batch_size`` unlabelled tiles (the pool is cycled in
    fresh random orders), each as a weak and a strong view.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    n_steps = -(-len(x) // batch_size)
    n_u = n_steps * batch_size * ratio

    def epoch(_):
        order = rng.permutation(len(x))
        tiles = augment_tiles(x[order], augment, rng, max_shift)
        picks = np.concatenate([rng.permutation(len(u)) for _ in range(-(-n_u // len(u)))])[:n_u]
        weak = augment_tiles(u[picks], augment, rng, max_shift)
        return (
            tiles,
            y[order],
            sample_weight[order],
            weak,
            strong_augment(weak, strong, rng, standardize=standardize),
        )

    def batched(tiles, labels, weights, weak, strong_view):
        tiles.set_shape((None, *x.shape[1:]))
        labels.set_shape((None,))
        weights.set_shape((None,))
        weak.set_shape((None, *x.shape[1:]))
        strong_view.set_shape((None, *x.shape[1:]))
        labelled = tf.data.Dataset.from_tensor_slices((tiles, labels, weights)).batch(batch_size)
        pool = tf.data.Dataset.from_tensor_slices((weak, strong_view)).batch(batch_size * ratio)
        return tf.data.Dataset.zip(labelled, pool).map(
            lambda lab, unl: ((lab[0], unl[0], unl[1]), lab[1], lab[2])
        )

    dtypes = (tf.float32,) * 5
    return (
        tf.data.Dataset.range(1)
        .map(lambda e: tf.numpy_function(epoch, [e], dtypes, stateful=True))
        .flat_map(batched)
        .apply(tf.data.experimental.assert_cardinality(n_steps))
        .prefetch(2)
    )


def _trainer_class():
    import keras
    import tensorflow as tf

    class ConsistencyTrainer(keras.Model):
        """Trains ``network`` (shared weights) on labelled and unlabelled batches."""

        def __init__(self, network, *, weight, entropy_weight, thresholds, threshold=0.5):
            super().__init__(name="consistency_trainer")
            self.network = network
            self.weight = float(weight)
            self.entropy_weight = float(entropy_weight)
            # confidence each predicted class needs; 1.0 (or more) turns it off
            self.thresholds = tuple(float(t) for t in thresholds)
            # scales both unlabelled terms; 1.0 unless a warm-up ramps it up
            self.ramp = self.add_weight(
                shape=(), initializer="ones", trainable=False, name="unlabeled_ramp"
            )
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.accuracy = keras.metrics.BinaryAccuracy(name="accuracy")
            # as the supervised network records them, so that history_ has F1 in both modes
            self.precision = keras.metrics.Precision(thresholds=threshold, name="precision")
            self.recall = keras.metrics.Recall(thresholds=threshold, name="recall")
            self.share = keras.metrics.Mean(name="unlabeled_share")
            self.unlabeled_loss = keras.metrics.Mean(name="unlabeled_loss")

        @property
        def metrics(self):
            return [
                self.loss_tracker,
                self.accuracy,
                self.precision,
                self.recall,
                self.share,
                self.unlabeled_loss,
            ]

        def call(self, x, training=False):
            return self.network(x, training=training)

        def _supervised(self, x, y, w, training):
            p = self.network(x, training=training)
            loss = keras.losses.binary_crossentropy(tf.reshape(y, (-1, 1)), p)
            return p, tf.reduce_sum(loss * w) / tf.cast(tf.shape(y)[0], loss.dtype)

        def train_step(self, data):
            (x, u_weak, u_strong), y, w = data
            p_weak = tf.stop_gradient(tf.reshape(self.network(u_weak, training=False), (-1,)))
            pseudo = tf.cast(p_weak >= 0.5, tf.float32)
            confidence = tf.maximum(p_weak, 1.0 - p_weak)
            t0, t1 = self.thresholds
            needed = tf.where(pseudo > 0, t1, t0)
            mask = tf.cast((confidence >= needed) & (needed < 1.0), tf.float32)
            with tf.GradientTape() as tape:
                p, loss = self._supervised(x, y, w, training=True)
                unlabeled = tf.constant(0.0)
                if self.weight > 0:
                    p_strong = self.network(u_strong, training=True)
                    per_tile = keras.losses.binary_crossentropy(
                        tf.reshape(pseudo, (-1, 1)), p_strong
                    )
                    unlabeled = tf.reduce_mean(mask * per_tile)
                    loss = loss + self.ramp * self.weight * unlabeled
                if self.entropy_weight > 0:
                    q = tf.clip_by_value(self.network(u_weak, training=True), 1e-7, 1 - 1e-7)
                    entropy = -(q * tf.math.log(q) + (1 - q) * tf.math.log(1 - q))
                    loss = loss + self.ramp * self.entropy_weight * tf.reduce_mean(entropy)
            variables = self.network.trainable_variables
            gradients = tape.gradient(loss, variables)
            self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
            self.loss_tracker.update_state(loss)
            self.accuracy.update_state(tf.reshape(y, (-1, 1)), p, sample_weight=w)
            self.precision.update_state(tf.reshape(y, (-1, 1)), p)
            self.recall.update_state(tf.reshape(y, (-1, 1)), p)
            self.share.update_state(tf.reduce_mean(mask))
            self.unlabeled_loss.update_state(unlabeled)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            x, y = data[0], data[1]
            p, loss = self._supervised(x, y, tf.ones_like(tf.reshape(y, (-1,))), training=False)
            self.loss_tracker.update_state(loss)
            self.accuracy.update_state(tf.reshape(y, (-1, 1)), p)
            self.precision.update_state(tf.reshape(y, (-1, 1)), p)
            self.recall.update_state(tf.reshape(y, (-1, 1)), p)
            measured = (self.loss_tracker, self.accuracy, self.precision, self.recall)
            return {m.name: m.result() for m in measured}

    return ConsistencyTrainer


def _ramp_callback(warmup):
    import keras

    class Ramp(keras.callbacks.Callback):
        """Raise the unlabelled terms' scale linearly from 0 to 1 over ``warmup`` epochs."""

        def on_epoch_begin(self, epoch, logs=None):
            self.model.ramp.assign(min(1.0, epoch / warmup))

    return Ramp()


def fit_consistency(
    network,
    batches,
    *,
    weight,
    entropy_weight,
    thresholds,
    epochs,
    val_data,
    callbacks,
    verbose,
    warmup=0,
    threshold=0.5,
):
    """Train ``network`` in place with consistency batches; return Keras' history dict.

    With ``warmup`` > 0 the unlabelled terms start at 0 and reach their
    weights after ``warmup`` epochs (linearly). ``threshold`` is the decision
    threshold of the precision and recall recorded per epoch.
    """
    trainer = _trainer_class()(
        network,
        weight=weight,
        entropy_weight=entropy_weight,
        thresholds=thresholds,
        threshold=threshold,
    )
    if warmup:
        callbacks = [_ramp_callback(warmup), *callbacks]
    # the network's own optimizer: a warm_start fit goes on with its state
    trainer.compile(optimizer=network.optimizer)
    return trainer.fit(
        batches,
        epochs=epochs,
        validation_data=val_data,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,
    ).history
