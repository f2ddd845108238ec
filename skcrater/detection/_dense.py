"""Scoring every window of a whole image at once with a fully convolutional network.

A tile classifier built from 'valid' convolutions, max-pooling, pointwise
layers and dense layers computes, for a window, exactly what the same layers
compute on the whole image around that window, once each dense layer is
rewritten as the convolution it is (the first one with the size of the last
feature map, the others 1 x 1). Evaluated that way, overlapping windows share
all their work, and the output at ``[i, j]`` is the tile classifier's score of
the window whose top-left pixel is ``(i * P, j * P)``, P being the product of
the pooling strides. Other strides are assembled from shifted scans
("shift and stitch"): one scan per distinct offset modulo P.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fully_convolutional", "scan_function", "total_stride", "dense_scores"]

# layers that act on each pixel (or each window of pixels) alike, and so carry over unchanged
_CARRIED = (
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "Activation",
    "ReLU",
    "BatchNormalization",
    "LocalContrastNormalization",
    "Rescaling",
)


def fully_convolutional(model):
    """Rewrite a tile-classifier Keras ``model`` for inputs of any size.

    Parameters
    ----------
    model : keras.Model
        A chain of layers taking ``(h, w, 1)`` tiles: 'valid' convolutions and
        poolings, activations, batch normalisation, local contrast
        normalisation, dropout, one ``Flatten`` and dense layers.

    Returns
    -------
    dense : keras.Model
        Takes ``(rows, cols, 1)`` images; its ``(rows', cols', units)``
        output at ``[i, j]`` is ``model``'s output on the window whose
        top-left pixel is ``(i * P, j * P)``, with ``P`` from
        :func:`total_stride`.

    Raises
    ------
    ValueError
        For a layer that does not commute with sliding the window ('same'
        padding, global pooling, anything unknown).
    """
    import keras

    inputs = keras.Input(shape=(None, None, model.input_shape[-1]), name="image")
    x, flat_shape = inputs, None
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("InputLayer", "Dropout"):
            continue
        if kind == "Flatten":
            flat_shape = tuple(layer.input.shape[1:])
            continue
        if kind == "Dense":
            x = _dense_as_conv(layer, x, flat_shape)
            flat_shape = None
            continue
        _check_slidable(layer, kind)
        clone = type(layer).from_config(layer.get_config())
        x = clone(x)
        clone.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name=f"{model.name}_dense")


def _check_slidable(layer, kind):
    if kind not in _CARRIED:
        raise ValueError(
            f"Layer {layer.name!r} ({kind}) cannot be evaluated densely over an image; "
            f"supported layers: {', '.join(_CARRIED)}, Dropout, Flatten and Dense."
        )
    if getattr(layer, "padding", "valid") != "valid":
        raise ValueError(
            f"Layer {layer.name!r} uses padding={layer.padding!r}: a window then sees zeros at "
            "its border where the whole image has pixels. Dense scoring needs 'valid' padding "
            "(CraterCNNClassifier(padding='valid'))."
        )
    strides = getattr(layer, "strides", (1, 1))
    pool = getattr(layer, "pool_size", None)
    if kind == "Conv2D" and tuple(strides) != (1, 1):
        raise ValueError(f"Layer {layer.name!r}: dense scoring needs convolutions of stride 1.")
    if pool is not None and tuple(strides) != tuple(pool):
        raise ValueError(f"Layer {layer.name!r}: dense scoring needs pooling strides = pool sizes.")


def _dense_as_conv(layer, x, flat_shape):
    from keras import layers

    kernel, bias = layer.get_weights()
    units = kernel.shape[1]
    if flat_shape is not None:
        kernel = kernel.reshape(*flat_shape, units)  # Flatten is row-major over (h, w, c)
    else:
        kernel = kernel.reshape(1, 1, *kernel.shape)
    conv = layers.Conv2D(
        units, kernel.shape[:2], activation=layer.activation, name=f"{layer.name}_as_conv"
    )
    out = conv(x)
    conv.set_weights([kernel, bias])
    return out


def scan_function(dense):
    """``dense`` as one callable ``batch -> scores``, traced once into a graph on TensorFlow.

    Called eagerly, a Keras model dispatches each layer's operations one by
    one; a :func:`tf.function` with a shape-free signature runs the whole
    network as one graph, for bands of any size, without retracing.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda batch: dense(batch, training=False)
    import tensorflow as tf

    spec = tf.TensorSpec((None, None, None, dense.input_shape[-1]), tf.float32)
    return tf.function(lambda batch: dense(batch, training=False), input_signature=[spec])


def total_stride(model):
    """Product of the pooling strides of ``model``: the natural step of its dense scan."""
    stride = 1
    for layer in model.layers:
        if type(layer).__name__ in ("MaxPooling2D", "AveragePooling2D"):
            stride *= int(layer.strides[0])
    return stride


def dense_scores(dense, image, *, window, stride, period, band_pixels=2**20, progress=None):
    """Scores of every ``window``-sized window at steps of ``stride`` pixels.

    Parameters
    ----------
    dense : keras.Model or callable
        From :func:`fully_convolutional` (with one output unit), or the
        :func:`scan_function` of one.
    image : ndarray of shape (rows, cols), or an object with ``shape`` and ``rows(start, stop)``
        Already scaled as the network's tiles are (float32); an object
        (:class:`~skcrater.detection._sampling.ScaledImage`) is asked for one
        band of rows at a time.
    window : int
        Side of the windows (the tile size).
    stride : int
        Step between window positions, in pixels.
    period : int
        The dense model's own step (:func:`total_stride`).
    band_pixels : int, default=2**20
        Rows are scanned in bands of about this many input pixels, so that
        memory does not grow with the image.
    progress : callable or None, default=None
        Called after each band with the number of output rows it gave.

    Returns
    -------
    scores : ndarray of shape ((rows - window) // stride + 1, (cols - window) // stride + 1)
        Element ``[i, j]`` scores the window whose top-left pixel is
        ``(i * stride, j * stride)``.
    """
    rows, cols = image.shape
    band_rows = getattr(image, "rows", lambda start, stop: image[start:stop])
    shape = ((rows - window) // stride + 1, (cols - window) // stride + 1)
    out = np.empty(shape, dtype=np.float32)
    per_band = max(1, band_pixels // max(cols, 1) // stride)
    for start in range(0, shape[0], per_band):
        stop = min(start + per_band, shape[0])
        band = band_rows(start * stride, (stop - 1) * stride + window)
        out[start:stop] = _stitched(dense, band, window, stride, period, (stop - start, shape[1]))
        if progress is not None:
            progress(stop - start)
    return out


def _stitched(dense, image, window, stride, period, shape):
    """One band: a dense scan per distinct offset modulo ``period``, interleaved."""
    out = np.empty(shape, dtype=np.float32)
    offsets = [(np.arange(n) * stride) % period for n in shape]
    cells = [(np.arange(n) * stride) // period for n in shape]
    for oy in np.unique(offsets[0]):
        for ox in np.unique(offsets[1]):
            rows = offsets[0] == oy
            cols = offsets[1] == ox
            need = (cells[0][rows].max() * period + window, cells[1][cols].max() * period + window)
            part = image[oy : oy + need[0], ox : ox + need[1]]
            batch = np.ascontiguousarray(part[np.newaxis, ..., np.newaxis], dtype=np.float32)
            scores = np.asarray(dense(batch))[0, ..., 0]
            out[np.ix_(rows, cols)] = scores[np.ix_(cells[0][rows], cells[1][cols])]
    return out
