"""Reading a checkpoint back: its stored state and its weights.

`read_checkpoint_state` reads and checks the epochs done and history a
checkpoint stores; `restore_checkpoint` loads its weights and both
optimizers' state into a model.
"""

import json
import math
import os

import h5py

from dim_keras.runs.files import DamagedFileError
from dim_keras.runs.files import START_OVER
from dim_keras.runs.files import STATE_ATTR
from dim_keras.runs.files import _first_line


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
