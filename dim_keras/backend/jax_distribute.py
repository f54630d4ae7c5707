"""JAX's distribution mechanics: the processes of a run and its strategy.

What `dim_keras.distribute` calls on JAX (through `dim_keras.backend.jax`,
which re-exports these names): counting GPUs, joining several processes
into one JAX cluster from the `keras.distribution.initialize()` environment
variables (checked first, with a bounded wait), sharing process 0's values
with the others, leaving the cluster, and the `keras.distribution` that
`--distribute` names.
"""

import json
import os
import socket
import time

import jax
import keras
import numpy as np


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
    joining end in JAX's own error after the same time.) The random seed
    is the run's own (set by `train` on every process), so Keras's seed
    exchange is not needed.

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
