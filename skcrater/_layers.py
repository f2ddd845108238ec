"""Keras layers of skcrater's networks (imported only once Keras is needed)."""

from __future__ import annotations

import functools

__all__ = ["local_contrast_layer", "new_with_layers", "register_layers"]


@functools.cache
def _layer_class():
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="skcrater")
    class LocalContrastNormalization(keras.layers.Layer):
        """Each pixel minus the mean of its ``size x size`` neighbourhood, over its std.

        The neighbourhood is centred on the pixel and lies inside the input
        ('valid'), so the output is ``size - 1`` pixels smaller in each
        direction. Being a convolution-like operation, it gives a pixel the
        same value in a cut tile as in the whole image, which per-tile
        standardisation does not; like it, it removes exposure and contrast
        (``a * x + b`` for ``a > 0`` gives the same output while the local std
        is well above ``epsilon``).
        """

        def __init__(self, size=15, epsilon=1e-3, **kwargs):
            super().__init__(**kwargs)
            self.size = int(size)
            self.epsilon = float(epsilon)

        def call(self, inputs):
            mean = self._box_mean(inputs)
            variance = ops.maximum(self._box_mean(ops.square(inputs)) - ops.square(mean), 0.0)
            half = (self.size - 1) // 2
            centre = inputs[:, half : half + ops.shape(mean)[1], half : half + ops.shape(mean)[2]]
            return (centre - mean) / ops.sqrt(variance + self.epsilon**2)

        def _box_mean(self, x):
            # two 1-D passes (2 * size operations a pixel, not size**2 as a 2-D
            # average pool), each summing the same pixels in the same order in a
            # cut tile as in a whole image
            column = ops.full((self.size, 1, 1, 1), 1.0 / self.size, dtype=x.dtype)
            row = ops.reshape(column, (1, self.size, 1, 1))
            x = ops.depthwise_conv(x, column, strides=1, padding="valid")
            return ops.depthwise_conv(x, row, strides=1, padding="valid")

        def compute_output_shape(self, input_shape):
            n, h, w, c = input_shape
            shrink = self.size - 1
            return (n, None if h is None else h - shrink, None if w is None else w - shrink, c)

        def get_config(self):
            return {**super().get_config(), "size": self.size, "epsilon": self.epsilon}

    return LocalContrastNormalization


def local_contrast_layer(size=15, epsilon=1e-3, **kwargs):
    """A new :class:`LocalContrastNormalization` Keras layer (see its docstring)."""
    return _layer_class()(size=size, epsilon=epsilon, **kwargs)


def register_layers():
    """Register skcrater's layers with Keras (for loading saved networks)."""
    _layer_class()


def new_with_layers(cls, holds_keras):
    """A bare ``cls`` for pickle to fill, Keras told of skcrater's layers first if needed.

    A pickled network is rebuilt inside its estimator's state, and in a fresh
    process (a Dask or joblib worker) nothing has imported skcrater's layers
    by then: Keras would not know them.
    """
    if holds_keras:
        register_layers()
    return cls.__new__(cls)
