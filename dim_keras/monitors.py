"""What a run shows while it trains: throughput and TensorBoard logs.

- `Throughput` adds `images_per_second` (training images per second of the
  epoch, input pipeline included) to every epoch's logs, so that
  `history.csv` and TensorBoard both get it.
- `tensorboard_callbacks` gives Keras's own `TensorBoard` callback, logging
  every epoch's loss terms, MI estimates, discriminator terms, learning
  rate and throughput under `<run>/tensorboard`, and writes a few example
  training inputs (the augmented images, or both views of each image) as
  an image summary there once. `tensorboard --logdir runs` reads the run
  without dim-keras. Both need TensorFlow's summary writer; without
  TensorFlow the run trains without them and says so.
"""

import importlib.util
import os
import time

import keras
import numpy as np

TENSORBOARD_DIR = "tensorboard"
EXAMPLE_IMAGES = 4


class Throughput(keras.callbacks.Callback):
    """Adds `images_per_second` to the logs of every epoch.

    It also turns every log value into a Python float (a mirrored
    strategy logs shape-[1] values, which TensorBoard refuses).

    Measured from the epoch's start to its end by the host clock, over the
    epoch's steps times the global batch size (no per-batch hook, so no
    step waits on it).

    Args:
        batch_size: int, the global batch size (images per step).
    """

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = int(batch_size)
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        # Some strategies log shape-[1] values; TensorBoard takes scalars.
        for key, value in logs.items():
            logs[key] = float(np.asarray(value, dtype="float64").reshape(-1)[0])
        steps = (self.params or {}).get("steps")
        if self._started is None or not steps:
            return
        elapsed = time.perf_counter() - self._started
        logs["images_per_second"] = steps * self.batch_size / max(
            elapsed, 1e-9)

    def get_config(self):
        return {"batch_size": self.batch_size}


class EpochEstimate(keras.callbacks.Callback):
    """Says in one line, after the first steps, that an epoch will be long.

    The first step is left out (it traces the step function); the next
    `measured_steps` time the step. When an epoch of `params["steps"]`
    steps will take more than `threshold_seconds`, `log` gets one line with
    the estimate and what would shorten it. It only reads the host clock,
    so Keras may dispatch it off the training loop (`async_safe`).

    Args:
        batch_size: int, the global batch size (images per step).
        devices: str, where the run trains (e.g. "one device").
        log: callable for the line.
        threshold_seconds: float, the epoch length worth a warning.
        measured_steps: int, steps timed after the first.
    """

    async_safe = True

    def __init__(self, batch_size, devices, log, threshold_seconds=600.0,
                 measured_steps=3):
        super().__init__()
        self.batch_size = int(batch_size)
        self.devices = devices
        self.log = log
        self.threshold_seconds = float(threshold_seconds)
        self.measured_steps = int(measured_steps)
        self.estimate = None  # seconds per epoch, once measured
        self._started = None

    def on_train_batch_end(self, batch, logs=None):
        if self.estimate is not None:
            return
        if self._started is None:
            self._started = time.perf_counter()  # after the traced step
            self._first = batch
            return
        if batch - self._first < self.measured_steps:
            return
        steps = (self.params or {}).get("steps")
        per_step = (time.perf_counter() - self._started) / (
            batch - self._first)
        self.estimate = per_step * steps if steps else 0.0
        if self.estimate > self.threshold_seconds:
            self.log(
                f"An epoch ({steps} steps) will take about "
                f"{self.estimate / 60:.0f} min on {self.devices} "
                f"({self.batch_size / per_step:.1f} images/s on the first "
                "steps); to shorten it: a GPU, --steps-per-epoch, or a "
                "smaller --encoder.")


def _scalars(logs):
    return {key: float(np.asarray(value, dtype="float64").reshape(-1)[0])
            for key, value in (logs or {}).items()}


class ScalarTensorBoard(keras.callbacks.TensorBoard):
    """Keras's `TensorBoard`, given every log value as a scalar.

    Under TensorFlow's strategies the batch and epoch logs hold shape-[1]
    values, which TensorBoard's scalar summary refuses (it checks the
    shape of every batch's values, even when it records epochs only).
    """

    def on_train_batch_end(self, batch, logs=None):
        if isinstance(logs, dict):
            logs = {key: keras.ops.reshape(value, ())
                    if getattr(value, "shape", ()) == (1,) else value
                    for key, value in logs.items()}
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, _scalars(logs))


def tensorboard_available():
    """Whether TensorFlow's summary writer (and TensorBoard) can be used."""
    return all(importlib.util.find_spec(name) is not None
               for name in ("tensorflow", "tensorboard"))


def tensorboard_callbacks(run_dir):
    """Keras's `TensorBoard` callback writing under `<run_dir>/tensorboard`.

    Args:
        run_dir: str, the run directory.

    Returns:
        A list with the callback, or an empty list without TensorFlow.
    """
    if not tensorboard_available():
        return []
    return [ScalarTensorBoard(
        log_dir=os.path.join(run_dir, TENSORBOARD_DIR),
        write_graph=False,
        update_freq="epoch",
    )]


def example_grid(batch, count=EXAMPLE_IMAGES):
    """A few training inputs as images to show, views side by side.

    Args:
        batch: `[N, H, W, 3]` images, or `[N, V, H, W, 3]` views (pixel
            values 0-255).

    Returns:
        uint8 array `[min(N, count), H, V * W, 3]`.
    """
    batch = np.asarray(batch)
    if batch.ndim == 4:
        batch = batch[:, None]
    if batch.ndim != 5:
        raise ValueError(
            "Expected images [N, H, W, 3] or views [N, V, H, W, 3]. "
            f"Received: shape={batch.shape}"
        )
    batch = batch[:count]
    rows = np.concatenate(list(np.moveaxis(batch, 1, 0)), axis=2)
    return np.clip(np.round(rows), 0, 255).astype("uint8")


def write_example_inputs(run_dir, batch, step=0):
    """Writes a few training inputs as a TensorBoard image summary.

    Args:
        run_dir: str, the run directory.
        batch: a batch of training inputs (see `example_grid`).
        step: int, the summary step (the epoch the run starts from).

    Returns:
        True if written, False without TensorFlow.
    """
    if not tensorboard_available():
        return False
    import tensorflow as tf

    grid = example_grid(batch)
    writer = tf.summary.create_file_writer(
        os.path.join(run_dir, TENSORBOARD_DIR, "inputs"))
    with writer.as_default():
        tf.summary.image("training_inputs", grid, step=step,
                         max_outputs=len(grid),
                         description="Augmented training inputs (each "
                                     "view side by side)")
    writer.close()
    return True
