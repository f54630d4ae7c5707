"""The guard around writing a run's files: a failed write stops the run whole.

`saving` keeps the files an epoch replaces before its checkpoint commits
it, and puts them back when a write fails (a full disk, a directory made
read-only or unwritable), so the run directory holds its last saved epoch
whole; the run then stops with `WriteError`, one line naming the file,
the reason (`write_reason`) and what to do (`write_advice`).
"""

import contextlib
import errno
import os
import re

from dim_keras.runs.checkpoints import read_checkpoint_state
from dim_keras.runs.files import BEST_ENCODER_FILE
from dim_keras.runs.files import BEST_ENCODER_METADATA_FILE
from dim_keras.runs.files import CHECKPOINT_FILE
from dim_keras.runs.files import CONFIG_FILE
from dim_keras.runs.files import DamagedFileError
from dim_keras.runs.files import ENCODER_FILE
from dim_keras.runs.files import ENCODER_METADATA_FILE
from dim_keras.runs.files import HISTORY_FILE
from dim_keras.runs.files import PREVIOUS_CHECKPOINT_FILE
from dim_keras.runs.files import RunError
from dim_keras.runs.files import STATE_FILE
from dim_keras.runs.files import _first_line

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
                 HISTORY_FILE, BEST_ENCODER_FILE, BEST_ENCODER_METADATA_FILE}
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
