"""The run directory: its files, how they are written, and reading them back.

A run directory (`dim-keras train --out DIR`) holds:

- `config.json`: every setting, enough to repeat the run;
- `encoder.keras`: the encoder after the last finished epoch, loadable
  without `dim_keras`; `encoder.json` describes its input and outputs (see
  `dim_keras.encoder_file`);
- `checkpoint.weights.h5`: what a resumed run starts from: all weights,
  both optimizers' state and, in the file's attributes, the epochs done and
  the history so far; `checkpoint.previous.weights.h5` is the epoch before,
  kept so that a damaged newest checkpoint still resumes;
- `state.json`: a readable copy of those attributes;
- `history.csv`: one row per finished epoch;
- after evaluation, `evaluation.json`, `evaluation.md` and plots.

Every file is written atomically (`dim_keras.atomic`). After each epoch
`encoder.keras` and `history.csv` are written first and the checkpoint
last: the checkpoint is the commit point, one file holding weights,
optimizer state and epoch count together, so a run killed at any point
resumes from its last committed epoch with matching history.

A write that fails (a full disk, a directory made read-only or
unwritable) stops the run with `WriteError`, one line naming the file and
the reason; the files of the last saved epoch are left whole (`saving`).

Files also get damaged outside the program (interrupted copies, full disks
elsewhere, bit rot). Every file read back from a run is checked: a damaged
one raises `DamagedFileError`, one line naming the file and the way forward.
"""

import contextlib
import csv
import errno
import io
import json
import math
import os
import re

import h5py

from dim_keras import atomic
from dim_keras.config import TrainConfig
from dim_keras.encoder_file import load_encoder_file
from dim_keras.encoder_file import metadata_path
from dim_keras.recipes import RECIPE_FIELDS

CONFIG_FILE = "config.json"
ENCODER_FILE = "encoder.keras"
ENCODER_METADATA_FILE = os.path.basename(metadata_path(ENCODER_FILE))
CHECKPOINT_FILE = "checkpoint.weights.h5"
PREVIOUS_CHECKPOINT_FILE = "checkpoint.previous.weights.h5"
STATE_FILE = "state.json"
HISTORY_FILE = "history.csv"
# Attribute of the checkpoint file holding its epochs done and history.
STATE_ATTR = "dim_keras_state"
# Settings that may change between a run and its resumption.
RESUMABLE_CHANGES = ("epochs", "data_dir", "distribute", "jit_compile",
                     "knn_every")


class RunError(Exception):
    """A problem with a run that the user can fix; its message says how."""


class DamagedFileError(RunError, ValueError):
    """A file of a run or search directory that cannot be read as what it
    should be (truncated, empty, overwritten, from another program).

    Args:
        path: str, the damaged file.
        problem: str, what is wrong with it, in a few words.
        remedy: str, what the user can do.
    """

    def __init__(self, path, problem, remedy):
        self.path = path
        self.problem = problem
        super().__init__(f"{path} is damaged ({problem}); {remedy}")


# The way forward when a run's own file is damaged.
START_OVER = "start over with another --out, or remove the damaged file"


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_json(path, kind=dict, remedy=START_OVER):
    """Reads a JSON file that must hold a `kind` (an object by default).

    Args:
        path: str, an existing file.
        kind: the Python type the top-level value must have.
        remedy: str, the way forward named in the error.

    Returns:
        The parsed value.

    Raises:
        DamagedFileError: if the file is unreadable, not JSON (empty,
            truncated, binary) or holds another type.
    """
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DamagedFileError(path, f"not readable JSON: {_first_line(e)}",
                               remedy) from None
    if not isinstance(value, kind):
        raise DamagedFileError(
            path, f"holds a JSON {type(value).__name__}, not a "
            f"{'JSON object' if kind is dict else kind.__name__}", remedy)
    return value


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


@contextlib.contextmanager
def naming(path):
    """Names `path` in an `OSError` of writing it that names no file.

    A failed `write` or `fsync` (a full disk) does not say which file it
    was writing.

    Args:
        path: str, the file being written.
    """
    try:
        yield
    except OSError as e:
        if not e.filename:
            e.filename = path
        raise


