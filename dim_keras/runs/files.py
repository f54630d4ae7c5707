"""A run directory's file names, its errors, and its JSON and CSV files.

The names of the files in a run directory (`run_paths`), the errors every
reader of them raises (`RunError`, `DamagedFileError`), and reading and
writing its plain files: any JSON file (`read_json`), `config.json`
(`write_config`, `read_config`) and `history.csv` (`history_csv`,
`write_history`, `read_history`).
"""

import contextlib
import csv
import io
import json
import os

from dim_keras import atomic
from dim_keras.config import TrainConfig
from dim_keras.encoder_file import metadata_path

CONFIG_FILE = "config.json"
ENCODER_FILE = "encoder.keras"
ENCODER_METADATA_FILE = os.path.basename(metadata_path(ENCODER_FILE))
# The best encoder by the run's monitor (`checkpointing.RunCheckpoint`).
BEST_ENCODER_FILE = "encoder.best.keras"
BEST_ENCODER_METADATA_FILE = os.path.basename(
    metadata_path(BEST_ENCODER_FILE))
CHECKPOINT_FILE = "checkpoint.weights.h5"
PREVIOUS_CHECKPOINT_FILE = "checkpoint.previous.weights.h5"
STATE_FILE = "state.json"
HISTORY_FILE = "history.csv"
# Attribute of the checkpoint file holding its epochs done and history.
STATE_ATTR = "dim_keras_state"


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
