"""JAX training step: stateless, with two optimizers threaded through it.

Keras's JAX trainer passes `train_step(state, data)` the values of the
model's trainable, non-trainable, optimizer and metrics variables, and
writes back what the step returns. It knows one optimizer, `self.optimizer`;
the prior discriminator's optimizer would be left out of `state`, so its
slots would never change inside a compiled step. Here its variables ride
along with the metrics variables (`metrics_variables` lists the trackers'
variables, then the discriminator optimizer's), which Keras threads through
every step, writes back to the model, and shards like the rest of the state.

The step takes two gradients: the encoder objective w.r.t. the encoder and
the MI critics (the discriminator's weights held fixed), then the
discriminator objective w.r.t. the discriminator's weights, on the
gradient-stopped codes of the first pass (only the small discriminator runs
twice).
"""

import jax
import keras
from keras import ops

from dim_keras.backend.common import TrainerBase
from dim_keras.backend.common import adapt_pipeline  # noqa: F401
from dim_keras.backend.common import prepare_model  # noqa: F401
from dim_keras.backend.common import supports_jit  # noqa: F401


def local_gpu_count():
    """Number of GPUs JAX sees in this process."""
    return sum(d.platform == "gpu" for d in jax.local_devices())


def create_strategy(name):
    """Creates the `keras.distribution` that `name` asks for.

    `"multi-worker"` first joins the processes with
    `keras.distribution.initialize()` (configured by
    `KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES`,
    `KERAS_DISTRIBUTION_PROCESS_ID`); both then run data parallelism over
    every device of every process: one program over the whole (sharded)
    global batch.

    Args:
        name: `"data-parallel"` or `"multi-worker"`.

    Returns:
        `(distribution, num_replicas, process_index, process_count)`.
    """
    if name == "multi-worker":
        keras.distribution.initialize()
    devices = keras.distribution.list_devices()
    distribution = keras.distribution.DataParallel(devices=devices)
    return (distribution, len(devices), jax.process_index(),
            jax.process_count())


