"""How training is spread over devices and hosts.

`--distribute` names one of:

- `"none"`: one device;
- `"mirrored"` (TensorFlow): `tf.distribute.MirroredStrategy` over all
  local GPUs (or, without GPUs, all logical CPU devices);
- `"multi-worker"`: several hosts. TensorFlow:
  `tf.distribute.MultiWorkerMirroredStrategy`, configured by `TF_CONFIG`.
  JAX: `keras.distribution.initialize()` (configured by
  `KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES`,
  `KERAS_DISTRIBUTION_PROCESS_ID`), then data parallelism over every
  device of every process;
- `"data-parallel"` (JAX): `keras.distribution.DataParallel` over all local
  devices;
- `"auto"`: all local GPUs when there are several (`"mirrored"` on
  TensorFlow, `"data-parallel"` on JAX), else `"none"`.

On TensorFlow each replica runs `train_step` on its share of the batch; on
JAX, `DataParallel` compiles one program over the whole (sharded) global
batch, so negatives and batch-norm statistics are global there by nature.
"""

import contextlib

import keras

from dim_keras.backend.common import set_batch_norm_synchronized  # noqa: F401
from dim_keras.backend.common import unsynchronized_batch_norm  # noqa: F401
from dim_keras.choices import STRATEGIES
from dim_keras.choices import check_choice


# Which backends offer each strategy, and what "auto" becomes with several
# local GPUs. The mechanics live in each backend's module.
_BACKENDS = {
    "none": ("tensorflow", "jax", "torch", "numpy"),
    "mirrored": ("tensorflow",),
    "multi-worker": ("tensorflow", "jax"),
    "data-parallel": ("jax",),
}
_AUTO_MULTI_GPU = {"tensorflow": "mirrored", "jax": "data-parallel"}


def _mechanics():
    """The active backend's module (`dim_keras.backend.<name>`)."""
    from dim_keras.backend import active

    return active


def check_strategy(name):
    """Returns `name` when it names a known strategy.

    Args:
        name: str, one of `STRATEGIES`.

    Returns:
        The name, unchanged.

    Raises:
        ValueError: for any other value.
    """
    return check_choice("distribute", name, STRATEGIES,
                        what="distribution strategy")


def local_gpu_count():
    """Number of GPUs this process sees, on the active Keras backend."""
    return _mechanics().local_gpu_count()


def resolve_strategy(name, backend=None, gpus=None):
    """Turns `"auto"` into a concrete strategy and checks the backend.

    Args:
        name: str, one of `STRATEGIES`.
        backend: Keras backend name; None for the current one.
        gpus: int or None, local GPU count; None counts them (on the
            current backend).

    Returns:
        A strategy name other than `"auto"`.

    Raises:
        ValueError: if the backend does not support the strategy.
    """
    check_strategy(name)
    backend = backend or keras.backend.backend()
    if name == "auto":
        if gpus is None:
            gpus = local_gpu_count()
        if gpus > 1 and backend in _AUTO_MULTI_GPU:
            return _AUTO_MULTI_GPU[backend]
        return "none"
    if backend not in _BACKENDS[name]:
        supported = ", ".join(
            s for s, backends in _BACKENDS.items() if backend in backends
        )
        raise ValueError(
            f"The {backend} backend supports --distribute {supported} (or "
            f"auto). Received: distribute={name!r}"
        )
    return name


