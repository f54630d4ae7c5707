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

import json
import os
import socket
import time

import jax
import keras
import numpy as np
from keras import ops

from dim_keras.backend.common import PROBE_LOSS_KEY
from dim_keras.backend.common import TrainerBase
from dim_keras.backend.common import split_batch
from dim_keras.backend.common import adapt_pipeline  # noqa: F401
from dim_keras.backend.common import prepare_model  # noqa: F401
from dim_keras.backend.common import supports_jit  # noqa: F401


def local_gpu_count():
    """Number of GPUs JAX sees in this process."""
    return sum(d.platform == "gpu" for d in jax.local_devices())


# The environment variables of `keras.distribution.initialize()`.
JOB_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
# Seconds a process waits for all processes to join before giving up.
JOIN_TIMEOUT = "DIM_KERAS_JOIN_TIMEOUT"
DEFAULT_JOIN_TIMEOUT = 120


def cluster_from_environment(environ=None):
    """Reads and checks the multi-process settings from the environment.

    Args:
        environ: mapping of environment variables; None for `os.environ`.

    Returns:
        `(coordinator_address, num_processes, process_id, timeout)`: the
        coordinator is the first of the job addresses.

    Raises:
        ValueError: when a variable is missing or malformed.
    """
    environ = os.environ if environ is None else environ
    names = (JOB_ADDRESSES, NUM_PROCESSES, PROCESS_ID)
    missing = [name for name in names if not environ.get(name)]
    if missing:
        raise ValueError(
            "--distribute multi-worker on JAX needs "
            f"{JOB_ADDRESSES} (the coordinator's host:port, process 0's), "
            f"{NUM_PROCESSES} and {PROCESS_ID} in every process's "
            f"environment. Received: {', '.join(missing)} unset"
        )
    addresses = [a.strip() for a in environ[JOB_ADDRESSES].split(",")]
    coordinator = addresses[0]
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            f"{JOB_ADDRESSES} must start with the coordinator's host:port. "
            f"Received: {JOB_ADDRESSES}={environ[JOB_ADDRESSES]!r}"
        )
    values = {}
    for name in (NUM_PROCESSES, PROCESS_ID):
        try:
            values[name] = int(environ[name])
        except ValueError:
            raise ValueError(
                f"{name} must be an integer. Received: "
                f"{name}={environ[name]!r}"
            ) from None
    num_processes, process_id = values[NUM_PROCESSES], values[PROCESS_ID]
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(
            f"{PROCESS_ID} must be in [0, {NUM_PROCESSES}). Received: "
            f"{NUM_PROCESSES}={num_processes}, {PROCESS_ID}={process_id}"
        )
    if len(addresses) > 1 and len(addresses) != num_processes:
        raise ValueError(
            f"{JOB_ADDRESSES} lists {len(addresses)} addresses for "
            f"{num_processes} processes. Received: "
            f"{JOB_ADDRESSES}={environ[JOB_ADDRESSES]!r}"
        )
    try:
        timeout = int(environ.get(JOIN_TIMEOUT, DEFAULT_JOIN_TIMEOUT))
        if timeout < 1:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{JOIN_TIMEOUT} must be a positive number of seconds. "
            f"Received: {JOIN_TIMEOUT}={environ.get(JOIN_TIMEOUT)!r}"
        ) from None
    return coordinator, num_processes, process_id, timeout


def join_processes(environ=None):
    """Joins this process to the others (`jax.distributed.initialize`).

    What `keras.distribution.initialize()` does, with the settings checked
    first, CPU collectives (gloo) so that processes without accelerators
    can train together, and a bounded wait: a coordinator that never
    answers is a one-line error after `DIM_KERAS_JOIN_TIMEOUT` seconds
    (default 120), not a hang; so is a coordinator port already taken on
    process 0's host. (Peers that reach the coordinator but never finish
    joining end in JAX's own error after the same time.) The random seed is the run's own (set by `train`
    on every process), so Keras's seed exchange is not needed.

    Args:
        environ: mapping of environment variables; None for `os.environ`.

    Raises:
        ValueError: on missing settings or when the processes do not all
            join in time.
    """
    coordinator, num_processes, process_id, timeout = (
        cluster_from_environment(environ)
    )
    deadline = time.monotonic() + timeout
    host, _, port = coordinator.rpartition(":")
    host, port = host.strip("[]"), int(port)
    if process_id == 0:
        _check_port_free(port, coordinator)
    else:
        # XLA ends the process (abort, a page of C++ log) when it cannot
        # reach the coordinator: wait for the port here first.
        _wait_for_port(host, port, deadline, coordinator, process_id,
                       num_processes, timeout)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=max(1, int(deadline - time.monotonic())),
    )


