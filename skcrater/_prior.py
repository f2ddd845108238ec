"""A change of class prior between labelled and unlabelled tiles (label shift).

Tiles of another region can hold another share of craters than the labelled
ones: Cohen28's West tiles are 45% craters, Center's 35%. A classifier whose
probabilities are calibrated on the labelled share over-predicts craters where
they are rarer. Bayes' rule corrects that without retraining, once the new
share is known: the odds of every tile are multiplied by the ratio of the new
prior odds to the old ones, i.e. the logit moves by a constant. The new share
can be estimated from the classifier's own probabilities on the unlabelled
tiles by the EM algorithm of Saerens, Latinne and Decaestecker (2002),
"Adjusting the outputs of a classifier to new a priori probabilities".
"""

from __future__ import annotations

import numpy as np

__all__ = ["em_prior", "logit_shift"]

#: Estimated shares are kept in this range, where their logit is finite.
_PRIOR_RANGE = (1e-6, 1.0 - 1e-6)


def em_prior(proba, train_prior):
    """Share of the positive class among unlabelled samples: the EM estimate.

    The share ``q`` that maximises the likelihood of the unlabelled samples
    under the classifier, ``sum(log(q * p / t + (1 - q) * (1 - p) / (1 - t)))``
    for probabilities ``p`` learnt under the share ``t``. It is the fixed
    point of Saerens et al.'s EM (correct each probability for the current
    share by Bayes' rule, take the mean as the next share), found directly:
    the likelihood is concave in ``q``, so its derivative has one root, which
    :func:`scipy.optimize.brentq` brackets, where EM itself can take
    thousands of steps when the probabilities barely separate the classes.

    Parameters
    ----------
    proba : array-like of shape (n_samples,)
        Positive-class probabilities of the unlabelled samples, from a
        classifier trained where that class had the share ``train_prior``.
    train_prior : float
        The positive share the classifier was trained on, in (0, 1).

    Returns
    -------
    prior : float
        The estimated positive share of the unlabelled samples, in
        ``[1e-6, 1 - 1e-6]`` (the likelihood's maximum can lie at 0 or 1,
        where the correction would not be finite).
    """
    from scipy.optimize import brentq

    p = np.asarray(proba, dtype=np.float64)
    a, b = p / train_prior, (1.0 - p) / (1.0 - train_prior)

    def slope(q):
        return float(np.sum((a - b) / (q * a + (1.0 - q) * b)))

    low, high = _PRIOR_RANGE
    if slope(low) <= 0.0:
        return low
    if slope(high) >= 0.0:
        return high
    return float(brentq(slope, low, high, xtol=1e-12))


def logit_shift(train_prior, new_prior):
    """What Bayes' rule adds to every logit when the positive share changes.

    ``logit(new_prior) - logit(train_prior)``: a probability ``p`` learnt
    under ``train_prior`` becomes ``sigmoid(logit(p) + shift)`` under
    ``new_prior``.
    """
    from scipy.special import logit

    return float(logit(new_prior) - logit(train_prior))
