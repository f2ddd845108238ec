"""EM estimate of a new class prior, and Bayes' rule for it (skcrater._prior)."""

import numpy as np
import pytest
from scipy.special import expit, logit

from skcrater._prior import em_prior, logit_shift


def _calibrated(n, share, train_prior, seed=0):
    """Labels of positive share ``share`` and probabilities that are exact posteriors
    for a classifier trained where the positive share was ``train_prior``.

    Scores are N(+1, 1) for positives and N(-1, 1) for negatives, so the
    likelihood ratio is exp(2 s) and the posterior under ``train_prior`` is
    sigmoid(2 s + logit(train_prior)).
    """
    rng = np.random.default_rng(seed)
    y = rng.random(n) < share
    s = rng.normal(np.where(y, 1.0, -1.0), 1.0)
    return y, expit(2.0 * s + logit(train_prior))


@pytest.mark.parametrize("share", [0.1, 0.35, 0.6])
def test_em_recovers_the_share_of_calibrated_probabilities(share):
    y, p = _calibrated(20000, share, train_prior=0.45)
    assert em_prior(p, 0.45) == pytest.approx(y.mean(), abs=0.01)
    # the mean probability alone is biased towards the training share
    assert abs(p.mean() - y.mean()) > abs(em_prior(p, 0.45) - y.mean())


def test_em_keeps_the_training_share_when_nothing_changed():
    y, p = _calibrated(20000, 0.45, train_prior=0.45, seed=1)
    assert em_prior(p, 0.45) == pytest.approx(0.45, abs=0.01)


def test_em_estimate_is_the_fixed_point_of_em():
    _, p = _calibrated(2000, 0.2, train_prior=0.5, seed=2)
    share = em_prior(p, 0.5)
    # one EM step (Bayes' rule for the share, then the mean) leaves it where it is
    corrected = expit(logit(p) + logit_shift(0.5, share))
    assert corrected.mean() == pytest.approx(share, abs=1e-9)
    # and plain EM iterations from the training share end there too
    q = 0.5
    for _ in range(200):
        q = expit(logit(p) + logit_shift(0.5, q)).mean()
    assert q == pytest.approx(share, abs=1e-6)


@pytest.mark.parametrize(("p", "bound"), [(0.7, 1.0), (0.3, 0.0), (0.499, 0.0)])
def test_em_ends_at_the_bound_for_uninformative_probabilities(p, bound):
    # a constant probability other than the training share has no maximum inside (0, 1)
    share = em_prior(np.full(50, p), 0.5)
    assert share == pytest.approx(bound, abs=1e-5)
    assert np.isfinite(logit_shift(0.5, share))


def test_logit_shift_is_bayes_rule():
    assert logit_shift(0.3, 0.3) == 0.0
    # prior odds from 1:1 to 1:3 divide every odds by 3
    assert logit_shift(0.5, 0.25) == pytest.approx(-np.log(3.0))
    p = np.array([0.1, 0.5, 0.9])
    odds = p / (1 - p) * (0.25 / 0.75) / (0.5 / 0.5)
    assert expit(logit(p) + logit_shift(0.5, 0.25)) == pytest.approx(odds / (1 + odds))
