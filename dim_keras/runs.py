"""The run directory: its files, how they are written, and reading them back.

A run directory (`dim-keras train --out DIR`) holds:

- `config.json`: every setting, enough to repeat the run;
- `encoder.keras`: the encoder after the last finished epoch, loadable
  without `dim_keras`; `encoder.json` describes its input and outputs (see
  `dim_keras.encoder_file`);
- `checkpoint.weights.h5`: what a resumed run starts from: all weights,
  both optimizers' state and, in the file's attributes, the epochs done and
  the history so far;
- `state.json`: a readable copy of those attributes;
- `history.csv`: one row per finished epoch;
- after evaluation, `evaluation.json`, `evaluation.md` and plots.

Every file is written atomically (`dim_keras.atomic`). After each epoch
`encoder.keras` and `history.csv` are written first and the checkpoint
last: the checkpoint is the commit point, one file holding weights,
optimizer state and epoch count together, so a run killed at any point
resumes from its last committed epoch with matching history.
"""

import csv
import io
import json
import os

import h5py

from dim_keras import atomic
from dim_keras.config import TrainConfig
from dim_keras.encoder_file import load_encoder_file
from dim_keras.encoder_file import metadata_path

CONFIG_FILE = "config.json"
ENCODER_FILE = "encoder.keras"
ENCODER_METADATA_FILE = os.path.basename(metadata_path(ENCODER_FILE))
CHECKPOINT_FILE = "checkpoint.weights.h5"
STATE_FILE = "state.json"
HISTORY_FILE = "history.csv"
# Attribute of the checkpoint file holding its epochs done and history.
STATE_ATTR = "dim_keras_state"
# Settings that may change between a run and its resumption.
RESUMABLE_CHANGES = ("epochs", "data_dir", "distribute", "jit_compile")


class RunError(Exception):
    """A problem with a run that the user can fix; its message says how."""


def run_paths(run_dir):
    """The paths of a run directory's files.

    Args:
        run_dir: str, the run directory.

    Returns:
        Dict with `run_dir`, `config`, `encoder`, `history`, `checkpoint`
        and `state`.
    """
    return {
        "run_dir": run_dir,
        "config": os.path.join(run_dir, CONFIG_FILE),
        "encoder": os.path.join(run_dir, ENCODER_FILE),
        "history": os.path.join(run_dir, HISTORY_FILE),
        "checkpoint": os.path.join(run_dir, CHECKPOINT_FILE),
        "state": os.path.join(run_dir, STATE_FILE),
    }


def write_config(run_dir, config):
    """Writes a run's `config.json` (atomically).

    Args:
        run_dir: str.
        config: the `TrainConfig`.
    """
    atomic.write_text(
        os.path.join(run_dir, CONFIG_FILE),
        json.dumps(config.to_dict(), indent=2),
    )


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


def write_history(run_dir, rows):
    """Writes a run's `history.csv` (atomically)."""
    atomic.write_text(os.path.join(run_dir, HISTORY_FILE), history_csv(rows))


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

    atomic.save(path, write)


def commit_epoch(model, run_dir, history):
    """Commits a finished epoch: the checkpoint, then `state.json`.

    Args:
        model: the training model.
        run_dir: str.
        history: list of rows of every finished epoch, this one last.
    """
    state = {"epochs_done": len(history), "history": history}
    # The commit point: weights, optimizers and epoch count together.
    save_checkpoint(model, os.path.join(run_dir, CHECKPOINT_FILE), state)
    atomic.write_text(
        os.path.join(run_dir, STATE_FILE), json.dumps(state, indent=1)
    )


def read_checkpoint_state(path):
    """Returns the state dict stored in a checkpoint, or None if absent."""
    if not os.path.exists(path):
        return None
    with h5py.File(path, "r") as f:
        raw = f.attrs.get(STATE_ATTR)
    return None if raw is None else json.loads(raw)


def restore_checkpoint(model, path):
    """Loads every weight and both optimizers' state saved in `path`.

    Args:
        model: a model from `dim_keras.training.build_model` with the run's
            settings.
        path: str, the run's `checkpoint.weights.h5`.

    Raises:
        RunError: if the checkpoint does not fit the model.
    """
    try:
        model.load_weights(path)
    except (ValueError, OSError) as e:
        raise RunError(f"cannot resume from {path}: {e}")


