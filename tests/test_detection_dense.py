"""Tests of skcrater.detection._dense: a dense scan computes what cut windows do."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from skcrater._layers import local_contrast_layer  # noqa: E402
from skcrater.detection._dense import (  # noqa: E402
    dense_scores,
    fully_convolutional,
    total_stride,
)

WINDOW = 24


def _model(padding="valid", extra=None):
    from keras import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input((WINDOW, WINDOW, 1))
    x = local_contrast_layer(5)(inputs)
    x = layers.Conv2D(4, 3, activation="relu", padding=padding)(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(6, 3)(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(3)(x)
    if extra is not None:
        x = extra(x)
    x = layers.Flatten()(x)
    x = layers.Dense(5, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel * 5, bias])  # spread the scores out
    return model


def _cut(image, stride, shape):
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return np.stack(
        [
            image[i * stride : i * stride + WINDOW, j * stride : j * stride + WINDOW]
            for i, j in zip(rows.ravel(), cols.ravel(), strict=True)
        ]
    )[..., np.newaxis]


@pytest.mark.parametrize(("stride", "band_pixels"), [(6, 2**22), (4, 2**22), (1, 2**22), (6, 500)])
def test_dense_scan_equals_the_network_on_cut_windows(stride, band_pixels):
    model = _model()
    assert total_stride(model) == 6
    image = np.random.default_rng(0).random((61, 70)).astype(np.float32)
    scores = dense_scores(
        fully_convolutional(model),
        image,
        window=WINDOW,
        stride=stride,
        period=6,
        band_pixels=band_pixels,
    )
    assert scores.shape == ((61 - WINDOW) // stride + 1, (70 - WINDOW) // stride + 1)
    expected = model.predict(_cut(image, stride, scores.shape), verbose=0).reshape(scores.shape)
    assert expected.std() > 0.01  # the scores are not all alike
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_same_padding_and_unknown_layers_are_refused():
    with pytest.raises(ValueError, match="padding='same'"):
        fully_convolutional(_model(padding="same"))
    from keras import layers

    with pytest.raises(ValueError, match="cannot be evaluated densely"):
        fully_convolutional(_model(extra=layers.GaussianNoise(0.1)))


def test_local_contrast_normalisation_ignores_exposure():
    layer = local_contrast_layer(7)
    tile = np.random.default_rng(0).random((1, 20, 20, 1)).astype(np.float32)
    out = np.asarray(layer(tile))
    darker = np.asarray(layer(0.3 * tile + 0.1))
    assert out.shape == (1, 14, 14, 1)
    np.testing.assert_allclose(darker, out, atol=2e-3)