def _check_port_free(port, coordinator):
    """Raises when process 0 cannot serve the coordinator's port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))
        except OSError as e:
            raise ValueError(
                f"Process 0 serves the coordinator at {coordinator}, but "
                f"port {port} is taken here ({e.strerror}): name a free "
                f"port in {JOB_ADDRESSES}. Received: "
                f"{JOB_ADDRESSES}={coordinator!r}"
            ) from None


def _wait_for_port(host, port, deadline, coordinator, process_id,
                   num_processes, timeout):
    """Waits until the coordinator accepts connections, or raises."""
    reason = "no answer"
    while True:
        remaining = deadline - time.monotonic()
        try:
            with socket.create_connection(
                    (host, port), timeout=max(0.1, min(5.0, remaining))):
                return
        except OSError as e:
            reason = e.strerror or type(e).__name__
        if time.monotonic() + 0.5 >= deadline:
            raise ValueError(
                f"Process {process_id} of {num_processes} could not join the "
                f"coordinator at {coordinator} within {timeout} s ({reason}):"
                f" start process 0 there (every process with the same "
                f"{JOB_ADDRESSES}); {JOIN_TIMEOUT} sets the wait. Received: "
                f"{JOB_ADDRESSES}={coordinator!r}"
            )
        time.sleep(0.5)


def broadcast_from_chief(variables, sources=None):
    """Sets each variable on every process to process 0's value.

    Args:
        variables: list of Keras variables, the same on every process.
        sources: list of variables matching `variables` whose values
            process 0 sends; None for `variables` themselves.
    """
    from jax.experimental import multihost_utils

    sources = variables if sources is None else sources
    values = multihost_utils.broadcast_one_to_all(
        [np.asarray(v.value) for v in sources]
    )
    for variable, value in zip(variables, values):
        variable.assign(np.asarray(value))


def broadcast_json_from_chief(value):
    """Process 0's JSON-compatible `value`, on every process."""
    from jax.experimental import multihost_utils

    data = np.frombuffer(json.dumps(value).encode("utf-8"), "uint8")
    # Lengths first: every process must send arrays of one shape.
    length = int(multihost_utils.broadcast_one_to_all(np.int32(data.size)))
    padded = np.zeros(length, "uint8")
    padded[: min(length, data.size)] = data[:length]
    chief = multihost_utils.broadcast_one_to_all(padded)
    return json.loads(np.asarray(chief, "uint8").tobytes().decode("utf-8"))


def leave_processes():
    """Leaves the group of processes (`jax.distributed.shutdown`).

    Called when training ends, so that process 0 may evaluate for as long
    as it takes while the others exit.
    """
    jax.distributed.shutdown()


def create_strategy(name):
    """Creates the `keras.distribution` that `name` asks for.

    `"multi-worker"` first joins the processes (`join_processes`); both
    then run data parallelism over every device of every process: one
    program over the whole (sharded) global batch.

    Args:
        name: `"data-parallel"` or `"multi-worker"`.

    Returns:
        `(distribution, num_replicas, process_index, process_count)`.

    Raises:
        ValueError: for multi-worker without its settings, or when the
            processes do not join.
    """
    if name == "multi-worker":
        join_processes()
    devices = keras.distribution.list_devices()
    distribution = keras.distribution.DataParallel(devices=devices)
    return (distribution, len(devices), jax.process_index(),
            jax.process_count())


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
        the online probe optimizer's."""
        variables = []
        for metric in self.metrics:
            variables.extend(metric.variables)
        return variables + self._riding_optimizer_variables()[0]

    def _riding_optimizer_variables(self):
        """The other optimizers' variables threaded with the metrics'.

        Returns:
            `(variables, discriminator_count)`: the discriminator
            optimizer's variables, then the probe optimizer's, and how
            many are the discriminator's.
        """
        discriminator, probe = [], []
        optimizer = getattr(self, "discriminator_optimizer", None)
        if optimizer is not None and self.prior_discriminator is not None:
            discriminator = list(optimizer.variables)
        optimizer = getattr(self, "probe_optimizer", None)
        if optimizer is not None and self.online_probe_classes:
            probe = list(optimizer.variables)
        return discriminator + probe, len(discriminator)

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
    ):
        """Loss terms and the gradients from variable values.

        Args:
            trainable_values: values of `self.trainable_variables`.
            non_trainable_values: values of `self.non_trainable_variables`.
            images: `[N, H, W, 3]` raw images.
            prior_samples: `[N, D]` prior samples, or None to draw them.
            labels: `[N]` class ids (-1: unlabelled) for the online probe,
                or None.

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
                    images, training=True, return_features=True
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

    def compute_dim_gradients(self, images, prior_samples=None, labels=None):
        """Loss terms and the gradients of one batch (no weight update).

        Like the TensorFlow and PyTorch versions, it updates the batch-norm
        statistics and the seed state.

        Args:
            images: `[N, H, W, 3]` raw images.
            prior_samples: `[N, D]` prior samples, or None to draw them.
            labels: `[N]` class ids for the online probe, or None.

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
        images, labels = split_batch(data)
        terms, grads, d_grads, p_grads, non_trainable_values = (
            self.stateless_dim_gradients(
                trainable_values, non_trainable_values, images,
                labels=labels,
            )
        )
        encoder_pos, discriminator_pos, probe_pos = self._variable_positions()
        trainable_values = list(trainable_values)

        optimizer_values = _apply(self.optimizer, optimizer_values, grads,
                                  trainable_values, encoder_pos)

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
        _, discriminator_count = self._riding_optimizer_variables()
        d_optimizer_values = list(
            metrics_values[offset : offset + discriminator_count])
        p_optimizer_values = list(
            metrics_values[offset + discriminator_count :])

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
            tracker_values + list(d_optimizer_values)
            + list(p_optimizer_values),
        )
        return logs, state
