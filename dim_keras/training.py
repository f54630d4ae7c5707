"""A DIM training run: the model a config describes, saved every epoch.

`train(config, run_dir)` loads the dataset, resolves the config's dataset
defaults (a new `TrainConfig`; the caller's is never changed), builds the
model under the chosen distribution and precision, resumes from the run
directory when it holds a run with the same settings, and commits every
finished epoch there (see `dim_keras.runs` for the files and their order).
"""

import contextlib
import math
import os
import sys

import keras
import numpy as np

from dim_keras import runs
from dim_keras.distribute import local_variables
from dim_keras.distribute import make_distribution
from dim_keras.distribute import unsynchronized_batch_norm
from dim_keras.encoder_file import channel_parts
from dim_keras.encoder_file import save_encoder
from dim_keras.monitors import EXAMPLE_IMAGES
from dim_keras.monitors import Throughput
from dim_keras.monitors import tensorboard_callbacks
from dim_keras.monitors import write_example_inputs
from dim_keras.online_monitors import OnlineMonitors
from dim_keras.run_lock import RunLock
from dim_keras.runs import RunError


def _scalar(value):
    """A log value (scalar, or shape-[1] under some strategies) as a float."""
    return float(np.asarray(value, dtype="float64").reshape(-1)[0])


def _save_unsynchronized(encoder, path, info=None):
    """`encoder_file.save_encoder` with batch norm unsynchronized.

    Synchronized batch norm is a training setting, not part of the file.
    The two encoders of a channel split are also saved on their own, as
    `encoder_luma.keras` and `encoder_chroma.keras` beside `path`.
    """
    with unsynchronized_batch_norm(encoder):
        with runs.naming(path):
            save_encoder(encoder, path, info=info)
        for group, part in channel_parts(encoder).items():
            part_path = os.path.join(os.path.dirname(path),
                                     f"encoder_{group}.keras")
            with runs.naming(part_path):
                save_encoder(part, part_path,
                             info=dict(info or {}, channel_group=group))


class RunCheckpoint(keras.callbacks.Callback):
    """Saves the run after every epoch and stops on a non-finite loss.

    Args:
        run_dir: str, the run directory; None to only watch the loss (a
            process that does not write the run).
        encoder: the encoder to save as `encoder.keras`.
        history: list of rows of the epochs already done (extended here).
        info: dict or None, run fields saved in `encoder.json`.
        save_encoder: callable `(encoder, path, info)`; defaults to
            `dim_keras.encoder_file.save_encoder` (`encoder.keras` and
            `encoder.json`, both atomic) with batch norm unsynchronized.
    """

    def __init__(self, run_dir, encoder, history, info=None,
                 save_encoder=None):
        super().__init__()
        self.run_dir = run_dir
        self.encoder = encoder
        self.history = history
        self.info = dict(info or {})
        self.save_encoder = save_encoder or _save_unsynchronized
        self.diverged_at = None

    def on_epoch_end(self, epoch, logs=None):
        # Checked once per epoch, not per batch: reading the logs every
        # batch makes each step wait for the host (a device sync on an
        # accelerator; on a CPU it measured within noise). An epoch's mean
        # logs are non-finite whenever one of its batches was.
        logs = {k: _scalar(v) for k, v in (logs or {}).items()}
        if not all(math.isfinite(v) for v in logs.values()):
            self.diverged_at = (epoch + 1, logs)
            self.model.stop_training = True
            return
        row = {"epoch": epoch + 1}
        row.update(logs)
        if self.run_dir is None:  # a process that does not write the run
            self.history.append(row)
            return
        history = self.history + [row]
        # A failed write (full disk, unwritable --out) stops the run with
        # one line, leaving the last saved epoch's files whole.
        with runs.saving(self.run_dir, len(self.history)), local_variables():
            self.save_encoder(
                self.encoder,
                os.path.join(self.run_dir, runs.ENCODER_FILE),
                dict(self.info, epochs_done=epoch + 1),
            )
            runs.write_history(self.run_dir, history)
            runs.commit_epoch(self.model, self.run_dir, history)
        self.history.append(row)


