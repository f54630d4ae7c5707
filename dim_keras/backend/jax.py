"""JAX training step: stateless, with three optimizers threaded through it.

Keras's JAX trainer passes `train_step(state, data)` the values of the
model's trainable, non-trainable, optimizer and metrics variables, and
writes back what the step returns. It knows one optimizer, `self.optimizer`
(the encoder's and the MI critics'); the prior discriminator's and the
online probe's optimizers ride in the metrics item of `state`, after the
trackers' variables: `dim_keras.backend.jax_state` says why there and owns
that layout.

The step takes two gradients: the encoder objective w.r.t. the encoder and
the MI critics (the discriminator's weights held fixed), then the
discriminator objective w.r.t. the discriminator's weights, on the
gradient-stopped codes of the first pass (only the small discriminator runs
twice). With the online probe and labelled images it takes a third: the
probe's loss w.r.t. its heads, on gradient-stopped features.
"""

import jax
import keras
from keras import ops

from dim_keras.backend.common import PROBE_LOSS_KEY
from dim_keras.backend.common import TrainerBase
from dim_keras.backend.common import split_batch
from dim_keras.backend.common import adapt_pipeline  # noqa: F401
from dim_keras.backend.common import prepare_model  # noqa: F401
from dim_keras.backend.common import supports_jit  # noqa: F401
from dim_keras.backend.jax_state import MetricsState
# The distribution mechanics: `dim_keras.distribute` finds them here.
from dim_keras.backend.jax_distribute import (  # noqa: F401
    broadcast_from_chief,
    broadcast_json_from_chief,
    cluster_from_environment,
    create_strategy,
    leave_processes,
    local_gpu_count,
)


def _apply(optimizer, optimizer_values, grads, trainable_values, positions):
    """One stateless optimizer step on some of the trainable values.

    Args:
        optimizer: the optimizer of those variables.
        optimizer_values: its variables' values.
        grads: the gradients, in the order of `positions`.
        trainable_values: list of every trainable value, updated in place
            at `positions`.
        positions: indices into `trainable_values`.

    Returns:
        The optimizer's new variable values.
    """
    values, optimizer_values = optimizer.stateless_apply(
        optimizer_values, grads, [trainable_values[i] for i in positions])
    for i, value in zip(positions, values):
        trainable_values[i] = value
    return optimizer_values


