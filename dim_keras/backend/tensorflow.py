"""TensorFlow training step: `tf.GradientTape` and two optimizers."""

import tensorflow as tf
from keras import ops


class Trainer:
    """Mixin giving `DeepInfoMax` its TensorFlow `train_step`."""

    def input_gradient_penalty(self, network, inputs):
        """Mean over samples of the squared norm of d network / d inputs.

        Args:
            network: a model mapping `[N, D]` to logits `[N, 1]`.
            inputs: `[N, D]` samples.

        Returns:
            Scalar penalty, differentiable w.r.t. the network's weights.
        """
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            total = ops.sum(network(inputs, training=True))
        grads = tape.gradient(total, inputs)
        return ops.mean(ops.sum(ops.square(grads), axis=-1))

    def compute_dim_gradients(self, images, prior_samples=None):
        """Loss terms and both gradients of one batch (no update).

        Args:
            images: `[N, H, W, 3]` raw images.
            prior_samples: `[N, D]` prior samples, or None to draw them.

        Returns:
            `(terms, encoder_grads, discriminator_grads)`, the gradients in
            the order of `encoder_variables` and `discriminator_variables`.
        """
        with tf.GradientTape() as tape, tf.GradientTape() as d_tape:
            terms = self.compute_dim_losses(
                images, training=True, prior_samples=prior_samples
            )
        grads = tape.gradient(terms["loss"], self.encoder_variables)
        d_grads = []
        if self.prior_discriminator is not None:
            d_grads = d_tape.gradient(
                terms["discriminator_total"], self.discriminator_variables
            )
        return terms, grads, d_grads

    def train_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        terms, grads, d_grads = self.compute_dim_gradients(images)
        self.optimizer.apply(grads, self.encoder_variables)
        if self.prior_discriminator is not None:
            self.discriminator_optimizer.apply(
                d_grads, self.discriminator_variables
            )
        return self.update_trackers(terms)
