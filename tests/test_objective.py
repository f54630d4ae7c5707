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


def test_scale_scores_divides_by_the_temperature():
    scores = np.array([[2.0, -6.0], [1.0, 0.5]], dtype="float32")
    scaled = objective.scale_scores(scores, 4.0)
    np.testing.assert_allclose(ops.convert_to_numpy(scaled),
                               [[0.5, -1.5], [0.25, 0.125]], rtol=1e-6)
    assert ops.convert_to_numpy(scaled).dtype == np.float32
    assert objective.scale_scores(scores, 1.0) is scores  # left alone


def _first_estimate(scores, estimator):
    """A stand-in estimate: the first score, to follow the transforms."""
    del estimator
    return ops.reshape(ops.cast(scores, "float32"), (-1,))[0]


def test_mean_estimate_scales_penalizes_then_clips():
    first = np.array([[8.0, 0.0]], dtype="float32")
    second = np.array([[-4.0, 4.0]], dtype="float32")
    estimate, penalties = objective.mean_estimate(
        [first, second], _first_estimate, "nce", temperature=2.0, clip=3.0,
        penalty=0.5)
    # Scaled: [4, 0] and [-2, 2]; clipped first scores 3 tanh(4/3) and
    # 3 tanh(-2/3); penalties 0.5 / 2 times the mean squares 8 and 4.
    expected = (3 * math.tanh(4 / 3) + 3 * math.tanh(-2 / 3)) / 2
    assert value(estimate) == pytest.approx(expected, rel=1e-6)
    assert [value(p) for p in penalties] == pytest.approx([2.0, 1.0])
    plain, none = objective.mean_estimate([first, second], _first_estimate,
                                          "nce")
    assert value(plain) == pytest.approx(2.0) and none == []


def test_mean_estimate_of_local_scores_is_the_mean_local_mi():
    rng = np.random.default_rng(1)
    scores = [rng.normal(size=(3, 4, 3)).astype("float32") for _ in range(2)]
    estimate, _ = objective.mean_estimate(scores, objective.local_mi, "jsd")
    expected = np.mean([value(objective.local_mi(s, "jsd")) for s in scores])
    assert value(estimate) == pytest.approx(expected, rel=1e-5)


def test_mi_loss_weighs_each_term_and_adds_the_penalties(monkeypatch):
    monkeypatch.setitem(objective.MI_ESTIMATES, "global_mi", _first_estimate)
    monkeypatch.setitem(objective.MI_ESTIMATES, "local_mi", _first_estimate)
    scores = {"global_mi": [np.array([[2.0]], "float32")],
              "local_mi": [np.array([[1.0]], "float32"),
                           np.array([[3.0]], "float32")]}
    estimates, loss = objective.mi_loss(
        scores, {"global_mi": 0.5, "local_mi": 2.0}, "nce", penalty=0.1)
    assert value(estimates["global_mi"]) == pytest.approx(2.0)
    assert value(estimates["local_mi"]) == pytest.approx(2.0)
    # Penalties: 0.1 * 4 for the global term, 0.05 * (1 + 9) for the local.
    assert value(loss) == pytest.approx(
        0.4 - 0.5 * 2.0 + 0.5 - 2.0 * 2.0, rel=1e-6)
    # A term without predictions is left out.
    estimates, loss = objective.mi_loss(
        dict(scores, global_mi=[]), {"global_mi": 0.5, "local_mi": 2.0},
        "nce")
    assert sorted(estimates) == ["local_mi"]
    assert value(loss) == pytest.approx(-4.0)
