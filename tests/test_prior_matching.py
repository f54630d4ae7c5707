"""The prior discriminator's side of prior matching."""

import keras
import numpy as np
import pytest
from keras import ops

from dim_keras import objective
from dim_keras.backend import Trainer
from dim_keras.prior_matching import PriorMatchingMixin

# Every test here depends on the Keras backend: CI runs them on each.
pytestmark = pytest.mark.backend

WEIGHTS = np.array([[1.0], [-2.0], [0.5]], dtype="float32")


class _Prior(PriorMatchingMixin, Trainer):
    """The attributes the mixin reads, around a linear discriminator."""

    def __init__(self, gradient_penalty=1.0, linear=True):
        self.gradient_penalty = gradient_penalty
        self.seed_generator = keras.random.SeedGenerator(0)
        self.prior_discriminator = None
        if linear:
            self.prior_discriminator = keras.Sequential(
                [keras.Input((3,)), keras.layers.Dense(1)])
            self.prior_discriminator.layers[0].kernel.assign(WEIGHTS)


def value(x):
    return float(ops.convert_to_numpy(x))


def _samples(seed):
    return np.random.default_rng(seed).uniform(size=(4, 3)).astype("float32")


def test_discriminator_loss_and_its_gradient_penalty():
    prior = _Prior(gradient_penalty=0.5)
    samples, code = _samples(0), _samples(1)
    terms = prior.compute_discriminator_losses(code, prior_samples=samples)
    expected = objective.discriminator_loss(samples @ WEIGHTS, code @ WEIGHTS)
    assert value(terms["discriminator_loss"]) == pytest.approx(
        value(expected), rel=1e-5)
    # A linear discriminator's input gradient is its kernel everywhere.
    squared_norm = float(np.sum(WEIGHTS ** 2))  # 5.25
    assert value(terms["gradient_penalty"]) == pytest.approx(
        squared_norm, rel=1e-5)
    assert value(terms["discriminator_total"]) == pytest.approx(
        value(expected) + 0.5 * squared_norm, rel=1e-5)


def test_without_a_penalty_the_total_is_the_gan_loss():
    prior = _Prior(gradient_penalty=0.0)
    terms = prior.compute_discriminator_losses(
        _samples(1), prior_samples=_samples(0))
    assert value(terms["gradient_penalty"]) == 0.0
    assert value(terms["discriminator_total"]) == value(
        terms["discriminator_loss"])


def test_without_a_discriminator_every_term_is_zero():
    prior = _Prior(linear=False)
    terms = prior.compute_discriminator_losses(None)
    assert sorted(terms) == [
        "discriminator_loss", "discriminator_total", "gradient_penalty"]
    assert all(value(v) == 0.0 for v in terms.values())
    assert prior.discriminator_variables == []
    assert len(_Prior().discriminator_variables) == 2  # kernel and bias


def test_prior_samples_come_from_the_seed_generator():
    first = ops.convert_to_numpy(_Prior().sample_prior((200, 3)))
    again = ops.convert_to_numpy(_Prior().sample_prior((200, 3)))
    np.testing.assert_array_equal(first, again)
    assert first.min() >= 0.0 and first.max() < 1.0
    assert abs(first.mean() - 0.5) < 0.05
    prior = _Prior()
    prior.sample_prior((2, 3))
    assert not np.array_equal(
        ops.convert_to_numpy(prior.sample_prior((200, 3))), first)
