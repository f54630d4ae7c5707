"""Where a run resumes from: its newest readable checkpoint.

`resume_points` lists the checkpoints a run can resume from, newest first,
skipping damaged ones with a warning (`fallback_warning`), or failing with
one error when none is readable (`no_checkpoint_readable`);
`read_run_state` gives the epochs done and history of the newest.
"""

import os

from dim_keras.runs.checkpoints import _checked_state
from dim_keras.runs.checkpoints import read_checkpoint_state
from dim_keras.runs.files import DamagedFileError
from dim_keras.runs.files import PREVIOUS_CHECKPOINT_FILE
from dim_keras.runs.files import START_OVER
from dim_keras.runs.files import read_json
from dim_keras.runs.files import run_paths
from dim_keras.runs.settings_check import check_same_settings


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