class Distribution:
    """A chosen strategy: where to build the model and how many replicas.

    Build, compile and fit the model inside `scope()`.

    Args:
        name: concrete strategy name (see `resolve_strategy`).
        strategy: the `tf.distribute.Strategy` (TensorFlow) or
            `keras.distribution.Distribution` (JAX), or None.
        num_replicas: int, replicas (devices) training in sync.
        worker_index: int, this process's index among the workers.
        num_workers: int, number of worker processes.
    """

    def __init__(self, name, strategy=None, num_replicas=1, worker_index=0,
                 num_workers=1):
        self.name = name
        self.strategy = strategy
        self.num_replicas = num_replicas
        self.worker_index = worker_index
        self.num_workers = num_workers

    @property
    def is_chief(self):
        """Whether this process writes the run directory."""
        return self.worker_index == 0

    @property
    def supports_jit(self):
        """Whether the train step may be XLA-compiled."""
        return _mechanics().supports_jit(self.strategy)

    def scope(self):
        """Context in which to build, compile and fit the model."""
        if self.strategy is None:
            return contextlib.nullcontext()
        return self.strategy.scope()

    def adapt_pipeline(self, dataset):
        """A `tf.data` pipeline of uint8 images, adapted to the strategy.

        Args:
            dataset: `tf.data.Dataset` of images.

        Returns:
            The dataset, changed where the backend's strategy needs it.
        """
        return _mechanics().adapt_pipeline(dataset, self.name)

    def prepare_model(self, model, global_batch_size):
        """Readies a model built under `scope()` for training.

        Args:
            model: a `DeepInfoMax`.
            global_batch_size: int, the batch size over all replicas.
        """
        _mechanics().prepare_model(model, self, global_batch_size)

    @property
    def workers_keep_copies(self):
        """Whether each non-chief worker keeps its own copy of the run.

        True for TensorFlow's multi-worker strategy (each worker restores
        its own copy in `--out/worker-<index>`); False where the processes
        hold one shared state (JAX): the chief alone reads and writes the
        run directory and sends what it restored to the others.
        """
        return self.num_workers > 1 and not self.shares_state

    @property
    def shares_state(self):
        """Whether several processes hold one state the chief can send."""
        return (self.num_workers > 1
                and hasattr(_mechanics(), "broadcast_from_chief"))

    def from_chief(self, value):
        """The chief's `value` on every process (JSON-compatible values).

        Args:
            value: a JSON-compatible value (each process passes its own;
                only the chief's is used).

        Returns:
            The chief's value; `value` itself in a single process or where
            workers keep their own copies.
        """
        if not self.shares_state:
            return value
        return _mechanics().broadcast_json_from_chief(value)

    def sync_from_chief(self, variables, sources=None):
        """Sets `variables` on every process to the chief's values.

        Args:
            variables: list of Keras variables, in the same order on every
                process (the same model built the same way).
            sources: list of variables matching `variables` whose values
                the chief sends (e.g. a local model it restored a
                checkpoint into); None sends `variables`' own. Other
                processes' sources only give the shapes.
        """
        if self.shares_state:
            _mechanics().broadcast_from_chief(variables, sources)

    def finish(self):
        """Ends the collective part: after it the processes part ways."""
        if self.num_workers > 1 and hasattr(_mechanics(), "leave_processes"):
            _mechanics().leave_processes()

    def describe(self):
        """One line for the log."""
        if self.num_replicas == 1 and self.num_workers == 1:
            return "one device"
        return (
            f"{self.name}: {self.num_replicas} replicas on "
            f"{self.num_workers} worker(s), this is worker "
            f"{self.worker_index}"
        )


@contextlib.contextmanager
def local_variables():
    """Context in which new variables belong to this process alone.

    Under a `keras.distribution` spanning several processes, creating or
    assigning a variable is a collective step every process must take.
    Saving creates throwaway variables (Keras builds an optimizer to list
    what to skip), and a resume restores into a model of its own: the
    chief does both alone, inside this context.
    """
    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


def make_distribution(name, backend=None):
    """Creates the distribution that `name` asks for.

    Call it before TensorFlow runs any operation (multi-worker strategies
    must be created at program start).

    Args:
        name: str, one of `STRATEGIES`.
        backend: Keras backend name; None for the current one.

    Returns:
        A `Distribution`.

    Raises:
        ValueError: on an unsupported strategy or a missing cluster config.
    """
    name = resolve_strategy(name, backend)
    if name == "none":
        return Distribution(name)
    return Distribution(name, *_mechanics().create_strategy(name))