class Trainer(TrainerBase):
    """Mixin giving `DeepInfoMax` its JAX `train_step`."""

    def input_gradients(self, network, inputs):
        def total(x):
            return ops.sum(network(x, training=True))

        return jax.grad(total)(inputs)

    @property
    def metrics_variables(self):
        """The trackers' variables, then the discriminator optimizer's and
        the online probe optimizer's (`jax_state.MetricsState`)."""
        return self._metrics_state().variables

    def _metrics_state(self):
        """The layout of the metrics item of the train state.

        Returns:
            A `MetricsState` of the trackers and of the discriminator's and
            the probe's optimizers (None for one not in use).
        """
        discriminator = getattr(self, "discriminator_optimizer", None)
        if self.prior_discriminator is None:
            discriminator = None
        probe = getattr(self, "probe_optimizer", None)
        if not self.online_probe_classes:
            probe = None
        return MetricsState(self.metrics, [discriminator, probe])

    def _stateless_track(self, tracker_values, terms):
        """Updates the trackers' values with this step's loss terms.

        Args:
            tracker_values: a list of values per tracker, in the order of
                `self.trackers`.
            terms: dict of this step's loss terms.

        Returns:
            `(logs, tracker_values)`: the trackers' results and their new
            values.
        """
        logs, new_values = {}, []
        for (key, tracker), values in zip(self.trackers.items(),
                                          tracker_values):
            values = tracker.stateless_update_state(values, terms[key])
            logs[key] = tracker.stateless_result(values)
            new_values.append(values)
        return logs, new_values

    def _variable_positions(self):
        """Positions of encoder, discriminator and probe variables in the
        state."""
        position = {id(v): i for i, v in enumerate(self.trainable_variables)}
        encoder = [position[id(v)] for v in self.encoder_variables]
        discriminator = [
            position[id(v)] for v in self.discriminator_variables
        ]
        probe = [position[id(v)] for v in self.probe_variables]
        return encoder, discriminator, probe

    def stateless_dim_gradients(
        self,
        trainable_values,
        non_trainable_values,
        images,
        prior_samples=None,
        labels=None,
        probe_images=None,
    ):
        """Loss terms and the gradients from variable values.

        Args:
            trainable_values: values of `self.trainable_variables`.
            non_trainable_values: values of `self.non_trainable_variables`.
            images: `[N, H, W, 3]` raw images.
            prior_samples: `[N, D]` prior samples, or None to draw them.
            labels: `[N]` class ids (-1: unlabelled) for the online probe,
                or None.
            probe_images: the same images un-augmented, which the online
                probe learns from, or None (`compute_encoder_losses`).

        Returns:
            `(terms, encoder_grads, discriminator_grads, probe_grads,
            non_trainable_values)`: gradients in the order of
            `encoder_variables`, `discriminator_variables` and
            `probe_variables` (empty without the probe or labels), and the
            new non-trainable values (batch-norm statistics, seed state).
        """
        trainable = self.trainable_variables
        non_trainable = self.non_trainable_variables
        encoder_pos, discriminator_pos, probe_pos = (
            self._variable_positions())
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
                terms, code, features = self.compute_encoder_losses(
                    images, training=True, return_features=True,
                    probe_images=probe_images,
                )
            updated = [scope.get_current_value(v) for v in non_trainable]
            return terms["loss"], (terms, code, features, updated)

        (_, (terms, code, features, non_trainable_values)), grads = (
            jax.value_and_grad(encoder_objective, has_aux=True)(
                encoder_values, non_trainable_values))

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

        p_grads = []
        if self.online_probe_classes:
            if labels is None:
                terms.update(self.compute_probe_losses(features, None))
            else:
                features = jax.lax.stop_gradient(features)
                probe_vars = [trainable[i] for i in probe_pos]

                def probe_objective(probe_values):
                    mapping = list(zip(probe_vars, probe_values))
                    with keras.StatelessScope(state_mapping=mapping):
                        p_terms = self.compute_probe_losses(features, labels)
                    return p_terms[PROBE_LOSS_KEY], p_terms

                (_, p_terms), p_grads = jax.value_and_grad(
                    probe_objective, has_aux=True
                )([trainable_values[i] for i in probe_pos])
                terms.update(p_terms)
        return terms, grads, d_grads, p_grads, non_trainable_values

    def compute_dim_gradients(self, images, prior_samples=None, labels=None,
                              probe_images=None):
        """Loss terms and the gradients of one batch (no weight update).

        Like the TensorFlow and PyTorch versions, it updates the batch-norm
        statistics and the seed state.

        Args:
            images: `[N, H, W, 3]` raw images.
            prior_samples: `[N, D]` prior samples, or None to draw them.
            labels: `[N]` class ids for the online probe, or None.
            probe_images: the same images un-augmented, which the online
                probe learns from, or None.

        Returns:
            `(terms, encoder_grads, discriminator_grads, probe_grads)`.
        """
        # A fresh function each call: a cached trace would keep settings
        # (such as `estimator`) changed since.
        step = jax.jit(lambda *args: self.stateless_dim_gradients(*args))
        terms, grads, d_grads, p_grads, non_trainable_values = step(
            [v.value for v in self.trainable_variables],
            [v.value for v in self.non_trainable_variables],
            ops.convert_to_tensor(images),
            prior_samples,
            None if labels is None else ops.convert_to_tensor(labels),
            None if probe_images is None
            else ops.convert_to_tensor(probe_images),
        )
        for variable, value in zip(
            self.non_trainable_variables, non_trainable_values
        ):
            variable.assign(value)
        return terms, grads, d_grads, p_grads

    def train_step(self, state, data):
        (
            trainable_values,
            non_trainable_values,
            optimizer_values,
            metrics_values,
        ) = state
        images, labels, probe_images = split_batch(data)
        terms, grads, d_grads, p_grads, non_trainable_values = (
            self.stateless_dim_gradients(
                trainable_values, non_trainable_values, images,
                labels=labels, probe_images=probe_images,
            )
        )
        encoder_pos, discriminator_pos, probe_pos = self._variable_positions()
        trainable_values = list(trainable_values)

        optimizer_values = _apply(self.optimizer, optimizer_values, grads,
                                  trainable_values, encoder_pos)

        layout = self._metrics_state()
        tracker_values, (d_optimizer_values, p_optimizer_values) = (
            layout.split(metrics_values))
        logs, tracker_values = self._stateless_track(tracker_values, terms)

        if self.prior_discriminator is not None:
            d_optimizer_values = _apply(
                self.discriminator_optimizer, d_optimizer_values, d_grads,
                trainable_values, discriminator_pos)
        if p_grads:
            p_optimizer_values = _apply(
                self.probe_optimizer, p_optimizer_values, p_grads,
                trainable_values, probe_pos)

        state = (
            trainable_values,
            non_trainable_values,
            optimizer_values,
            layout.join(tracker_values,
                        [d_optimizer_values, p_optimizer_values]),
        )
        return logs, state
