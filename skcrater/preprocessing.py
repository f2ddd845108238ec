"""Exposure-invariant preprocessing of image tiles."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils._set_output import _get_output_config
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._images import standardize_tiles

__all__ = ["TileStandardizer"]


class TileStandardizer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standardise every tile (row) to zero mean and unit variance on its own.

    Real tiles differ in exposure from image to image, region to region and
    instrument to instrument. Subtracting each tile's mean grey level and
    dividing by its standard deviation removes both, so that the model after
    it cannot lean on absolute brightness or contrast. Unlike
    :class:`~sklearn.preprocessing.StandardScaler`, which standardises each
    *pixel* across tiles with statistics learnt in ``fit``, this transformer
    is stateless: a tile's output depends only on that tile.

    The same transform is built into
    :class:`~skcrater.CraterCNNClassifier` as ``preprocessing="standardize"``;
    use this class to put it in front of any other estimator (e.g. a
    :class:`~sklearn.linear_model.LogisticRegression` in a
    :class:`~sklearn.pipeline.Pipeline`).

    Attributes
    ----------
    n_features_in_ : int
        Features (pixels) per sample seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of ``X`` seen in ``fit``, when they are all strings
        (a pandas DataFrame, say).

    See Also
    --------
    sklearn.preprocessing.StandardScaler : Standardises features, not samples.
    sklearn.preprocessing.Normalizer : Rescales each sample to unit norm.

    Notes
    -----
    Input may be flat, ``(n_samples, n_pixels)``, or images, ``(n_samples,
    h, w)`` or ``(n_samples, h, w, 1)``; the output is float32 of the same
    shape. A constant tile becomes all zeros.

    Each output column is the standardised input column, so
    :meth:`get_feature_names_out` returns the input's names
    (``feature_names_in_``, else ``x0``, ``x1``, ...), and
    ``set_output(transform="pandas")`` (or ``"polars"``) returns a data frame
    with those columns for flat input. A data frame holds only flat tiles:
    with such an output, images raise a ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcrater import TileStandardizer
    >>> X = np.array([[0, 10, 20, 30], [100, 110, 120, 130]], dtype=np.uint8)
    >>> Xt = TileStandardizer().fit_transform(X)
    >>> np.allclose(Xt[0], Xt[1])
    True
    >>> Xt.mean(axis=1).round(6).tolist(), Xt.std(axis=1).round(6).tolist()
    ([0.0, 0.0], [1.0, 1.0])
    >>> TileStandardizer().fit(X).get_feature_names_out().tolist()
    ['x0', 'x1', 'x2', 'x3']
    """

    _parameter_constraints: dict = {}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check ``X`` and record its number of features; nothing is learnt.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, h, w[, 1])
            Tiles.
        y : None
            Ignored.

        Returns
        -------
        self : TileStandardizer
            The fitted transformer.
        """
        self._validate(X, reset=True)
        return self

    def transform(self, X):
        """Standardise each tile.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, h, w[, 1])
            Tiles, with as many pixels as in ``fit``.

        Returns
        -------
        X_std : ndarray of float32, same shape as ``X``
            Each tile with zero mean and unit standard deviation.
        """
        check_is_fitted(self)
        flat, shape = self._validate(X, reset=False)
        output = _get_output_config("transform", self)["dense"]
        if len(shape) > 2 and output != "default":
            raise ValueError(
                f"{type(self).__name__} is set to output {output} data frames, which hold "
                f"flat tiles only; got images of shape {shape}. Pass X.reshape(len(X), -1), "
                'or call set_output(transform="default") to keep the images\' shape.'
            )
        return standardize_tiles(flat).reshape(shape)

    def _validate(self, X, *, reset):
        """Return the tiles as 2-D rows and the input's shape.

        Images are flattened first so that ``n_features_in_`` counts pixels.
        """
        if not hasattr(X, "shape"):
            X = np.asarray(X)
        if len(X.shape) > 2:
            X = check_array(X, allow_nd=True, dtype="numeric", input_name="X", estimator=self)
            shape = X.shape
            X = X.reshape(shape[0], -1)
        else:
            shape = None
        X = validate_data(self, X, dtype="numeric", reset=reset)
        return X, X.shape if shape is None else shape

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
