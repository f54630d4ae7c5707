"""A DIM training run: the model a config describes, saved every epoch.

`train(config, run_dir)` runs in stages: it loads the dataset and resolves
the config's defaults (a new `TrainConfig`; the caller's is never
changed), reads the run directory, builds the model under the chosen
distribution and precision (`dim_keras.build`), restores it when the
directory holds a run with the same settings (`dim_keras.checkpointing`),
and fits it, committing every finished epoch there (see `dim_keras.runs` for
the files and their order). What depends on the kind of data (images or
speech) is the dataset's `dim_keras.modalities.Modality`.
"""

import contextlib
import os
import sys

import keras
import numpy as np

from dim_keras import modalities
from dim_keras import runs
from dim_keras.build import build_model
from dim_keras.build import describe_critic
from dim_keras.build import describe_encoder
from dim_keras.checkpointing import RunCheckpoint
from dim_keras.checkpointing import recorded_recipe
from dim_keras.checkpointing import restore
from dim_keras.checkpointing import training_state
from dim_keras.distribute import local_variables
from dim_keras.distribute import make_distribution
from dim_keras.learning_rate import describe as describe_rate
from dim_keras.monitors import EpochEstimate
from dim_keras.monitors import Throughput
from dim_keras.monitors import tensorboard_callbacks
from dim_keras.monitors import write_example_inputs
from dim_keras.online_monitors import OnlineMonitors
from dim_keras.run_lock import RunLock
from dim_keras.runs import RunError

def _tensorboard(config, dataset, modality, run_dir, epochs_done, log):
    """TensorBoard callbacks of a run, and a few example inputs written.

    Returns:
        The callbacks (none without TensorFlow, said in one line).
    """
    board = tensorboard_callbacks(run_dir)
    if not board:
        log("TensorBoard logs are off: they need TensorFlow's summary "
            "writer (pip install tensorflow-cpu tensorboard).")
        return board
    batch = modality.example_batch(config, dataset)
    if batch is not None:
        write_example_inputs(run_dir, np.asarray(batch), step=epochs_done)
    return board


def _total_steps(pipeline, steps_per_epoch, epochs):
    """The optimizer steps of a whole run, or None where unknown.

    Args:
        pipeline: the training pipeline (a `keras.utils.PyDataset` knows
            its length; a finite `tf.data.Dataset` its cardinality).
        steps_per_epoch: int or None (one pass over the pipeline).
        epochs: int, the run's epochs.

    Returns:
        int or None.
    """
    steps = steps_per_epoch
    if steps is None and hasattr(pipeline, "__len__"):
        try:
            steps = len(pipeline)
        except (TypeError, NotImplementedError):  # a length unknown
            steps = None
    elif steps is None and hasattr(pipeline, "cardinality"):
        steps = int(pipeline.cardinality())
    if not steps or steps < 0:  # unknown (-2) or infinite (-1)
        return None
    return int(steps) * int(epochs)


def _monitored_part(config, dataset, modality, distribution, log):
    """The held-out part of the online monitors, or None (said why).

    Returns:
        A `dim_keras.online_monitors.HeldOutPart`, or None when the
        monitors are off (by the settings, for unlabelled data, for a
        modality they do not read, or across processes sharing one state).
    """
    if not config.online_probe and config.knn_every == 0:
        return None
    if not dataset.num_classes:
        return None  # unlabelled data: nothing to monitor
    if distribution.shares_state and distribution.num_workers > 1:
        log("The online probe and kNN monitor are off across several "
            "processes; evaluate the run afterwards.")
        return None
    return modality.held_out_part(config, dataset)


