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

    def train_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape, tf.GradientTape() as d_tape:
            terms = self.compute_dim_losses(images, training=True)
        encoder_variables = self.encoder_variables
        grads = tape.gradient(terms["loss"], encoder_variables)
        self.optimizer.apply(grads, encoder_variables)
        if self.prior_discriminator is not None:
            d_variables = self.discriminator_variables
            d_grads = d_tape.gradient(terms["discriminator_total"], d_variables)
            self.discriminator_optimizer.apply(d_grads, d_variables)
        return self.update_trackers(terms)
