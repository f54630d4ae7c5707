"""Saving a run every epoch, and restoring it to resume.

`RunCheckpoint` commits each finished epoch to the run directory (see
`dim_keras.runs` for the files and their order), keeps the best encoder by
the run's monitor beside the last one (`encoder.best.keras`), and stops on
a non-finite loss; `restore` loads the newest readable checkpoint; `recorded_recipe`
reads the recipe a run started with, which its resumption keeps.
"""

import functools
import math
import os

import keras
import numpy as np

from dim_keras import runs
from dim_keras.distribute import local_variables
from dim_keras.distribute import unsynchronized_batch_norm
from dim_keras.encoder_file import channel_parts
from dim_keras.encoder_file import metadata_path
from dim_keras.encoder_file import save_encoder


def _scalar(value):
    """A log value (scalar, or shape-[1] under some strategies) as a float."""
    return float(np.asarray(value, dtype="float64").reshape(-1)[0])


# The encoder kept as the run's best, beside the last one (`encoder.keras`).
BEST_ENCODER_FILE = runs.BEST_ENCODER_FILE
# The monitors that choose it, by preference: the online linear probe's
# held-out accuracy of Y (every epoch), else the kNN monitor's (every
# `knn_every` epochs). Without either (unlabelled data) no best is kept.
BEST_MONITORS = ("online_probe_y_acc", "knn_y_acc")


def _save_unsynchronized(encoder, path, info=None, with_parts=True):
    """`encoder_file.save_encoder` with batch norm unsynchronized.

    Synchronized batch norm is a training setting, not part of the file.
    The two encoders of a channel split are also saved on their own, as
    `encoder_luma.keras` and `encoder_chroma.keras` beside `path`, unless
    `with_parts` is False.
    """
    with unsynchronized_batch_norm(encoder):
        with runs.naming(path):
            save_encoder(encoder, path, info=info)
        if not with_parts:
            return
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

    After each committed epoch whose monitor (the first of `BEST_MONITORS`
    in its logs) beats every earlier epoch's, the encoder is also saved as
    `BEST_ENCODER_FILE` (atomic, with `encoder.best.json` naming the epoch,
    the monitor and its value), so a loss spike late in a run never costs
    its best encoder. A resumed run reads the best value back.
    """

    def __init__(self, run_dir, encoder, history, info=None,
                 save_encoder=None):
        super().__init__()
        self.run_dir = run_dir
        self.encoder = encoder
        self.history = history
        self.info = dict(info or {})
        self.save_encoder = save_encoder or _save_unsynchronized
        # The best encoder alone: a channel split's parts are the last's.
        self.save_best = save_encoder or functools.partial(
            _save_unsynchronized, with_parts=False)
        self.diverged_at = None
        self.best = _recorded_best(run_dir)

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
        self._keep_if_best(epoch + 1, logs)

    def _keep_if_best(self, epochs_done, logs):
        """Saves the encoder as the best if its monitor beats the best's."""
        monitor = next((m for m in BEST_MONITORS if m in logs), None)
        if monitor is None:
            return
        if self.best is not None and (
                self.best["monitor"] != monitor
                or logs[monitor] <= self.best["value"]):
            return
        best = {"monitor": monitor, "value": logs[monitor],
                "epoch": epochs_done}
        with runs.saving(self.run_dir, epochs_done), local_variables():
            self.save_best(
                self.encoder,
                os.path.join(self.run_dir, BEST_ENCODER_FILE),
                dict(self.info, epochs_done=epochs_done, best=best),
            )
        self.best = best


def _recorded_best(run_dir):
    """The `best` record of a run's `encoder.best.json`, or None."""
    if run_dir is None:
        return None
    path = os.path.join(run_dir, metadata_path(BEST_ENCODER_FILE))
    if not os.path.exists(path):
        return None
    try:
        best = runs.read_json(path).get("best")
    except runs.DamagedFileError:
        return None  # a new best replaces it
    if not (isinstance(best, dict) and {"monitor", "value", "epoch"} <= set(best)):
        return None
    return best


def training_state(model):
    """Every variable a checkpoint holds: weights and both optimizers'."""
    variables = list(model.weights) + list(model.optimizer.variables)
    for optimizer in (model.discriminator_optimizer, model.probe_optimizer):
        if optimizer is not None:
            variables += list(optimizer.variables)
    return variables


def recorded_recipe(run_dir):
    """The recipe settings of the run already in `run_dir`, or None.

    A resumed run keeps the recipe it started with (its encoder too), even
    if the dataset's default recipe has changed since (settings it did not record are the
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
    recipe = {name: values.get(name, REFERENCE[name])
              for name in RECIPE_FIELDS}
    if values.get("encoder"):
        recipe["encoder"] = values["encoder"]
    return recipe


def restore(model, resume_points, log):
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