def train(config, run_dir, verbose=None, log=print, callbacks=None):
    """Trains DIM as `config` says, saving and resuming in `run_dir`.

    Args:
        config: `TrainConfig` (not changed: the run's own, with the
            dataset's defaults filled in, is returned as `config`).
        run_dir: str, run directory (created if needed).
        verbose: Keras `fit` verbosity; None shows a progress bar on a
            terminal and one line per epoch otherwise.
        log: callable for one-line messages.
        callbacks: list of extra Keras callbacks for `fit` (e.g. a
            progress line), or None.

    Returns:
        Dict with the run's `paths`, `epochs_done`, `history`, whether it
        `resumed` and `trained`, the resolved `config`, the loaded
        `dataset` and, when it trained, the trained `model`.

    Raises:
        RunError: on settings that clash with the run directory, a
            non-finite loss, or a file that cannot be written
            (`runs.WriteError`).
        RunLockedError: if another process is writing `run_dir`.
    """
    from dim_keras.data import get_dataset
    from dim_keras.networks.encoders import ENCODER_IMAGE_SIZE

    config.validate()
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    dataset = get_dataset(
        config.dataset,
        data_dir=config.data_dir,
        image_size=ENCODER_IMAGE_SIZE.get(config.encoder),
    )
    modality = modalities.for_dataset(dataset)
    # Multi-worker strategies must exist before TensorFlow runs anything.
    try:
        distribution = make_distribution(config.distribute)
    except ValueError as e:
        raise RunError(str(e))
    writer = distribution.is_chief or distribution.workers_keep_copies
    if not distribution.is_chief and writer:
        # Other workers keep their own copy, never racing the chief's files.
        run_dir = os.path.join(run_dir, f"worker-{distribution.worker_index}")
    # Processes sharing one state (JAX) build the same model: the chief's
    # recorded recipe, read by the chief alone.
    recipe = distribution.from_chief(
        recorded_recipe(run_dir) if writer else None
    )
    try:
        config = config.resolved(dataset, recipe=recipe)
    except ValueError as e:
        raise RunError(str(e))
    modality.check_settings(config, dataset)
    dataset = modality.for_run(config, dataset, log)
    if config.batch_size % distribution.num_replicas:
        raise RunError(
            f"batch_size must be a multiple of the {distribution.num_replicas}"
            f" replicas ({distribution.describe()}). "
            f"Received: batch_size={config.batch_size}"
        )
    if distribution.is_chief:
        lock = RunLock(run_dir)  # one writing process per run directory
    else:
        lock = contextlib.nullcontext()
    run = _Run(config, run_dir, dataset, modality, distribution, verbose,
               log, writer)
    with lock:
        result = run.train(callbacks)
    distribution.finish()
    return result


