"""Committing a finished epoch: its checkpoint, written atomically.

The checkpoint is the commit point of an epoch (see `dim_keras.runs`): one
file holding weights, optimizer state and epoch count together
(`save_checkpoint`), put in place by `commit_epoch`, which keeps the
epoch before as `checkpoint.previous.weights.h5`.
"""

import json
import os

import h5py

from dim_keras import atomic
from dim_keras.runs.files import CHECKPOINT_FILE
from dim_keras.runs.files import PREVIOUS_CHECKPOINT_FILE
from dim_keras.runs.files import STATE_ATTR
from dim_keras.runs.files import STATE_FILE
from dim_keras.runs.files import naming


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