def _training_state(model):
    """Every variable a checkpoint holds: weights and both optimizers'."""
    variables = list(model.weights) + list(model.optimizer.variables)
    for optimizer in (model.discriminator_optimizer, model.probe_optimizer):
        if optimizer is not None:
            variables += list(optimizer.variables)
    return variables


def _recorded_recipe(run_dir):
    """The recipe settings of the run already in `run_dir`, or None.

    A resumed run keeps the recipe it started with, even if the dataset's
    default recipe has changed since (settings it did not record are the
    reference's, which it then used). A damaged `config.json` gives None;
    resuming reports it.
    """
    from dim_keras.recipes import RECIPE_FIELDS
    from dim_keras.recipes import REFERENCE

    path = runs.run_paths(run_dir)["config"]
    if not os.path.exists(path):
        return None
    try:
        values = runs.read_config(path)
    except runs.DamagedFileError:
        return None
    return {name: values.get(name, REFERENCE[name])
            for name in RECIPE_FIELDS}


def _tensorboard(config, dataset, run_dir, epochs_done, log):
    """TensorBoard callbacks of a run, and a few example inputs written.

    Returns:
        The callbacks (none without TensorFlow, said in one line).
    """
    board = tensorboard_callbacks(run_dir)
    if not board:
        log("TensorBoard logs are off: they need TensorFlow's summary "
            "writer (pip install tensorflow-cpu tensorboard).")
        return board
    if is_speech(dataset):
        return board  # scalars only: the example inputs are images
    from dim_keras.data.pipeline import dataset_pipeline

    # The examples come from a pipeline of their own, so that the training
    # pipeline's shuffling and augmentation draws are left as they are.
    examples = dataset_pipeline(
        dataset, min(config.batch_size, EXAMPLE_IMAGES), seed=config.seed,
        augment_images=config.augment, repeat=False, views=config.views,
        view_crop=config.view_crop)
    batch = next(iter(examples))
    write_example_inputs(run_dir, np.asarray(batch), step=epochs_done)
    return board


def _monitored_part(config, dataset, distribution, log):
    """The held-out part of the online monitors, or None (said why).

    Args:
        config: the run's resolved `TrainConfig`.
        dataset: the `ImageDataset`.
        distribution: the run's `Distribution`.
        log: callable for one-line messages.

    Returns:
        A `dim_keras.online_monitors.HeldOutPart`, or None when the
        monitors are off (by the settings, for unlabelled data,
        or across processes sharing one state).
    """
    from dim_keras.online_monitors import held_out_part
    from dim_keras.online_monitors import held_out_stream_part

    if not config.online_probe and config.knn_every == 0:
        return None
    if is_speech(dataset):
        return None  # the monitors read images; evaluate speech afterwards
    if not dataset.num_classes:
        return None  # unlabelled data: nothing to monitor
    if distribution.shares_state and distribution.num_workers > 1:
        log("The online probe and kNN monitor are off across several "
            "processes; evaluate the run afterwards.")
        return None
    if not dataset.in_memory:
        return held_out_stream_part(dataset)
    images, labels = dataset.arrays("train")
    return held_out_part(images, labels, seed=config.seed)


def is_speech(dataset):
    """Whether a dataset is speech (an `AudioDataset`), not images."""
    return getattr(dataset, "modality", "image") == "audio"


def check_speech_settings(config, dataset):
    """Refuses settings that do not apply to the dataset's modality.

    Args:
        config: the run's resolved `TrainConfig`.
        dataset: an `ImageDataset` or `AudioDataset`.

    Raises:
        RunError: for an image encoder on speech or a speech encoder on
            images, and, on speech, global DIM (`alpha` > 0: its critic's
            3x3 convs need a 2-D map, speech maps have width 1),
            occlusion or a channel split (both about images).
    """
    from dim_keras.networks.encoders import AUDIO_ENCODERS

    speech = is_speech(dataset)
    if speech != (config.encoder in AUDIO_ENCODERS):
        kind = "speech" if speech else "images"
        wanted = ", ".join(AUDIO_ENCODERS) if speech else "an image encoder"
        raise RunError(
            f"Dataset {config.dataset} holds {kind}; its encoder must be "
            f"{wanted}. Received: encoder={config.encoder!r}"
        )
    if not speech:
        return
    if config.alpha > 0:
        raise RunError(
            "Global DIM's critic convolves 3x3 over a 2-D map; speech maps "
            "are T x 1, so alpha must be 0 on speech. "
            f"Received: alpha={config.alpha}"
        )
    if config.occlusion or config.channel_split != "none":
        raise RunError(
            "occlusion and channel_split are image settings. Received: "
            f"occlusion={config.occlusion}, "
            f"channel_split={config.channel_split!r}"
        )


