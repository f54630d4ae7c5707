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
import json
import os

import keras

STRATEGIES = ("auto", "none", "mirrored", "multi-worker", "data-parallel")

_BACKENDS = {
    "none": ("tensorflow", "jax", "torch", "numpy"),
    "mirrored": ("tensorflow",),
    "multi-worker": ("tensorflow", "jax"),
    "data-parallel": ("jax",),
}


def check_strategy(name):
    """Returns `name` when it names a known strategy.

    Args:
        name: str, one of `STRATEGIES`.

    Returns:
        The name, unchanged.

    Raises:
        ValueError: for any other value.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown distribution strategy; expected one of "
            f"{', '.join(STRATEGIES)}. Received: distribute={name!r}"
        )
    return name


def local_gpu_count(backend=None):
    """Number of GPUs this process sees, for the given Keras backend."""
    backend = backend or keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return sum(d.platform == "gpu" for d in jax.local_devices())
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    return 0


def resolve_strategy(name, backend=None, gpus=None):
    """Turns `"auto"` into a concrete strategy and checks the backend.

    Args:
        name: str, one of `STRATEGIES`.
        backend: Keras backend name; None for the current one.
        gpus: int or None, local GPU count; None counts them.

    Returns:
        A strategy name other than `"auto"`.

    Raises:
        ValueError: if the backend does not support the strategy.
    """
    check_strategy(name)
    backend = backend or keras.backend.backend()
    if name == "auto":
        if gpus is None:
            gpus = local_gpu_count(backend)
        if gpus > 1 and backend == "tensorflow":
            return "mirrored"
        if gpus > 1 and backend == "jax":
            return "data-parallel"
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
    def synchronizes_batch_norm(self):
        """Whether batch-norm layers must all-reduce their statistics."""
        return (
            self.num_replicas > 1
            and keras.backend.backend() == "tensorflow"
        )

    @property
    def supports_jit(self):
        """Whether the train step may be XLA-compiled.

        Not under `tf.distribute` strategies: XLA then fails on variables
        mirrored on other devices (TensorFlow's XLA known issues).
        """
        return not (
            self.strategy is not None
            and keras.backend.backend() == "tensorflow"
        )

    def scope(self):
        """Context in which to build, compile and fit the model."""
        if self.strategy is None:
            return contextlib.nullcontext()
        return self.strategy.scope()

    def describe(self):
        """One line for the log."""
        if self.num_replicas == 1 and self.num_workers == 1:
            return "one device"
        return (
            f"{self.name}: {self.num_replicas} replicas on "
            f"{self.num_workers} worker(s), this is worker "
            f"{self.worker_index}"
        )


def _tf_config_task():
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    cluster = config.get("cluster", {})
    task = config.get("task", {})
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    index = task.get("index", 0)
    if task.get("type") == "worker" and "chief" in cluster:
        index += 1
    return max(workers, 1), index


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
    backend = backend or keras.backend.backend()
    name = resolve_strategy(name, backend)
    if name == "none":
        return Distribution(name)
    if backend == "tensorflow":
        import tensorflow as tf

        if name == "mirrored":
            devices = [d.name for d in tf.config.list_logical_devices("GPU")]
            if not devices:
                devices = [
                    d.name for d in tf.config.list_logical_devices("CPU")
                ]
            strategy = tf.distribute.MirroredStrategy(devices=devices)
            return Distribution(name, strategy, strategy.num_replicas_in_sync)
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "--distribute multi-worker on TensorFlow needs the TF_CONFIG "
                "environment variable (cluster and task). Received: "
                "TF_CONFIG unset"
            )
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        num_workers, index = _tf_config_task()
        return Distribution(
            name, strategy, strategy.num_replicas_in_sync, index, num_workers
        )
    # JAX: keras.distribution.
    if name == "multi-worker":
        keras.distribution.initialize()
    import jax

    devices = keras.distribution.list_devices()
    distribution = keras.distribution.DataParallel(devices=devices)
    return Distribution(
        name,
        distribution,
        len(devices),
        jax.process_index(),
        jax.process_count(),
    )


def prepare_model(model, distribution, global_batch_size):
    """Readies a model built under `distribution.scope()` for training.

    Switches on synchronized batch norm where the strategy needs it and
    tells the train step its per-replica batch size.

    Args:
        model: a `DeepInfoMax`.
        distribution: the `Distribution`.
        global_batch_size: int, the batch size over all replicas.
    """
    if distribution.synchronizes_batch_norm:
        set_batch_norm_synchronized(model, True)
    if distribution.strategy is not None and keras.backend.backend() == (
        "tensorflow"
    ):
        model.replica_batch_size = (
            global_batch_size // distribution.num_replicas
        )


def input_pipeline(dataset, distribution):
    """Adapts a `tf.data` pipeline of uint8 images to `distribution`.

    MultiWorkerMirroredStrategy runs collective ops on the input, which do
    not take uint8: its images are cast to float32 (the encoder takes both).

    Args:
        dataset: `tf.data.Dataset` of images.
        distribution: the `Distribution`.

    Returns:
        The dataset, cast where needed.
    """
    if distribution.name == "multi-worker" and keras.backend.backend() == (
        "tensorflow"
    ):
        import tensorflow as tf

        return dataset.map(lambda x: tf.cast(x, "float32"))
    return dataset


def set_batch_norm_synchronized(model, synchronized):
    """Sets `synchronized` on every `BatchNormalization` inside `model`.

    Synchronized batch norm all-reduces its batch statistics over the
    replicas (TensorFlow only). It is switched on for training, not baked
    into the saved encoder: a `.keras` file holding `synchronized=True`
    would not load on other backends.

    Args:
        model: a Keras model or layer.
        synchronized: bool.
    """
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = synchronized


@contextlib.contextmanager
def unsynchronized_batch_norm(model):
    """Context with every batch norm of `model` unsynchronized (to save)."""
    layers = [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    previous = [layer.synchronized for layer in layers]
    for layer in layers:
        layer.synchronized = False
    try:
        yield model
    finally:
        for layer, value in zip(layers, previous):
            layer.synchronized = value
