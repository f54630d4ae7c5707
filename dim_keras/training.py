"""A DIM training run: its settings, its run directory, resuming it.

A run directory holds:

- `config.json`: every setting, enough to repeat the run;
- `encoder.keras`: the encoder after the last finished epoch;
- `checkpoint.weights.h5` and `state.json`: what a resumed run starts from
  (all weights, both optimizers' state, epochs done, the history so far);
- `history.csv`: one row per finished epoch.

Every file is written atomically (to a temporary name, then renamed), and
`state.json` is written last, so a run killed at any point resumes from its
last finished epoch.
"""

import csv
import dataclasses
import io
import json
import math
import os
import sys

import keras

from dim_keras import estimators
from dim_keras import objective
from dim_keras.networks.critics import LOCAL_CRITICS
from dim_keras.networks.encoders import ENCODERS

CONFIG_FILE = "config.json"
ENCODER_FILE = "encoder.keras"
CHECKPOINT_FILE = "checkpoint.weights.h5"
STATE_FILE = "state.json"
HISTORY_FILE = "history.csv"


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
            (see the README's Performance section).
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

    def validate(self):
        """Checks every setting that can be checked without loading data.

        Raises:
            ValueError: naming the bad setting and its value.
        """
        from dim_keras.data import DATASETS

        if self.dataset not in DATASETS:
            raise ValueError(
                f"Unknown dataset; expected one of {', '.join(DATASETS)}. "
                f"Received: dataset={self.dataset!r}"
            )
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


class RunCheckpoint(keras.callbacks.Callback):
    """Saves the run after every epoch and stops on a non-finite loss.

    Args:
        run_dir: str, the run directory.
        encoder: the encoder to export as `encoder.keras`.
        history: list of rows of the epochs already done (extended here).
    """

    def __init__(self, run_dir, encoder, history):
        super().__init__()
        self.run_dir = run_dir
        self.encoder = encoder
        self.history = history
        self.diverged_at = None

    def _path(self, name):
        return os.path.join(self.run_dir, name)

    def on_epoch_end(self, epoch, logs=None):
        # Checked once per epoch, not per batch: reading the logs every
        # batch makes each step wait for the host (a device sync on an
        # accelerator; on a CPU it measured within noise). An epoch's mean
        # logs are non-finite whenever one of its batches was.
        logs = {k: float(v) for k, v in (logs or {}).items()}
        if not all(math.isfinite(v) for v in logs.values()):
            self.diverged_at = (epoch + 1, logs)
            self.model.stop_training = True
            return
        row = {"epoch": epoch + 1}
        row.update(logs)
        self.history.append(row)
        atomic_save(self._path(CHECKPOINT_FILE), self.model.save_weights)
        atomic_save(self._path(ENCODER_FILE), self.encoder.save)
        atomic_write_text(self._path(HISTORY_FILE), history_csv(self.history))
        state = {"epochs_done": epoch + 1, "history": self.history}
        atomic_write_text(self._path(STATE_FILE), json.dumps(state, indent=1))


def _comparable(config_dict):
    settings = dict(config_dict)
    settings.pop("epochs", None)
    settings.pop("data_dir", None)
    settings.pop("jit_compile", None)  # speed only: may change on resume
    return settings


def read_run_state(run_dir, config):
    """Reads what a previous run left in `run_dir`.

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
    if not os.path.exists(config_path):
        return 0, []
    with open(config_path) as f:
        previous = json.load(f)
    if _comparable(previous) != _comparable(config.to_dict()):
        changed = sorted(
            k
            for k in set(_comparable(previous)) | set(_comparable(config.to_dict()))
            if _comparable(previous).get(k) != _comparable(config.to_dict()).get(k)
        )
        raise RunError(
            f"{run_dir} holds a run with other settings ({', '.join(changed)}); "
            "use another --out, or the same settings to resume it."
        )
    if not os.path.exists(state_path):
        return 0, []
    with open(state_path) as f:
        state = json.load(f)
    return int(state["epochs_done"]), list(state["history"])


def build_model(config, image_size):
    """Builds and compiles the `DeepInfoMax` model a config describes.

    Args:
        config: a validated `TrainConfig` with `encoder` set.
        image_size: int, input height and width.

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
        seed=config.seed,
    )
    model.compile(
        optimizer=reference_optimizer(config.lr),
        discriminator_optimizer=reference_optimizer(config.lr),
        jit_compile=(
            "auto" if config.jit_compile is None else config.jit_compile
        ),
    )
    model.build((None, image_size, image_size, 3))
    model.build_optimizers()
    return model


def train(config, run_dir, verbose=None, log=print):
    """Trains DIM as `config` says, saving and resuming in `run_dir`.

    Args:
        config: `TrainConfig`.
        run_dir: str, run directory (created if needed).
        verbose: Keras `fit` verbosity; None shows a progress bar on a
            terminal and one line per epoch otherwise.
        log: callable for one-line messages.

    Returns:
        Dict with the run's paths, epochs done and final logs.

    Raises:
        RunError: on settings that clash with the run directory, or a
            non-finite loss.
    """
    from dim_keras.data import get_dataset
    from dim_keras.data.pipeline import training_pipeline

    config.validate()
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    dataset = get_dataset(config.dataset, data_dir=config.data_dir)
    if config.encoder is None:
        config.encoder = dataset.default_encoder
    if config.epochs is None:
        config.epochs = dataset.default_epochs
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
    images = dataset.training_images()
    pipeline = training_pipeline(images, config.batch_size, seed=config.seed)
    model = build_model(config, dataset.image_size)
    if epochs_done:
        model.load_weights(paths["checkpoint"])
        log(f"Resuming the run in {run_dir} from epoch {epochs_done + 1}.")
    log(
        f"Training DIM on {config.dataset} ({len(images)} images, "
        f"{config.encoder}, {config.estimator}, alpha={config.alpha}, "
        f"beta={config.beta}, gamma={config.gamma}) for "
        f"{config.epochs} epochs."
    )
    checkpoint = RunCheckpoint(run_dir, model.encoder, history)
    model.fit(
        pipeline,
        epochs=config.epochs,
        initial_epoch=epochs_done,
        callbacks=[checkpoint],
        shuffle=False,  # the pipeline shuffles
        verbose=verbose,
    )
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
    }