def _speech_pipeline(config, dataset):
    """Same-speaker chunk pairs: `(pipeline, steps_per_epoch for fit)`.

    On TensorFlow a `tf.data` pipeline (endless, so `fit` is given the
    steps); elsewhere a `keras.utils.PyDataset` that knows its own.
    """
    pairs = dataset.training_pairs(config.batch_size, seed=config.seed,
                                   steps_per_epoch=config.steps_per_epoch)
    if keras.backend.backend() == "tensorflow":
        return (dataset.tf_training_pairs(config.batch_size,
                                          seed=config.seed), len(pairs))
    return pairs, None


def _describe_encoder(config):
    text = config.encoder
    if config.channel_split != "none":
        text = (f"two {config.encoder} encoders (luminance, colour) "
                "scored against each other")
    if config.scales != "y-local":
        text += f", local MI predictions {config.scales}"
    return text


def _describe_critic(config):
    width = f", {config.critic_units} units" if config.critic_units else ""
    text = (f"{config.local_critic} critic{width}, "
            f"{config.critic_norm} normalization")
    scores = []
    if config.score_temperature not in (None, 1.0):
        scores.append(f"divided by {config.score_temperature:.3g}")
    if config.score_clip:
        scores.append(f"soft-clipped at {config.score_clip:g}")
    if config.score_penalty:
        scores.append(f"penalty {config.score_penalty:g}")
    if scores:
        text += f", scores {', '.join(scores)}"
    return text


def build_model(config, image_size, jit_compile=None, num_classes=0,
                chunk_length=None):
    """Builds and compiles the `DeepInfoMax` model a config describes.

    Call it under the wanted dtype policy and distribution scope.

    Args:
        config: a validated `TrainConfig` with `encoder` set.
        image_size: int, input height and width (None for speech).
        jit_compile: bool or None; None takes `config.jit_compile` (and
            None there: Keras's "auto", XLA on a GPU only).
        num_classes: int, classes of the online probe (0: none; it is
            also off when `config.online_probe` is).
        chunk_length: int, samples per chunk of a speech encoder
            (`AUDIO_ENCODERS`), whose inputs are `[chunk_length, 1]`.

    Returns:
        A compiled, built `DeepInfoMax` with both optimizers built.
    """
    from dim_keras.model import DeepInfoMax
    from dim_keras.model import reference_optimizer
    from dim_keras.networks.encoders import build_encoder

    # The reference's recipe and DIM's single view where still unset.
    config = config.with_recipe().with_scheme()
    encoder = build_encoder(config.encoder, image_size=image_size,
                            channel_split=config.channel_split,
                            chunk_length=chunk_length)
    model = DeepInfoMax(
        encoder,
        estimator=config.estimator,
        alpha=config.alpha,
        beta=config.beta,
        gamma=config.gamma,
        local_critic=config.local_critic,
        local_critic_units=config.critic_units,
        critic_norm=config.critic_norm,
        gradient_penalty=config.gradient_penalty,
        occlusion=config.occlusion,
        seed=config.seed,
        global_negatives=config.global_negatives,
        views=config.views,
        score_temperature=config.score_temperature,
        score_clip=config.score_clip,
        score_penalty=config.score_penalty,
        scales=config.scales,
        channel_split=config.channel_split,
        online_probe_classes=int(num_classes or 0) if config.online_probe
        else 0,
    )
    if jit_compile is None:
        jit_compile = config.jit_compile
    optimizers = [reference_optimizer(config.lr) for _ in range(2)]
    if config.precision == "mixed_float16":
        # float16 gradients underflow without dynamic loss scaling.
        optimizers = [keras.optimizers.LossScaleOptimizer(o) for o in optimizers]
    model.compile(
        optimizer=optimizers[0],
        discriminator_optimizer=optimizers[1],
        jit_compile="auto" if jit_compile is None else jit_compile,
    )
    view = tuple(encoder.input.shape[1:])  # (H, W, 3), or (samples, 1)
    model.build((None,) + ((2,) + view if config.views == 2 else view))
    model.build_optimizers()
    return model


def _restore(model, resume_points, log):
    """Restores the newest checkpoint whose weights load into `model`.

    Args:
        model: the built training model.
        resume_points: `runs.resume_points(...)`, newest first.
        log: callable for the one-line warning of a skipped checkpoint.

    Returns:
        `(epochs_done, history)` of the checkpoint restored.

    Raises:
        runs.DamagedFileError: if none loads.
    """
    failed = []
    for path, epochs_done, history in resume_points:
        try:
            runs.restore_checkpoint(model, path)
        except runs.DamagedFileError as e:
            failed.append(e)
            continue
        for error in failed:
            log(runs.fallback_warning(error))
        if failed:
            log(f"Resuming from the previous checkpoint, {path}.")
        return epochs_done, list(history)
    raise runs.no_checkpoint_readable(failed)


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
        _recorded_recipe(run_dir) if writer else None
    )
    config = config.resolved(dataset, recipe=recipe)
    check_speech_settings(config, dataset)
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
    with lock:
        result = _train_locked(config, run_dir, dataset, distribution,
                               verbose, log, writer, callbacks)
    distribution.finish()
    return result


def _train_locked(config, run_dir, dataset, distribution, verbose, log,
                  writer=True, callbacks=None):
    """`train` from reading the run directory on, holding its lock.

    A process that is not a `writer` (a JAX worker other than process 0)
    neither reads nor writes `run_dir`: the chief sends it what it needs.
    """
    from dim_keras.data.pipeline import dataset_pipeline

    if writer:
        os.makedirs(run_dir, exist_ok=True)
        resume_points = runs.resume_points(run_dir, config, warn=log)
    else:
        resume_points = []
    epochs_done, history = (
        resume_points[0][1:] if resume_points else (0, [])
    )
    epochs_done = distribution.from_chief(epochs_done)
    history = list(history)
    paths = runs.run_paths(run_dir)
    result = {"paths": paths, "config": config, "dataset": dataset,
              "resumed": epochs_done > 0, "writer": writer}
    if epochs_done >= config.epochs:
        log(
            f"Run in {run_dir} already finished {epochs_done} epochs "
            f"(asked for {config.epochs}); nothing to do. Raise --epochs "
            "to continue it."
        )
        return dict(result, epochs_done=epochs_done, trained=False,
                    history=history)

    keras.utils.set_random_seed(config.seed)
    part = _monitored_part(config, dataset, distribution, log)
    speech = is_speech(dataset)
    steps_per_epoch = config.steps_per_epoch
    if speech:
        pipeline, steps_per_epoch = _speech_pipeline(config, dataset)
    else:
        pipeline = dataset_pipeline(
            dataset,
            config.batch_size,
            seed=config.seed,
            augment_images=config.augment,
            repeat=config.steps_per_epoch is not None,
            views=config.views,
            labels=(part.probe_labels
                    if part is not None and config.online_probe else None),
            held_out_fraction=(part.stream_fraction
                               if part is not None and config.online_probe
                               else None),
            view_crop=config.view_crop,
        )
    if not hasattr(pipeline, "on_epoch_end"):
        pipeline = distribution.adapt_pipeline(pipeline)
    if speech:
        augmentation = ("two chunks of one speaker, the other speakers of "
                        "the batch as negatives")
        examples = (f"{dataset.num_examples('train')} utterances of "
                    f"{dataset.num_classes} speakers, speech chunks of "
                    f"{dataset.chunk_length} samples")
    else:
        examples = f"{dataset.num_training_images} images"
        if config.views == 2:
            from dim_keras.data.views import for_crop

            augmentation = ("two views, each by "
                            f"{for_crop(config.view_crop).describe()}")
        else:
            augmentation = (
                dataset.augmentation.describe() if config.augment else "none"
            )
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        with distribution.scope():
            jit_compile = config.jit_compile
            if not distribution.supports_jit:
                if jit_compile:
                    log("XLA compilation is off under tf.distribute "
                        "strategies.")
                jit_compile = False
            classes = 0 if part is None else dataset.num_classes
            image_size = getattr(dataset, "image_size", None)
            chunk_length = getattr(dataset, "chunk_length", None)
            model = build_model(config, image_size, jit_compile, classes,
                                chunk_length)
            distribution.prepare_model(model, config.batch_size)
            restored = model
            if resume_points and distribution.shares_state:
                # The chief alone restores: into a model of its own.
                with local_variables():
                    restored = build_model(config, image_size, jit_compile,
                                           classes, chunk_length)
                    epochs_done, history = _restore(restored, resume_points,
                                                    log)
            elif resume_points:
                epochs_done, history = _restore(model, resume_points, log)
            # Processes sharing one state start from the chief's weights
            # (restored, or its initial ones) and its epoch count.
            epochs_done = distribution.from_chief(epochs_done)
            distribution.sync_from_chief(_training_state(model),
                                         _training_state(restored))
            del restored
            first_epoch, first_row = epochs_done, len(history)
            if epochs_done:
                log(
                    f"Resuming the run in {run_dir} from epoch "
                    f"{epochs_done + 1} ({epochs_done} of {config.epochs} "
                    "epochs done)."
                )
            if writer:
                with runs.saving(run_dir, epochs_done):
                    if resume_points:
                        # history.csv may hold a row of an epoch killed
                        # before its commit, or one of a newer, damaged
                        # checkpoint.
                        runs.write_history(run_dir, history)
                    # Written once the run's own files have been read back
                    # whole.
                    runs.write_config(run_dir, config)
            log(
                f"Training DIM on {config.dataset} "
                f"({examples}, "
                f"{keras.backend.backend()} backend, "
                f"{_describe_encoder(config)}, {config.estimator}, "
                f"alpha={config.alpha}, "
                f"beta={config.beta}, gamma={config.gamma}, lr={config.lr}, "
                f"{_describe_critic(config)}, augmentation: "
                f"{augmentation}{', occlusion' if config.occlusion else ''}) "
                f"for {config.epochs} epochs on {distribution.describe()}, "
                f"{config.precision}."
            )
            checkpoint = RunCheckpoint(
                run_dir if writer else None, model.encoder, history,
                info={"dataset": config.dataset},
            )
            # Before the checkpoint: it writes the logs they add.
            monitors = [Throughput(config.batch_size)]
            if part is not None:
                monitors.append(OnlineMonitors(
                    part, model.online_probe_heads,
                    knn_every=config.knn_every, log=log))
            board = []
            if writer:
                board = _tensorboard(config, dataset, run_dir, epochs_done,
                                     log)
            if speech and hasattr(pipeline, "on_epoch_end"):
                pipeline.epoch = epochs_done  # resumed: the next epoch's pairs
            model.fit(
                pipeline,
                epochs=config.epochs,
                initial_epoch=epochs_done,
                steps_per_epoch=steps_per_epoch,
                callbacks=monitors + [checkpoint] + board
                + list(callbacks or ()),
                shuffle=False,  # the pipeline shuffles
                verbose=verbose,
            )
    finally:
        keras.config.set_dtype_policy(previous_policy)
    if checkpoint.diverged_at is not None:
        epoch, logs = checkpoint.diverged_at
        raise RunError(
            f"Training stopped: a non-finite loss in epoch {epoch} "
            f"({', '.join(f'{k}={v:.4g}' for k, v in logs.items())}). "
            f"The last good epoch ({len(history)}) is kept in {run_dir}; "
            "try a lower --lr or another --estimator."
        )
    # A process that does not write the run holds only its own epochs' rows.
    epochs_done = first_epoch + len(history) - first_row
    return dict(result, epochs_done=epochs_done, trained=True,
                history=history, model=model)