class Trainer(TrainerBase):
    """Mixin giving `DeepInfoMax` its JAX `train_step`."""

    def input_gradients(self, network, inputs):
        def total(x):
            return ops.sum(network(x, training=True))

        return jax.grad(total)(inputs)

    @property
    def metrics_variables(self):
        """The trackers' variables, then the discriminator optimizer's."""
        variables = []
        for metric in self.metrics:
            variables.extend(metric.variables)
        optimizer = getattr(self, "discriminator_optimizer", None)
        if optimizer is not None and self.prior_discriminator is not None:
            variables.extend(optimizer.variables)
        return variables

    def _variable_positions(self):
        """Positions of encoder and discriminator variables in the state."""
        position = {id(v): i for i, v in enumerate(self.trainable_variables)}
        encoder = [position[id(v)] for v in self.encoder_variables]
        discriminator = [
            position[id(v)] for v in self.discriminator_variables
        ]
        return encoder, discriminator

    def stateless_dim_gradients(
        self,
        trainable_values,
        non_trainable_values,
        images,
        prior_samples=None,
    ):
        """Loss terms and both gradients from variable values.

        Args:
            trainable_values: values of `self.trainable_variables`.
            non_trainable_values: values of `self.non_trainable_variables`.
            images: `[N, H, W, 3]` raw images.
            prior_samples: `[N, D]` prior samples, or None to draw them.

        Returns:
            `(terms, encoder_grads, discriminator_grads,
            non_trainable_values)`: gradients in the order of
            `encoder_variables` and `discriminator_variables`, and the new
            non-trainable values (batch-norm statistics, seed state).
        """
        trainable = self.trainable_variables
        non_trainable = self.non_trainable_variables
        encoder_pos, discriminator_pos = self._variable_positions()
        encoder_vars = [trainable[i] for i in encoder_pos]
        discriminator_vars = [trainable[i] for i in discriminator_pos]
        encoder_values = [trainable_values[i] for i in encoder_pos]
        discriminator_values = [trainable_values[i] for i in discriminator_pos]

        def encoder_objective(encoder_values, non_trainable_values):
            mapping = (
                list(zip(encoder_vars, encoder_values))
                + list(zip(discriminator_vars, discriminator_values))
                + list(zip(non_trainable, non_trainable_values))
            )
            with keras.StatelessScope(state_mapping=mapping) as scope:
                terms, code = self.compute_encoder_losses(
                    images, training=True
                )
            updated = [scope.get_current_value(v) for v in non_trainable]
            return terms["loss"], (terms, code, updated)

        (_, (terms, code, non_trainable_values)), grads = jax.value_and_grad(
            encoder_objective, has_aux=True
        )(encoder_values, non_trainable_values)

        d_grads = []
        if self.prior_discriminator is not None:
            code = jax.lax.stop_gradient(code)

            def discriminator_objective(
                discriminator_values, non_trainable_values
            ):
                mapping = list(
                    zip(discriminator_vars, discriminator_values)
                ) + list(zip(non_trainable, non_trainable_values))
                with keras.StatelessScope(state_mapping=mapping) as scope:
                    d_terms = self.compute_discriminator_losses(
                        code, training=True, prior_samples=prior_samples
                    )
                updated = [scope.get_current_value(v) for v in non_trainable]
                return d_terms["discriminator_total"], (d_terms, updated)

            (_, (d_terms, non_trainable_values)), d_grads = (
                jax.value_and_grad(discriminator_objective, has_aux=True)(
                    discriminator_values, non_trainable_values
                )
            )
            terms.update(d_terms)
        else:
            terms.update(self.compute_discriminator_losses(None))
        return terms, grads, d_grads, non_trainable_values

    def compute_dim_gradients(self, images, prior_samples=None):
        """Loss terms and both gradients of one batch (no weight update).

        Like the TensorFlow and PyTorch versions, it updates the batch-norm
        statistics and the seed state.

        Args:
            images: `[N, H, W, 3]` raw images.
            prior_samples: `[N, D]` prior samples, or None to draw them.

        Returns:
            `(terms, encoder_grads, discriminator_grads)`.
        """
        # A fresh function each call: a cached trace would keep settings
        # (such as `estimator`) changed since.
        step = jax.jit(lambda *args: self.stateless_dim_gradients(*args))
        terms, grads, d_grads, non_trainable_values = step(
            [v.value for v in self.trainable_variables],
            [v.value for v in self.non_trainable_variables],
            ops.convert_to_tensor(images),
            prior_samples,
        )
        for variable, value in zip(
            self.non_trainable_variables, non_trainable_values
        ):
            variable.assign(value)
        return terms, grads, d_grads

    def train_step(self, state, data):
        (
            trainable_values,
            non_trainable_values,
            optimizer_values,
            metrics_values,
        ) = state
        images = data[0] if isinstance(data, (tuple, list)) else data
        terms, grads, d_grads, non_trainable_values = (
            self.stateless_dim_gradients(
                trainable_values, non_trainable_values, images
            )
        )
        encoder_pos, discriminator_pos = self._variable_positions()
        trainable_values = list(trainable_values)

        encoder_values, optimizer_values = self.optimizer.stateless_apply(
            optimizer_values, grads, [trainable_values[i] for i in encoder_pos]
        )
        for i, value in zip(encoder_pos, encoder_values):
            trainable_values[i] = value

        tracker_values = []
        logs = {}
        offset = 0
        for key, tracker in self.trackers.items():
            count = len(tracker.variables)
            values = tracker.stateless_update_state(
                metrics_values[offset : offset + count], terms[key]
            )
            logs[key] = tracker.stateless_result(values)
            tracker_values.extend(values)
            offset += count
        d_optimizer_values = list(metrics_values[offset:])

        if self.prior_discriminator is not None:
            d_values, d_optimizer_values = (
                self.discriminator_optimizer.stateless_apply(
                    d_optimizer_values,
                    d_grads,
                    [trainable_values[i] for i in discriminator_pos],
                )
            )
            for i, value in zip(discriminator_pos, d_values):
                trainable_values[i] = value

        state = (
            trainable_values,
            non_trainable_values,
            optimizer_values,
            tracker_values + list(d_optimizer_values),
        )
        return logs, state
