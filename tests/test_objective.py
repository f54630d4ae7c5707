"""DIM loss terms against hand computations."""

import math

import numpy as np
import pytest
from keras import ops

from dim_keras import objective

# Every test here depends on the Keras backend: CI runs them on each.
pytestmark = pytest.mark.backend


def value(x):
    return float(ops.convert_to_numpy(x))


def softplus(x):
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def test_local_nce_uses_every_location_of_other_images_as_negatives():
    rng = np.random.default_rng(0)
    n, num_locations = 3, 4
    scores = rng.normal(size=(n, num_locations, n))  # [image, location, y]
    expected = []
    for i in range(n):  # y_i
        negatives = [
            scores[k, l, i]
            for k in range(n)
            if k != i
            for l in range(num_locations)
        ]
        for l in range(num_locations):
            candidates = [scores[i, l, i]] + negatives
            log_softmax = scores[i, l, i] - math.log(
                sum(math.exp(c) for c in candidates)
            )
            expected.append(log_softmax)
    bound = math.log(1 + (n - 1) * num_locations) + np.mean(expected)
    assert value(objective.local_mi(scores, "nce")) == pytest.approx(
        bound, abs=1e-5
    )


def test_local_nce_is_at_most_log_candidates():
    scores = np.zeros((2, 3, 2), dtype="float32")
    scores[0, :, 0] = scores[1, :, 1] = 1e4
    assert value(objective.local_mi(scores, "nce")) == pytest.approx(
        math.log(1 + 1 * 3), abs=1e-5
    )


def test_local_jsd_averages_per_location_problems():
    scores = np.array(
        [[[1.0, -1.0], [2.0, 0.0]], [[0.5, 3.0], [-2.0, 1.5]]]
    )  # [image, location, y]
    positives = [1.0, 2.0, 3.0, 1.5]  # scores[i, l, i]
    negatives = [-1.0, 0.0, 0.5, -2.0]  # scores[i, l, j != i]
    expected = np.mean([-softplus(-p) for p in positives]) - np.mean(
        [softplus(q) for q in negatives]
    )
    assert value(objective.local_mi(scores, "jsd")) == pytest.approx(
        expected, abs=1e-5
    )


def test_prior_losses_closed_form():
    fake = np.array([[0.0], [2.0]])
    real = np.array([[1.0], [-1.0]])
    assert value(objective.generator_prior_loss(fake)) == pytest.approx(
        (softplus(0.0) + softplus(-2.0)) / 2, abs=1e-6
    )
    expected = (softplus(-1.0) + softplus(1.0)) / 2 + (
        softplus(0.0) + softplus(2.0)
    ) / 2
    assert value(objective.discriminator_loss(real, fake)) == pytest.approx(
        expected, abs=1e-6
    )


@pytest.mark.parametrize(
    "weights, match",
    [
        ((-1.0, 1.0, 0.1), "alpha=-1.0"),
        ((0.0, 0.0, 0.1), "alpha=0.0, beta=0.0"),
        ((0.0, 1.0, float("nan")), "gamma=nan"),
    ],
)
def test_bad_weights_are_refused(weights, match):
    with pytest.raises(ValueError, match=match):
        objective.check_weights(*weights)


def test_soft_clip_is_c_tanh_s_over_c():
    scores = np.array([-100.0, -1.0, 0.0, 0.5, 40.0], dtype="float32")
    clipped = ops.convert_to_numpy(objective.soft_clip(scores, 20.0))
    np.testing.assert_allclose(clipped, 20.0 * np.tanh(scores / 20.0),
                               rtol=1e-6)
    assert np.all(np.abs(clipped) < 20.0)
    # Near zero it is the identity to first order; 0 turns it off.
    assert clipped[3] == pytest.approx(0.5, rel=1e-3)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(objective.soft_clip(scores, 0.0)), scores)


def test_score_penalty_is_the_mean_square():
    scores = np.array([[1.0, -2.0], [3.0, 0.0]], dtype="float32")
    assert float(ops.convert_to_numpy(objective.score_penalty(scores))) == (
        pytest.approx(3.5))
