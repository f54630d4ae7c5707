"""TensorFlow training step: `tf.GradientTape` and two optimizers."""

import tensorflow as tf
from keras import ops

from dim_keras.backend.common import TrainerBase


class Trainer(TrainerBase):
    """Mixin giving `DeepInfoMax` its TensorFlow `train_step`."""

    def input_gradients(self, network, inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            total = ops.sum(network(inputs, training=True))
        return tape.gradient(total, inputs)

    # --- Distribution (tf.distribute) -------------------------------------
    # Under a strategy `train_step` runs once per replica and the optimizer
    # sums the replicas' gradients, so each replica's loss is divided by
    # the number of replicas: the update is that of the replicas' mean loss.

    def gather_replicas(self, x):
        """`x` of every replica, concatenated along the batch axis.

        Gradients flow back to each replica's own part. Outside a
        multi-replica strategy `x` is returned unchanged.

        Args:
            x: per-replica tensor `[n, ...]`.

        Returns:
            `[num_replicas * n, ...]`, replica 0's rows first.
        """
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return x
        gathered = context.all_gather(x, axis=0)
        if x.shape[0] is not None:  # all_gather forgets the static shape.
            shape = [x.shape[0] * context.num_replicas_in_sync] + x.shape[1:]
            gathered = tf.ensure_shape(gathered, shape)
        return gathered

    def _static_replica_batch(self, images):
        # MultiWorkerMirroredStrategy hands each replica batches of unknown
        # size; the estimators need it static. `replica_batch_size` is set
        # by whoever distributes the model (`dim_keras.training`).
        size = getattr(self, "replica_batch_size", None)
        if size and images.shape[0] is None:
            images = tf.ensure_shape(images, [size] + images.shape[1:])
        return images

    def compute_dim_gradients(self, images, prior_samples=None):
        """Loss terms and both gradients of one batch (no update).

        Under a multi-replica strategy each replica's losses are divided by
        the number of replicas (the optimizers sum the replicas'
        gradients), and with mixed float16 the losses are scaled by the
        optimizers' loss scale; otherwise these are the plain gradients.

        Args:
            images: `[N, H, W, 3]` raw images.
            prior_samples: `[N, D]` prior samples, or None to draw them.

        Returns:
            `(terms, encoder_grads, discriminator_grads)`, the gradients in
            the order of `encoder_variables` and `discriminator_variables`,
            ready for the optimizers' `apply`.
        """
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        with tf.GradientTape() as tape, tf.GradientTape() as d_tape:
            terms = self.compute_dim_losses(
                images, training=True, prior_samples=prior_samples
            )
            # scale_loss: loss scaling of mixed_float16 (identity otherwise).
            loss = self.optimizer.scale_loss(terms["loss"] / replicas)
            d_loss = self.discriminator_optimizer.scale_loss(
                terms["discriminator_total"] / replicas
            )
        grads = tape.gradient(loss, self.encoder_variables)
        d_grads = []
        if self.prior_discriminator is not None:
            d_grads = d_tape.gradient(d_loss, self.discriminator_variables)
        return terms, grads, d_grads

    def train_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        images = self._static_replica_batch(images)
        terms, grads, d_grads = self.compute_dim_gradients(images)
        self.optimizer.apply(grads, self.encoder_variables)
        if self.prior_discriminator is not None:
            self.discriminator_optimizer.apply(
                d_grads, self.discriminator_variables
            )
        logs = self.update_trackers(terms)
        if tf.distribute.has_strategy():
            # keras#20585: Keras reduces per-replica logs along axis 0, which
            # fails on scalars under MultiWorkerMirroredStrategy.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs
