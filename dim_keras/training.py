"""A DIM training run: its settings, its run directory, resuming it.

A run directory holds:

- `config.json`: every setting, enough to repeat the run;
- `encoder.keras`: the encoder after the last finished epoch, loadable
  without `dim_keras`; `encoder.json` describes its input and outputs (see
  `dim_keras.export`);
- `checkpoint.weights.h5`: what a resumed run starts from: all weights,
  both optimizers' state and, in the file's attributes, the epochs done and
  the history so far;
- `state.json`: a readable copy of those attributes;
- `history.csv`: one row per finished epoch.

Every file is written atomically (to a temporary name, then renamed). After
each epoch `encoder.keras` and `history.csv` are written first and the
checkpoint last: the checkpoint is the commit point, one file holding
weights, optimizer state and epoch count together, so a run killed at any
point resumes from its last committed epoch with matching history.
"""

import csv
import dataclasses
import io
import json
import math
import os
import sys

import h5py
import keras
import numpy as np

from dim_keras import estimators
from dim_keras.distribute import make_distribution
from dim_keras.distribute import input_pipeline
from dim_keras.distribute import prepare_model
from dim_keras.distribute import unsynchronized_batch_norm
from dim_keras import objective
from dim_keras.networks.critics import LOCAL_CRITICS
from dim_keras.networks.encoders import ENCODERS

CONFIG_FILE = "config.json"
ENCODER_FILE = "encoder.keras"
ENCODER_METADATA_FILE = "encoder.json"
CHECKPOINT_FILE = "checkpoint.weights.h5"
STATE_FILE = "state.json"
HISTORY_FILE = "history.csv"
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# Attribute of the checkpoint file holding its epochs done and history.
STATE_ATTR = "dim_keras_state"


class RunError(Exception):
    """A problem with a run that the user can fix; its message says how."""


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a training run.

    Args:
        dataset: str, dataset name (see `dim_keras.data.DATASETS`).
        data_dir: str or None, where downloaded datasets live.
        encoder: str or None, encoder architecture; None picks the
            dataset's default.
        estimator: `"jsd"`, `"dv"` or `"nce"`.
        alpha: weight of global MI.
        beta: weight of local MI.
        gamma: weight of prior matching.
        epochs: int or None; None picks the dataset's default.
        batch_size: int, at least 2.
        lr: float, Adam learning rate of both optimizers.
        seed: int, seeds weights, shuffling and prior samples.
        local_critic: `"encode_and_dot"` or `"concat_and_convolve"`.
        critic_units: int or None, local critic width (None: its default).
        gradient_penalty: float, prior discriminator's gradient penalty.
        jit_compile: bool or None, XLA-compile the train step; None
            (auto) compiles it on a GPU but not on a CPU, where XLA ran
            the mixed_bfloat16 step 1.4-1.6x slower than TensorFlow's own
            kernels and the float32 step within 10% of them, either way
            (see the README's Performance section). Off under
            tf.distribute strategies.
        augment: bool, apply the dataset's training augmentation (random
            crops and flips where the paper used them).
        occlusion: bool, compute Y from images with a random block
            masked while local features come from the clean images.
        steps_per_epoch: int or None, batches per epoch; None runs one
            pass over the training images per epoch.
        distribute: how to spread training over devices and hosts, one of
            `dim_keras.distribute.STRATEGIES`; `batch_size` is the global
            batch, split over the replicas.
        global_negatives: bool, every replica scores against the whole
            global batch (default: against its own share).
        precision: `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`
            (Keras dtype policy; estimators always compute in float32).
    """

    dataset: str = "digits"
    data_dir: str = None
    encoder: str = None
    estimator: str = "jsd"
    alpha: float = 0.0
    beta: float = 1.0
    gamma: float = 0.1
    epochs: int = None
    batch_size: int = 64
    lr: float = 1e-4
    seed: int = 0
    local_critic: str = "encode_and_dot"
    critic_units: int = None
    gradient_penalty: float = 1.0
    jit_compile: bool = None
    augment: bool = True
    occlusion: bool = False
    steps_per_epoch: int = None
    distribute: str = "auto"
    global_negatives: bool = False
    precision: str = "float32"

    def validate(self):
        """Checks every setting that can be checked without loading data.

        Raises:
            ValueError: naming the bad setting and its value.
        """
        from dim_keras.data import check_name

        check_name(self.dataset)
        if self.encoder is not None and self.encoder not in ENCODERS:
            raise ValueError(
                f"Unknown encoder; expected one of {', '.join(ENCODERS)}. "
                f"Received: encoder={self.encoder!r}"
            )
        if self.local_critic not in LOCAL_CRITICS:
            raise ValueError(
                "Unknown local critic; expected one of "
                f"{', '.join(LOCAL_CRITICS)}. "
                f"Received: local_critic={self.local_critic!r}"
            )
        estimators.check_estimator(self.estimator)
        objective.check_weights(self.alpha, self.beta, self.gamma)
        if self.batch_size < 2:
            raise ValueError(
                "batch_size must be at least 2 (negatives are the other "
                f"images of the batch). Received: batch_size={self.batch_size}"
            )
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(
                f"epochs must be at least 1. Received: epochs={self.epochs}"
            )
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(
                "steps_per_epoch must be at least 1. "
                f"Received: steps_per_epoch={self.steps_per_epoch}"
            )
        from dim_keras.distribute import check_strategy

        check_strategy(self.distribute)
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"Unknown precision; expected one of {', '.join(PRECISIONS)}. "
                f"Received: precision={self.precision!r}"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be positive. Received: lr={self.lr}")
        if self.critic_units is not None and self.critic_units < 1:
            raise ValueError(
                "critic_units must be positive. "
                f"Received: critic_units={self.critic_units}"
            )
        if self.gradient_penalty < 0:
            raise ValueError(
                "gradient_penalty must be non-negative. "
                f"Received: gradient_penalty={self.gradient_penalty}"
            )
        if self.jit_compile not in (None, True, False):
            raise ValueError(
                "jit_compile must be true, false or null (auto). "
                f"Received: jit_compile={self.jit_compile!r}"
            )
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Builds a config from a dict, refusing unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(
                f"Unknown config keys; expected some of {sorted(names)}. "
                f"Received: {unknown}"
            )
        return cls(**values)


def atomic_write_text(path, text):
    """Writes `text` to `path` so that `path` is never half-written."""
    tmp = f"{path}.partial-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_save(path, save_fn):
    """Calls `save_fn(tmp_path)` then renames the result to `path`.

    The temporary name keeps `path`'s suffix (Keras checks suffixes such as
    `.keras` and `.weights.h5`).

    Args:
        path: final file path.
        save_fn: callable writing a file at the path it is given.
    """
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, f".partial-{os.getpid()}-{base}")
    try:
        save_fn(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def history_csv(rows):
    """Renders history rows (dicts with an `epoch` key) as CSV text."""
    if not rows:
        return ""
    keys = ["epoch"] + sorted(k for k in rows[0] if k != "epoch")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _scalar(value):
    """A log value (scalar, or shape-[1] under some strategies) as a float."""
    return float(np.asarray(value, dtype="float64").reshape(-1)[0])


def save_checkpoint(model, path, state):
    """Atomically writes all weights and `state` into one `.weights.h5`.

    The file holds every variable of `model` (networks, both optimizers,
    random generator state) and `state` as a JSON attribute, so that
    weights and epoch count can never disagree.

    Args:
        model: a built `keras.Model`.
        path: str, ending in `.weights.h5`.
        state: JSON-serializable dict (`epochs_done`, `history`).
    """

    def write(tmp):
        model.save_weights(tmp)
        with h5py.File(tmp, "a") as f:
            f.attrs[STATE_ATTR] = json.dumps(state)

    atomic_save(path, write)


def read_checkpoint_state(path):
    """Returns the state dict stored in a checkpoint, or None if absent."""
    if not os.path.exists(path):
        return None
    with h5py.File(path, "r") as f:
        raw = f.attrs.get(STATE_ATTR)
    return None if raw is None else json.loads(raw)


class RunCheckpoint(keras.callbacks.Callback):
    """Saves the run after every epoch and stops on a non-finite loss.

    Args:
        run_dir: str, the run directory.
        encoder: the encoder to export as `encoder.keras`.
        history: list of rows of the epochs already done (extended here).
        info: dict or None, run fields saved in `encoder.json`.
        save_encoder: callable `(encoder, path, info)`; defaults to
            `dim_keras.export.save_encoder` (`encoder.keras` and
            `encoder.json`, both atomic).
    """

    def __init__(self, run_dir, encoder, history, info=None,
                 save_encoder=None):
        super().__init__()
        self.run_dir = run_dir
        self.encoder = encoder
        self.history = history
        self.info = dict(info or {})
        self.save_encoder = save_encoder or _save_encoder
        self.diverged_at = None

    def _path(self, name):
        return os.path.join(self.run_dir, name)

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
        history = self.history + [row]
        self.save_encoder(
            self.encoder,
            self._path(ENCODER_FILE),
            dict(self.info, epochs_done=epoch + 1),
        )
        atomic_write_text(self._path(HISTORY_FILE), history_csv(history))
        state = {"epochs_done": epoch + 1, "history": history}
        # The commit point: weights, optimizers and epoch count together.
        save_checkpoint(self.model, self._path(CHECKPOINT_FILE), state)
        self.history.append(row)
        atomic_write_text(self._path(STATE_FILE), json.dumps(state, indent=1))


# Settings that may change between a run and its resumption.
_RESUMABLE_CHANGES = ("epochs", "data_dir", "distribute", "jit_compile")


def _comparable(config_dict):
    # Fill in defaults, so runs written before a setting existed compare.
    settings = TrainConfig.from_dict(config_dict).to_dict()
    for name in _RESUMABLE_CHANGES:
        settings.pop(name, None)
    return settings


def read_run_state(run_dir, config):
    """Reads what a previous run left in `run_dir`.

    The checkpoint's own record of its epochs is trusted first; `state.json`
    is read only for checkpoints that lack one.

    Args:
        run_dir: str.
        config: the `TrainConfig` asked for now.

    Returns:
        `(epochs_done, history)`; `(0, [])` for a new run.

    Raises:
        RunError: if `run_dir` holds a run with other settings.
    """
    config_path = os.path.join(run_dir, CONFIG_FILE)
    state_path = os.path.join(run_dir, STATE_FILE)
    checkpoint_path = os.path.join(run_dir, CHECKPOINT_FILE)
    if not os.path.exists(config_path):
        return 0, []
    try:
        with open(config_path) as f:
            previous = _comparable(json.load(f))
    except (ValueError, TypeError) as e:
        raise RunError(f"{config_path} is not a dim-keras run config: {e}")
    current = _comparable(config.to_dict())
    if previous != current:
        changed = sorted(
            k for k in set(previous) | set(current)
            if previous.get(k) != current.get(k)
        )
        raise RunError(
            f"{run_dir} holds a run with other settings ({', '.join(changed)}); "
            "use another --out, or the same settings to resume it."
        )
    state = read_checkpoint_state(checkpoint_path)
    if state is None and os.path.exists(state_path):
        with open(state_path) as f:
            state = json.load(f)
    if state is None or not os.path.exists(checkpoint_path):
        return 0, []
    return int(state["epochs_done"]), list(state["history"])


def build_model(config, image_size, jit_compile=None):
    """Builds and compiles the `DeepInfoMax` model a config describes.

    Call it under the wanted dtype policy and distribution scope.

    Args:
        config: a validated `TrainConfig` with `encoder` set.
        image_size: int, input height and width.
        jit_compile: bool or None; None takes `config.jit_compile` (and
            None there: Keras's "auto", XLA on a GPU only).

    Returns:
        A compiled, built `DeepInfoMax` with both optimizers built.
    """
    from dim_keras.model import DeepInfoMax
    from dim_keras.model import reference_optimizer
    from dim_keras.networks.encoders import build_encoder

    encoder = build_encoder(config.encoder, image_size=image_size)
    model = DeepInfoMax(
        encoder,
        estimator=config.estimator,
        alpha=config.alpha,
        beta=config.beta,
        gamma=config.gamma,
        local_critic=config.local_critic,
        local_critic_units=config.critic_units,
        gradient_penalty=config.gradient_penalty,
        occlusion=config.occlusion,
        seed=config.seed,
        global_negatives=config.global_negatives,
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
    model.build((None, image_size, image_size, 3))
    model.build_optimizers()
    return model


def _save_encoder(encoder, path, info=None):
    """`export.save_encoder` (atomic `.keras` and `.json`), unsynchronized.

    Synchronized batch norm is a training setting, not part of the file.
    """
    from dim_keras.export import save_encoder

    with unsynchronized_batch_norm(encoder):
        save_encoder(encoder, path, info=info)


def restore_checkpoint(model, path):
    """Loads every weight and both optimizers' state saved in `path`.

    Args:
        model: a model from `build_model` with the run's settings.
        path: str, the run's `checkpoint.weights.h5`.

    Raises:
        RunError: if the checkpoint does not fit the model.
    """
    try:
        model.load_weights(path)
    except (ValueError, OSError) as e:
        raise RunError(f"cannot resume from {path}: {e}")


def train(config, run_dir, verbose=None, log=print):
    """Trains DIM as `config` says, saving and resuming in `run_dir`.

    Args:
        config: `TrainConfig`.
        run_dir: str, run directory (created if needed).
        verbose: Keras `fit` verbosity; None shows a progress bar on a
            terminal and one line per epoch otherwise.
        log: callable for one-line messages.

    Returns:
        Dict with the run's paths, epochs done, history and, when it
        trained, the trained `model`.

    Raises:
        RunError: on settings that clash with the run directory, or a
            non-finite loss.
    """
    from dim_keras.data import get_dataset
    from dim_keras.data.pipeline import dataset_pipeline
    from dim_keras.networks.encoders import ENCODER_IMAGE_SIZE

    config.validate()
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    dataset = get_dataset(
        config.dataset,
        data_dir=config.data_dir,
        image_size=ENCODER_IMAGE_SIZE.get(config.encoder),
    )
    if config.encoder is None:
        config.encoder = dataset.default_encoder
    if config.epochs is None:
        config.epochs = dataset.default_epochs
    # Multi-worker strategies must exist before TensorFlow runs anything.
    try:
        distribution = make_distribution(config.distribute)
    except ValueError as e:
        raise RunError(str(e))
    if config.batch_size % distribution.num_replicas:
        raise RunError(
            f"batch_size must be a multiple of the {distribution.num_replicas}"
            f" replicas ({distribution.describe()}). "
            f"Received: batch_size={config.batch_size}"
        )
    if not distribution.is_chief:
        # Other workers keep their own copy, never racing the chief's files.
        run_dir = os.path.join(run_dir, f"worker-{distribution.worker_index}")
    os.makedirs(run_dir, exist_ok=True)
    epochs_done, history = read_run_state(run_dir, config)
    paths = {
        "run_dir": run_dir,
        "config": os.path.join(run_dir, CONFIG_FILE),
        "encoder": os.path.join(run_dir, ENCODER_FILE),
        "history": os.path.join(run_dir, HISTORY_FILE),
        "checkpoint": os.path.join(run_dir, CHECKPOINT_FILE),
    }
    if epochs_done >= config.epochs:
        log(
            f"Run in {run_dir} already finished {epochs_done} epochs "
            f"(asked for {config.epochs}); nothing to do. Raise --epochs "
            "to continue it."
        )
        return {"paths": paths, "epochs_done": epochs_done, "resumed": True,
                "trained": False, "history": history}

    atomic_write_text(paths["config"], json.dumps(config.to_dict(), indent=2))
    keras.utils.set_random_seed(config.seed)
    pipeline = dataset_pipeline(
        dataset,
        config.batch_size,
        seed=config.seed,
        augment_images=config.augment,
        repeat=config.steps_per_epoch is not None,
    )
    pipeline = input_pipeline(pipeline, distribution)
    num_images = dataset.num_training_images
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
            model = build_model(config, dataset.image_size, jit_compile)
            prepare_model(model, distribution, config.batch_size)
            if epochs_done:
                restore_checkpoint(model, paths["checkpoint"])
                # history.csv may hold a row of an epoch killed before its
                # commit.
                atomic_write_text(paths["history"], history_csv(history))
                log(
                    f"Resuming the run in {run_dir} from epoch "
                    f"{epochs_done + 1} ({epochs_done} of {config.epochs} "
                    "epochs done)."
                )
            log(
                f"Training DIM on {config.dataset} ({num_images} images, "
                f"{keras.backend.backend()} backend, "
                f"{config.encoder}, {config.estimator}, alpha={config.alpha}, "
                f"beta={config.beta}, gamma={config.gamma}, augmentation: "
                f"{augmentation}{', occlusion' if config.occlusion else ''}) "
                f"for {config.epochs} epochs on {distribution.describe()}, "
                f"{config.precision}."
            )
            checkpoint = RunCheckpoint(
                run_dir, model.encoder, history,
                info={"dataset": config.dataset},
            )
            model.fit(
                pipeline,
                epochs=config.epochs,
                initial_epoch=epochs_done,
                steps_per_epoch=config.steps_per_epoch,
                callbacks=[checkpoint],
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
    return {
        "paths": paths,
        "epochs_done": len(history),
        "resumed": epochs_done > 0,
        "trained": True,
        "history": history,
        "model": model,
    }
