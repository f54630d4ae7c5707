"""Estimators against closed forms and hand-derived values."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from dim_keras import estimators
from dim_keras.estimators import estimate

# Every test here depends on the Keras backend: CI runs them on each.
pytestmark = pytest.mark.backend


def softplus(x):
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def gaussian_scores(rho, n, seed=0):
    """Scores of the exact log density ratio on correlated Gaussian pairs.

    (x, y) ~ N(0, [[1, rho], [rho, 1]]): the optimal critic is
    T(x, y) = log p(x, y) / (p(x) p(y)), and I(X; Y) = -0.5 log(1 - rho^2).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    xi, yj = x[:, None], y[None, :]
    s = 1 - rho**2
    scores = -0.5 * math.log(s) - (
        rho**2 * xi**2 - 2 * rho * xi * yj + rho**2 * yj**2
    ) / (2 * s)
    return scores.astype("float32"), -0.5 * math.log(s)


def value(x):
    return float(ops.convert_to_numpy(x))


def test_jsd_matches_hand_computation():
    scores = np.array([[2.0, -1.0, 0.5], [0.0, -3.0, 1.5], [4.0, 2.5, 1.0]])
    positive = np.mean([-softplus(-2.0), -softplus(3.0), -softplus(-1.0)])
    negative = np.mean(
        [softplus(v) for v in (-1.0, 0.5, 0.0, 1.5, 4.0, 2.5)]
    )
    assert value(estimate(scores, "jsd")) == pytest.approx(
        positive - negative, abs=1e-5
    )


def test_jsd_maximum_is_two_log_two_bound():
    # A perfect critic (positives +inf, negatives -inf) reaches 0; the f-GAN
    # JSD form is at most 0 and at least -2 * log 2 for a constant critic 0.
    scores = np.zeros((4, 4), dtype="float32")
    assert value(estimate(scores, "jsd")) == pytest.approx(
        -2 * math.log(2), abs=1e-6
    )


def test_dv_matches_hand_computation():
    scores = np.array([[1.0, 0.0], [2.0, 3.0]])
    expected = 2.0 - math.log((math.exp(0.0) + math.exp(2.0)) / 2)
    assert value(estimate(scores, "dv")) == pytest.approx(expected, abs=1e-5)


def test_nce_matches_hand_computation():
    scores = np.array([[1.0, 0.0], [2.0, 3.0]])
    row0 = 1.0 - math.log(math.exp(1.0) + math.exp(0.0))
    row1 = 3.0 - math.log(math.exp(2.0) + math.exp(3.0))
    expected = math.log(2) + (row0 + row1) / 2
    assert value(estimate(scores, "nce")) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("estimator", ["dv", "nce"])
def test_optimal_critic_recovers_gaussian_mutual_information(estimator):
    scores, true_mi = gaussian_scores(rho=0.5, n=2000)
    got = value(estimate(scores, estimator))
    assert got == pytest.approx(true_mi, abs=0.03)


def test_nce_is_capped_by_log_n_and_saturates():
    # I = 1.96 nats but only 4 candidates: infoNCE must stay below log 4.
    values = [
        value(estimate(gaussian_scores(0.99, 4, seed=s)[0], "nce"))
        for s in range(200)
    ]
    assert max(values) <= math.log(4) + 1e-6
    assert np.mean(values) > 0.7 * math.log(4)


def test_leading_axes_are_averaged():
    rng = np.random.default_rng(1)
    stack = rng.normal(size=(3, 5, 5)).astype("float32")
    for name in estimators.ESTIMATORS:
        per_matrix = [value(estimate(m, name)) for m in stack]
        assert value(estimate(stack, name)) == pytest.approx(
            np.mean(per_matrix), abs=1e-5
        )


@pytest.mark.parametrize("estimator", ["jsd", "dv", "nce"])
def test_extreme_scores_give_finite_values_and_gradients(estimator):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradient check written with tf.GradientTape")
    import tensorflow as tf

    rng = np.random.default_rng(0)
    scores = tf.constant(
        rng.choice([-1e4, 1e4], size=(2, 6, 6)).astype("float32")
    )
    with tf.GradientTape() as tape:
        tape.watch(scores)
        result = estimate(scores, estimator)
    grad = tape.gradient(result, scores)
    assert np.isfinite(value(result))
    assert np.all(np.isfinite(grad.numpy()))


def test_dv_does_not_overflow_on_large_negatives():
    scores = np.full((3, 3), 500.0, dtype="float32")
    # exp(500) overflows float32; logsumexp does not: DV = 500 - 500 = 0.
    assert value(estimate(scores, "dv")) == pytest.approx(0.0, abs=1e-3)


def test_unknown_estimator_lists_the_names():
    with pytest.raises(ValueError, match="jsd, dv, nce.*Received: estimator='mine'"):
        estimate(np.zeros((2, 2)), "mine")


def test_non_square_scores_are_refused():
    with pytest.raises(ValueError, match="Received: scores.shape"):
        estimate(np.zeros((2, 3)), "jsd")
