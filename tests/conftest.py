"""Shared fixtures: tiny networks and data so that the suite stays fast on 2 CPU cores."""

import os
from pathlib import Path

import numpy as np
import pytest

from skcrater import CraterCNNClassifier

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: Real data beside the project root (optional; tests using it skip when absent).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: A CraterCNNClassifier configuration that trains in well under a second on 16x16 tiles.
TINY_CNN = dict(
    conv_filters=(4,),
    pool_sizes=(2,),
    dense_units=(4,),
    dropout=0.0,
    epochs=2,
    batch_size=16,
    learning_rate=1e-2,
)


class RowImageCNN(CraterCNNClassifier):
    """A CraterCNNClassifier that reads a flat row of k features as a 1 x k image.

    It exists for scikit-learn's generic estimator checks, which feed tabular
    rows of 2, 3, 5, 10, ... features that are not square images: reading
    them as one-pixel-high images lets those checks exercise fit, predict,
    weights, pickling and the rest on data they can generate. Test only; use
    it with ``padding="same"`` and ``pool_sizes=(1,)`` so that a 1 x k image
    keeps a non-empty feature map.
    """

    def _flat_image_shape(self, n_features):
        return 1, n_features


@pytest.fixture
def tiny_cnn_params():
    """Keyword arguments of a tiny CraterCNNClassifier (a fresh dict per test)."""
    return dict(TINY_CNN)


def make_blob_images(n=48, side=16, random_state=0):
    """Separable toy tiles: class 1 has a dark disc in the centre; uint8, flattened."""
    rng = np.random.default_rng(random_state)
    y = np.arange(n) % 2
    rng.shuffle(y)
    X = rng.normal(128, 20, size=(n, side, side))
    yy, xx = np.mgrid[:side, :side]
    disc = (yy - side / 2) ** 2 + (xx - side / 2) ** 2 < (side / 4) ** 2
    X[y == 1] -= 70 * disc
    return np.clip(X, 0, 255).astype(np.uint8).reshape(n, -1), y


@pytest.fixture
def blob_images():
    """(X, y): 48 separable 16x16 toy tiles, flattened uint8, balanced labels 0/1."""
    return make_blob_images()


def require_shared(*parts):
    """Return a path under ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path