def write_config(run_dir, config):
    """Writes a run's `config.json` (atomically).

    Args:
        run_dir: str.
        config: the `TrainConfig`.
    """
    path = os.path.join(run_dir, CONFIG_FILE)
    with naming(path):
        atomic.write_text(path, json.dumps(config.to_dict(), indent=2))


def history_csv(rows):
    """Renders history rows (dicts with an `epoch` key) as CSV text.

    A column that some rows lack (logged only from a later version or
    epoch on) is `nan` there.
    """
    if not rows:
        return ""
    names = {k for row in rows for k in row if k != "epoch"}
    keys = ["epoch"] + sorted(names)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, restval="nan",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_history(run_dir, rows):
    """Writes a run's `history.csv` (atomically)."""
    path = os.path.join(run_dir, HISTORY_FILE)
    with naming(path):
        atomic.write_text(path, history_csv(rows))


def read_history(path):
    """Reads a `history.csv` into a dict of column name to list of floats.

    Args:
        path: str, an existing `history.csv`.

    Returns:
        Dict of column to values (empty for an empty history).

    Raises:
        DamagedFileError: if it is not a history table (binary, cut rows,
            non-numbers, no `epoch` column).
    """
    remedy = ("resume the run (`dim-keras train --out RUN_DIR`, which "
              "rewrites it from the checkpoint) or remove it")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        if reader.fieldnames is None:
            raise ValueError("empty")
        if not rows:
            return {}
        if "epoch" not in rows[0]:
            raise ValueError("no epoch column")
        return {key: [float(row[key]) for row in rows] for key in rows[0]}
    except (OSError, UnicodeDecodeError, ValueError, TypeError,
            csv.Error) as e:
        raise DamagedFileError(path, f"not a history table: {_first_line(e)}",
                               remedy) from None


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

    The new checkpoint is written whole under a temporary name; then the
    current one becomes `checkpoint.previous.weights.h5` and the new one
    takes its name (two renames), so at most two exist and a reader finds
    the newest complete one, or the previous one in between.

    Args:
        model: the training model.
        run_dir: str.
        history: list of rows of every finished epoch, this one last.
    """
    state = {"epochs_done": len(history), "history": history}
    current = os.path.join(run_dir, CHECKPOINT_FILE)
    previous = os.path.join(run_dir, PREVIOUS_CHECKPOINT_FILE)

    def write(tmp):
        save_checkpoint(model, tmp, state)
        if os.path.exists(current):
            os.replace(current, previous)

    # The commit point: weights, optimizers and epoch count together.
    with naming(current):
        atomic.save(current, write)
    path = os.path.join(run_dir, STATE_FILE)
    with naming(path):
        atomic.write_text(path, json.dumps(state, indent=1))


# The way forward when a file cannot be written, by errno.
_WRITE_ADVICE = {
    errno.ENOSPC: "free some space on its disk",
    errno.EDQUOT: "free some space (the disk quota is reached)",
    errno.EACCES: "make it writable",
    errno.EPERM: "make it writable",
    errno.EROFS: "make it writable (its file system is read-only)",
}
# What an epoch replaces before its checkpoint commits it.
_REPLACED_BEFORE_COMMIT = (ENCODER_FILE, ENCODER_METADATA_FILE, HISTORY_FILE)
# `dim_keras.atomic`'s temporary names: `.partial-PID-name` and
# `name.partial-PID`.
_TEMPORARY = re.compile(r"^\.partial-\d+-|\.partial-\d+$")
# The second name `saving` keeps a file under: `.kept-PID-name`.
_KEPT = re.compile(r"^\.kept-\d+-")


def write_reason(error):
    """Why a write failed, in a few words (the `OSError`'s `strerror`).

    Args:
        error: an `OSError`.

    Returns:
        str, e.g. "No space left on device".
    """
    if error.errno:  # HDF5's own strerror runs over lines
        return os.strerror(error.errno)
    return _first_line(error.strerror or error)


def write_advice(error):
    """What to do about a failed write, in a few words.

    Args:
        error: an `OSError`.

    Returns:
        str, e.g. "free some space on its disk".
    """
    return _WRITE_ADVICE.get(error.errno, "fix that")


def written_name(path):
    """The file a write was for: `path` without a temporary name's parts.

    Args:
        path: str, e.g. `run/.partial-12-checkpoint.weights.h5`.

    Returns:
        str, e.g. `run/checkpoint.weights.h5`.
    """
    directory, name = os.path.split(os.fspath(path))
    shorter = _TEMPORARY.sub("", name, count=1)
    while shorter and shorter != name:
        name, shorter = shorter, _TEMPORARY.sub("", shorter, count=1)
    return os.path.join(directory, name)


class WriteError(RunError):
    """A run's file could not be written; its last saved epoch is whole.

    Args:
        run_dir: str, the run directory.
        error: the `OSError` of the write.
        epochs_saved: int, the epochs its checkpoint holds.
    """

    def __init__(self, run_dir, error, epochs_saved):
        self.error = error
        self.epochs_saved = epochs_saved
        path = error.filename2 or error.filename
        what = (written_name(path) if path
                else f"the run's files in {run_dir}")
        saved = (f"The run's last saved epoch ({epochs_saved}) is intact in "
                 f"{run_dir}" if epochs_saved else
                 f"No epoch of the run in {run_dir} was saved yet")
        super().__init__(
            f"Training stopped: could not write {what} "
            f"({write_reason(error)}). {saved}: {write_advice(error)}, then "
            f"rerun with --out {run_dir} to resume."
        )


@contextlib.contextmanager
def saving(run_dir, epochs_done):
    """Writes a run's files so that a failed write leaves the last epoch whole.

    An epoch replaces `encoder.keras`, `encoder.json` and `history.csv`
    before its checkpoint commits it. Inside the block they are also kept
    under a second name (a hard link: no copy, no space); if a write fails
    with an `OSError` (a full disk, a directory made read-only or
    unwritable) before the checkpoint was committed, they are put back (or
    removed, when the run had none), so the directory holds its last saved
    epoch whole, and the run stops with one line.

    Args:
        run_dir: str.
        epochs_done: int, the epochs the run's checkpoint holds.

    Raises:
        WriteError: when a write fails with an `OSError`.
    """
    kept = _keep(run_dir)
    try:
        yield
    except OSError as e:
        saved = _epochs_saved(run_dir, epochs_done)
        if saved == epochs_done:
            _put_back(kept)
        raise WriteError(run_dir, e, saved) from None
    finally:
        for link in kept.values():
            if link is not None and os.path.lexists(link):
                with contextlib.suppress(OSError):
                    os.remove(link)


def _keep(run_dir):
    """Hard links to the files an epoch replaces; None for absent ones."""
    _remove_leftovers(run_dir)
    kept = {}
    for name in _REPLACED_BEFORE_COMMIT:
        path = os.path.join(run_dir, name)
        if not os.path.exists(path):
            kept[path] = None
            continue
        link = os.path.join(run_dir, f".kept-{os.getpid()}-{name}")
        try:
            if os.path.lexists(link):
                os.remove(link)
            os.link(path, link)
        except OSError:
            continue  # no hard links here: that file cannot be put back
        kept[path] = link
    return kept


def _remove_leftovers(run_dir):
    """Removes what a killed writer of the run's files left behind.

    Only the run's own writer (the holder of its lock) calls this: every
    temporary name of a run file, and every kept link, is then a leftover
    (a checkpoint's can be hundreds of MB).
    """
    run_files = {CONFIG_FILE, ENCODER_FILE, ENCODER_METADATA_FILE,
                 CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE, STATE_FILE,
                 HISTORY_FILE}
    try:
        names = os.listdir(run_dir)
    except OSError:
        return
    for name in names:
        final = _KEPT.sub("", written_name(name))
        if final != name and final in run_files:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(run_dir, name))


def _put_back(kept):
    for path, link in kept.items():
        with contextlib.suppress(OSError):
            if link is None:
                if os.path.lexists(path):
                    os.remove(path)
            else:
                os.replace(link, path)


def _epochs_saved(run_dir, epochs_done):
    """The epochs the checkpoint holds after a failed write."""
    try:
        state = read_checkpoint_state(os.path.join(run_dir, CHECKPOINT_FILE))
    except DamagedFileError:
        state = None
    return max(epochs_done, state["epochs_done"]) if state else epochs_done


def read_checkpoint_state(path):
    """Returns the state dict stored in a checkpoint.

    Args:
        path: str, a `.weights.h5` checkpoint.

    Returns:
        Dict with `epochs_done` (int) and `history` (list of rows), or
        None if the file is absent or (written before dim-keras stored it)
        holds no state.

    Raises:
        DamagedFileError: if the file is not a readable HDF5 file or its
            state is malformed.
    """
    if not os.path.exists(path):
        return None
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get(STATE_ATTR)
    except (OSError, ValueError) as e:
        raise DamagedFileError(
            path, f"not a readable weights file: {_first_line(e)}",
            START_OVER) from None
    if raw is None:
        return None
    try:
        return _checked_state(json.loads(raw))
    except (ValueError, TypeError) as e:
        raise DamagedFileError(path, f"malformed run state: {e}",
                               START_OVER) from None


def _checked_state(state):
    if not isinstance(state, dict):
        raise ValueError(f"a {type(state).__name__}, not an object")
    epochs = state.get("epochs_done")
    history = state.get("history")
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs_done={epochs!r}")
    if not isinstance(history, list) or len(history) != epochs or not all(
            isinstance(row, dict) and isinstance(row.get("epoch"), int)
            for row in history):
        raise ValueError("history does not list every epoch done")
    if not all(isinstance(v, (int, float)) and math.isfinite(v)
               for row in history for v in row.values()):
        raise ValueError("history holds values that are not finite numbers")
    return {"epochs_done": epochs, "history": history}


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
    except Exception as e:  # h5py and Keras fail in many ways
        raise DamagedFileError(
            path, f"its weights do not load: {_first_line(e)}",
            START_OVER) from None


def read_config(path):
    """Reads and checks a run's `config.json`.

    Args:
        path: str, an existing `config.json`.

    Returns:
        The settings dict, as written.

    Raises:
        DamagedFileError: if it is not JSON, not an object, or not valid
            dim-keras settings (e.g. another program's `config.json`).
    """
    values = read_json(path)
    try:
        TrainConfig.from_dict(values).validate(check_dataset=False)
    except (ValueError, TypeError) as e:
        raise DamagedFileError(
            path, f"not a dim-keras run config: {_first_line(e)}",
            START_OVER) from None
    return values


def _comparable(config_dict, recorded=True):
    # Fill in defaults, so runs written before a setting existed compare;
    # a recipe setting a recorded run lacks is the reference's it used.
    if recorded and "online_probe" not in config_dict:
        # Runs recorded before the online probe existed trained without it
        # (their checkpoints hold no probe weights).
        config_dict = dict(config_dict, online_probe=False)
    config = TrainConfig.from_dict(config_dict)
    if recorded:
        config = config.with_recipe().with_scheme()
    settings = config.to_dict()
    for name in RESUMABLE_CHANGES:
        settings.pop(name, None)
    return settings


def check_same_settings(run_dir, config):
    """Refuses to continue a run of `run_dir` with other settings.

    Args:
        run_dir: str.
        config: the `TrainConfig` asked for now.

    Returns:
        True if `run_dir` holds a run config, False for a new run.

    Raises:
        RunError: if `run_dir` holds a run with other settings.
        DamagedFileError: if its `config.json` is damaged.
    """
    path = run_paths(run_dir)["config"]
    if not os.path.exists(path):
        return False
    previous = _comparable(read_config(path))
    current = _comparable(config.to_dict(), recorded=False)
    # An encoder or recipe setting left unset means the dataset's default,
    # which the run recorded when it started (the dataset itself is
    # compared).
    for name in ("encoder",) + RECIPE_FIELDS:
        if current.get(name) is None:
            current[name] = previous.get(name)
    if previous != current:
        changed = sorted(
            k for k in set(previous) | set(current)
            if previous.get(k) != current.get(k)
        )
        raise RunError(
            f"{run_dir} holds a run with other settings ({', '.join(changed)}); "
            "use another --out, or the same settings to resume it."
        )
    return True


def resume_points(run_dir, config, warn=None):
    """The checkpoints a run can resume from, newest first.

    A checkpoint whose file or state is damaged is skipped with a one-line
    warning; one without stored state (older runs) takes `state.json`.

    Args:
        run_dir: str.
        config: the `TrainConfig` asked for now.
        warn: callable for one-line warnings, or None.

    Returns:
        List of `(path, epochs_done, history)`, newest first; empty for a
        new run.

    Raises:
        RunError: if `run_dir` holds a run with other settings.
        DamagedFileError: if its config is damaged, or checkpoints exist
            and none of them is readable.
    """
    if not check_same_settings(run_dir, config):
        return []
    paths = run_paths(run_dir)
    candidates = [paths["checkpoint"],
                  os.path.join(run_dir, PREVIOUS_CHECKPOINT_FILE)]
    points, damaged = [], []
    for path in candidates:
        if not os.path.exists(path):
            continue
        try:
            state = read_checkpoint_state(path)
            if state is None and os.path.exists(paths["state"]):
                try:
                    state = _checked_state(read_json(paths["state"]))
                except ValueError as e:
                    raise DamagedFileError(paths["state"], str(e),
                                           START_OVER) from None
        except DamagedFileError as e:
            damaged.append(e)
            continue
        if state is not None:
            points.append((path, state["epochs_done"], state["history"]))
    if damaged and not points:
        raise no_checkpoint_readable(damaged)
    if warn is not None:
        for error in damaged:
            warn(fallback_warning(error))
    return points


def fallback_warning(error):
    """The one-line warning for a damaged checkpoint that is skipped."""
    return f"Warning: {error}; resuming from an older checkpoint."


def no_checkpoint_readable(errors):
    """The one error for a run none of whose checkpoints can be read.

    Args:
        errors: the `DamagedFileError` of each checkpoint, newest first.

    Returns:
        A `DamagedFileError` naming the newest and the others.
    """
    others = [os.path.basename(e.path) for e in errors[1:]]
    return DamagedFileError(
        errors[0].path,
        errors[0].problem + (f"; {', '.join(others)} is damaged too"
                             if others else "; no other checkpoint"),
        START_OVER)


def read_run_state(run_dir, config):
    """Reads what a previous run left in `run_dir`: its newest good epoch.

    Args:
        run_dir: str.
        config: the `TrainConfig` asked for now.

    Returns:
        `(epochs_done, history)`; `(0, [])` for a new run.

    Raises:
        RunError: if `run_dir` holds a run with other settings.
        DamagedFileError: if the run's files are damaged beyond resuming.
    """
    points = resume_points(run_dir, config)
    if not points:
        return 0, []
    _, epochs_done, history = points[0]
    return epochs_done, list(history)


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
    return read_config(paths["config"])


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
    file = encoder_path(path)
    try:
        return load_encoder_file(file)
    except ValueError as e:
        raise DamagedFileError(
            file, _first_line(e).split(". Received")[0],
            "train the run again, or restore the file from a copy") from None


def read_encoder_info(encoder_file):
    """Run fields (dataset, epochs done) from an encoder's sidecar.

    Args:
        encoder_file: str, a `.keras` file.

    Returns:
        Dict with the `dataset` and `epochs_done` the sidecar records
        (empty when it has none, or no sidecar exists).
    """
    path = metadata_path(encoder_file)
    if not os.path.exists(path):
        return {}
    remedy = ("remove it (it only describes the encoder; the next epoch "
              "of the run rewrites it)")
    metadata = read_json(path, remedy=remedy)
    if metadata.get("format") != "dim-keras encoder":
        raise DamagedFileError(
            path, "not a dim-keras encoder description (no \"format\": "
            "\"dim-keras encoder\")", remedy)
    keys = ("dataset", "epochs_done")
    return {k: metadata[k] for k in keys if k in metadata}