class _Run:
    """`train` from reading the run directory on, in stages.

    A process that is not a `writer` (a JAX worker other than process 0)
    neither reads nor writes `run_dir`: the chief sends it what it needs.
    """

    def __init__(self, config, run_dir, dataset, modality, distribution,
                 verbose, log, writer):
        self.config = config
        self.run_dir = run_dir
        self.dataset = dataset
        self.modality = modality
        self.distribution = distribution
        self.verbose = verbose
        self.log = log
        self.writer = writer
        self.total_steps = None  # the run's optimizer steps, once known

    def train(self, callbacks):
        """Reads the run directory, then builds, restores and fits."""
        config, log = self.config, self.log
        resume_points = self._resume_points()
        epochs_done, history = (
            resume_points[0][1:] if resume_points else (0, [])
        )
        epochs_done = self.distribution.from_chief(epochs_done)
        history = list(history)
        result = {"paths": runs.run_paths(self.run_dir), "config": config,
                  "dataset": self.dataset, "resumed": epochs_done > 0,
                  "writer": self.writer}
        if epochs_done >= config.epochs:
            log(
                f"Run in {self.run_dir} already finished {epochs_done} "
                f"epochs (asked for {config.epochs}); nothing to do. Raise "
                "--epochs to continue it."
            )
            return dict(result, epochs_done=epochs_done, trained=False,
                        history=history)

        keras.utils.set_random_seed(config.seed)
        part = _monitored_part(config, self.dataset, self.modality,
                               self.distribution, log)
        pipeline, steps_per_epoch = self.modality.training_input(
            config, self.dataset, part)
        self.total_steps = _total_steps(pipeline, steps_per_epoch,
                                        config.epochs)
        if not hasattr(pipeline, "on_epoch_end"):
            pipeline = self.distribution.adapt_pipeline(pipeline)
        previous_policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy(config.precision)
        try:
            with self.distribution.scope():
                model, epochs_done, history = self._build_and_restore(
                    part, resume_points, epochs_done, history)
                first_epoch, first_row = epochs_done, len(history)
                self._record(resume_points, epochs_done, history)
                checkpoint = RunCheckpoint(
                    self.run_dir if self.writer else None, model.encoder,
                    history, info={"dataset": config.dataset},
                )
                self.modality.start_at_epoch(pipeline, epochs_done)
                model.fit(
                    pipeline,
                    epochs=config.epochs,
                    initial_epoch=epochs_done,
                    steps_per_epoch=steps_per_epoch,
                    callbacks=self._callbacks(model, part, checkpoint,
                                              epochs_done)
                    + list(callbacks or ()),
                    shuffle=False,  # the pipeline shuffles
                    verbose=self.verbose,
                )
        finally:
            keras.config.set_dtype_policy(previous_policy)
        if checkpoint.diverged_at is not None:
            epoch, logs = checkpoint.diverged_at
            raise RunError(
                f"Training stopped: a non-finite loss in epoch {epoch} "
                f"({', '.join(f'{k}={v:.4g}' for k, v in logs.items())}). "
                f"The last good epoch ({len(history)}) is kept in "
                f"{self.run_dir}; try a lower --lr or another --estimator."
            )
        # A process that does not write the run holds only its own epochs'
        # rows.
        epochs_done = first_epoch + len(history) - first_row
        return dict(result, epochs_done=epochs_done, trained=True,
                    history=history, model=model)

    def _resume_points(self):
        """The run directory's checkpoints, newest first ([] if none)."""
        if not self.writer:
            return []
        os.makedirs(self.run_dir, exist_ok=True)
        return runs.resume_points(self.run_dir, self.config, warn=self.log)

    def _build_and_restore(self, part, resume_points, epochs_done, history):
        """The model, restored from the newest readable checkpoint.

        Returns:
            `(model, epochs_done, history)`.
        """
        config, distribution = self.config, self.distribution
        jit_compile = config.jit_compile
        if not distribution.supports_jit:
            if jit_compile:
                self.log("XLA compilation is off under tf.distribute "
                         "strategies.")
            jit_compile = False
        classes = 0 if part is None else self.dataset.num_classes
        inputs = self.modality.encoder_input(self.dataset)
        model = build_model(config, jit_compile=jit_compile,
                            num_classes=classes,
                            total_steps=self.total_steps, **inputs)
        distribution.prepare_model(model, config.batch_size)
        restored = model
        if resume_points and distribution.shares_state:
            # The chief alone restores: into a model of its own.
            with local_variables():
                restored = build_model(config, jit_compile=jit_compile,
                                       num_classes=classes,
                                       total_steps=self.total_steps, **inputs)
                epochs_done, history = restore(restored, resume_points,
                                               self.log)
        elif resume_points:
            epochs_done, history = restore(model, resume_points, self.log)
        # Processes sharing one state start from the chief's weights
        # (restored, or its initial ones) and its epoch count.
        epochs_done = distribution.from_chief(epochs_done)
        distribution.sync_from_chief(training_state(model),
                                     training_state(restored))
        return model, epochs_done, history

    def _record(self, resume_points, epochs_done, history):
        """Writes the run's settings (and its history when resumed); logs."""
        config = self.config
        if epochs_done:
            self.log(
                f"Resuming the run in {self.run_dir} from epoch "
                f"{epochs_done + 1} ({epochs_done} of {config.epochs} "
                "epochs done)."
            )
        if self.writer:
            with runs.saving(self.run_dir, epochs_done):
                if resume_points:
                    # history.csv may hold a row of an epoch killed before
                    # its commit, or one of a newer, damaged checkpoint.
                    runs.write_history(self.run_dir, history)
                # Written once the run's own files have been read back
                # whole.
                runs.write_config(self.run_dir, config)
        examples, augmentation = self.modality.describe(config, self.dataset)
        self.log(
            f"Training DIM on {config.dataset} "
            f"({examples}, "
            f"{keras.backend.backend()} backend, "
            f"{describe_encoder(config)}, {config.estimator}, "
            f"alpha={config.alpha}, "
            f"beta={config.beta}, gamma={config.gamma}, "
            f"{describe_rate(config.lr, config.lr_schedule, self.total_steps)}, "
            f"{describe_critic(config)}, augmentation: "
            f"{augmentation}{', occlusion' if config.occlusion else ''}) "
            f"for {config.epochs} epochs on {self.distribution.describe()}, "
            f"{config.precision}."
        )

    def _callbacks(self, model, part, checkpoint, epochs_done):
        """The monitors, the checkpoint and TensorBoard, in that order."""
        config = self.config
        # Before the checkpoint: it writes the logs they add.
        monitors = [Throughput(config.batch_size),
                    EpochEstimate(config.batch_size,
                                  self.distribution.describe(), self.log)]
        if part is not None:
            monitors.append(OnlineMonitors(
                part, model.online_probe_heads,
                knn_every=config.knn_every, log=self.log))
        board = []
        if self.writer:
            board = _tensorboard(config, self.dataset, self.modality,
                                 self.run_dir, epochs_done, self.log)
        return monitors + [checkpoint] + board