def _comparable(config_dict):
    # Fill in defaults, so runs written before a setting existed compare.
    settings = TrainConfig.from_dict(config_dict).to_dict()
    for name in RESUMABLE_CHANGES:
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
    paths = run_paths(run_dir)
    if not os.path.exists(paths["config"]):
        return 0, []
    try:
        with open(paths["config"]) as f:
            previous = _comparable(json.load(f))
    except (ValueError, TypeError) as e:
        raise RunError(
            f"{paths['config']} is not a dim-keras run config: {e}"
        )
    current = _comparable(config.to_dict())
    # An encoder left unset means the dataset's default, which the run
    # recorded when it started (the dataset itself is compared).
    if current.get("encoder") is None:
        current["encoder"] = previous.get("encoder")
    if previous != current:
        changed = sorted(
            k for k in set(previous) | set(current)
            if previous.get(k) != current.get(k)
        )
        raise RunError(
            f"{run_dir} holds a run with other settings ({', '.join(changed)}); "
            "use another --out, or the same settings to resume it."
        )
    state = read_checkpoint_state(paths["checkpoint"])
    if state is None and os.path.exists(paths["state"]):
        with open(paths["state"]) as f:
            state = json.load(f)
    if state is None or not os.path.exists(paths["checkpoint"]):
        return 0, []
    return int(state["epochs_done"]), list(state["history"])


def read_run_config(run_dir):
    """Reads the `config.json` of a run directory with a trained encoder.

    Args:
        run_dir: str.

    Returns:
        The settings dict.

    Raises:
        RunError: when `run_dir` is not a run directory with a trained
            encoder, or its config cannot be read.
    """
    paths = run_paths(run_dir)
    if not os.path.isdir(run_dir):
        raise RunError(f"No run directory at {run_dir}.")
    if not os.path.exists(paths["config"]) or not os.path.exists(
        paths["encoder"]
    ):
        raise RunError(
            f"{run_dir} is not a run directory with a trained encoder "
            f"(needs {CONFIG_FILE} and {ENCODER_FILE}); train one with "
            "`dim-keras train --out DIR`."
        )
    try:
        with open(paths["config"]) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"Cannot read {paths['config']}: {e}") from e


def encoder_path(path):
    """The encoder file of a run directory, or `path` if it is one.

    Args:
        path: a `.keras` file, or a run directory holding `encoder.keras`.

    Returns:
        str, the `.keras` file.

    Raises:
        ValueError: if `path` is neither.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            raise ValueError(
                "This is a SavedModel; load it with tf.saved_model.load or "
                f"keras.layers.TFSMLayer. Received: path={path}"
            )
        candidate = os.path.join(path, ENCODER_FILE)
        if not os.path.exists(candidate):
            raise ValueError(
                f"No {ENCODER_FILE} in this directory (is it a run directory "
                f"with a finished epoch?). Received: path={path}"
            )
        return candidate
    if not os.path.exists(path):
        raise ValueError(f"No such file or directory. Received: path={path}")
    if not path.endswith(".keras"):
        raise ValueError(
            f"Expected a .keras file or a run directory. Received: path={path}"
        )
    return path


def load_encoder(path):
    """Loads a DIM encoder from a `.keras` file or a run directory.

    Loading uses Keras's safe mode; the encoder needs no `dim_keras` code.

    Example:

    ```python
    encoder = dim_keras.load_encoder("runs/my-run")
    features = encoder(images)["y"]
    ```

    Args:
        path: a `.keras` file, or a run directory holding `encoder.keras`.

    Returns:
        The Functional encoder (dict outputs `local`, `conv`, `fc`, `y`).

    Raises:
        ValueError: if `path` holds no loadable DIM encoder.
    """
    return load_encoder_file(encoder_path(path))


def read_encoder_info(encoder_file):
    """Run fields (dataset, epochs done) from an encoder's sidecar.

    Args:
        encoder_file: str, a `.keras` file.

    Returns:
        Dict with the `dataset` and `epochs_done` the sidecar records
        (empty when it has none, or no sidecar exists).
    """
    try:
        with open(metadata_path(encoder_file)) as f:
            metadata = json.load(f)
    except (OSError, ValueError):
        return {}
    keys = ("dataset", "epochs_done")
    return {k: metadata[k] for k in keys if k in metadata}
