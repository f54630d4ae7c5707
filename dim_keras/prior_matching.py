"""The prior discriminator's side of DIM's adversarial prior matching.

Prior matching is a GAN game: the encoder makes sigmoid(Y) look like
samples of the prior, Uniform[0, 1]^D (its term,
`objective.generator_prior_loss`, is part of the encoder's objective), and
the prior discriminator learns to tell the two apart with its own
optimizer, on gradient-stopped codes, plus an optional gradient penalty.
"""

import keras
from keras import ops

from dim_keras import objective


class PriorMatchingMixin:
    """The prior discriminator's part of `DeepInfoMax`: its variables,
    samples of the prior and its loss.

    The model holds `prior_discriminator` (None when `gamma` is 0),
    `gradient_penalty` (the penalty's weight) and `seed_generator`; its
    backend's `Trainer` gives `input_gradient_penalty`.
    """

    @property
    def discriminator_variables(self):
        """Trainable variables of the prior discriminator."""
        if self.prior_discriminator is None:
            return []
        return list(self.prior_discriminator.trainable_variables)

    def sample_prior(self, shape):
        """Samples of the prior, Uniform[0, 1]^D, from the seed generator."""
        return keras.random.uniform(shape, seed=self.seed_generator)

    def compute_discriminator_losses(
        self, code, training=True, prior_samples=None
    ):
        """The prior discriminator's objective on gradient-stopped codes.

        Args:
            code: `[N, D]` sigmoid(Y) with its gradient stopped, or None
                when `gamma` is 0.
            training: bool, passed to the discriminator.
            prior_samples: `[N, D]` prior samples, or None to draw them.

        Returns:
            Dict with `"discriminator_loss"`, `"gradient_penalty"` and
            `"discriminator_total"` (float32 scalars; zeros when `gamma`
            is 0).
        """
        zero = ops.zeros((), dtype="float32")
        terms = {
            "discriminator_loss": zero,
            "gradient_penalty": zero,
            "discriminator_total": zero,
        }
        if self.prior_discriminator is None:
            return terms
        if prior_samples is None:
            prior_samples = self.sample_prior(ops.shape(code))
        prior_samples = ops.cast(prior_samples, "float32")
        terms["discriminator_loss"] = objective.discriminator_loss(
            self.prior_discriminator(prior_samples, training=training),
            self.prior_discriminator(code, training=training),
        )
        total = terms["discriminator_loss"]
        if self.gradient_penalty > 0:
            samples = ops.concatenate([prior_samples, code], axis=0)
            terms["gradient_penalty"] = self.input_gradient_penalty(
                self.prior_discriminator, samples
            )
            total = total + self.gradient_penalty * terms["gradient_penalty"]
        terms["discriminator_total"] = total
        return terms
