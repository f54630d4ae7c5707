"""A write that fails during an epoch (a full disk, an unwritable --out)
stops the run with one line and leaves the last saved epoch's files whole;
the run resumes once the fault is gone."""

import errno
import json
import os

import pytest
from click.testing import CliRunner

from dim_keras import atomic
from dim_keras import runs
from dim_keras import training
from dim_keras.apps.cli import main
from dim_keras.run_lock import LOCK_FILE
from tests import helpers
from tests.helpers import quiet


def no_space():
    """The error of a `write` or `fsync` on a full disk (it names no file)."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def tiny_config(**overrides):
    """The tiny settings, for two epochs unless told."""
    return helpers.tiny_config(**dict(dict(epochs=2), **overrides))


class _FailingFsync:
    """`os` for `dim_keras.atomic`, whose `fsync` raises `error()`."""

    def __init__(self, error):
        self.error = error

    def __getattr__(self, name):
        return getattr(os, name)

    def fsync(self, fd):
        raise self.error()


def fail_write(monkeypatch, name, call, error=no_space):
    """Makes the `call`-th atomic write of the run file `name` fail.

    The write fails part-way, as on a full disk: `.keras` and `.h5` files
    after some bytes are in the temporary file, text files at `fsync`.

    Args:
        monkeypatch: pytest's.
        name: str, a run file's name.
        call: int, which write of it fails (1 for the first).
        error: callable returning the `OSError` to raise.
    """
    calls = []
    real_save, real_write_text = atomic.save, atomic.write_text

    def hit(path):
        if os.path.basename(path) != name:
            return False
        calls.append(path)
        return len(calls) == call

    def half_written(tmp):
        with open(tmp, "wb") as f:
            f.write(b"\0" * 1000)
        raise error()

    def save(path, save_fn):
        return real_save(path, half_written if hit(path) else save_fn)

    def write_text(path, text):
        if not hit(path):
            return real_write_text(path, text)
        monkeypatch.setattr(atomic, "os", _FailingFsync(error))
        try:
            return real_write_text(path, text)
        finally:
            monkeypatch.setattr(atomic, "os", os)

    monkeypatch.setattr(atomic, "save", save)
    monkeypatch.setattr(atomic, "write_text", write_text)
    return calls


def epochs_in(run_dir):
    """The epochs each file of the run holds, reading each back whole."""
    history = runs.read_history(os.path.join(run_dir, runs.HISTORY_FILE))
    with open(os.path.join(run_dir, runs.STATE_FILE)) as f:
        state = json.load(f)
    runs.read_config(os.path.join(run_dir, runs.CONFIG_FILE))
    runs.load_encoder(run_dir)
    return {
        "checkpoint": runs.read_checkpoint_state(
            os.path.join(run_dir, runs.CHECKPOINT_FILE))["epochs_done"],
        "history": [int(e) for e in history["epoch"]],
        "state": state["epochs_done"],
        "encoder": runs.read_encoder_info(
            os.path.join(run_dir, runs.ENCODER_FILE))["epochs_done"],
    }


def leftovers(run_dir):
    return [n for n in os.listdir(run_dir)
            if "partial" in n or n.startswith(".kept") or n == LOCK_FILE]


@pytest.mark.parametrize("name, named, saved", [
    (runs.ENCODER_FILE, runs.ENCODER_FILE, 1),
    # The encoder's description is saved with it, under its name.
    (runs.ENCODER_METADATA_FILE, runs.ENCODER_FILE, 1),
    (runs.HISTORY_FILE, runs.HISTORY_FILE, 1),
    (runs.CHECKPOINT_FILE, runs.CHECKPOINT_FILE, 1),
    # After the checkpoint: epoch 2 is saved.
    (runs.STATE_FILE, runs.STATE_FILE, 2),
], ids=lambda v: v if isinstance(v, str) else None)
def test_a_full_disk_in_epoch_2_keeps_the_last_saved_epoch(
        tmp_path, monkeypatch, name, named, saved):
    run_dir = str(tmp_path / "run")
    fail_write(monkeypatch, name, call=2)
    with pytest.raises(runs.WriteError) as info:
        training.train(tiny_config(), run_dir, verbose=0, log=quiet)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(
        f"Training stopped: could not write {os.path.join(run_dir, named)} "
        "(No space left on device). The run's last saved epoch "
        f"({saved}) is intact in {run_dir}: free some space on its disk, "
        f"then rerun with --out {run_dir} to resume.")
    assert isinstance(info.value, runs.RunError)
    assert epochs_in(run_dir) == {
        "checkpoint": saved, "history": list(range(1, saved + 1)),
        # state.json, the checkpoint's readable copy, may lag it.
        "state": 1, "encoder": saved,
    }
    assert leftovers(run_dir) == []


def test_the_run_resumes_once_space_is_freed(tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")
    with monkeypatch.context() as patch:
        fail_write(patch, runs.CHECKPOINT_FILE, call=2)
        with pytest.raises(runs.WriteError):
            training.train(tiny_config(), run_dir, verbose=0,
                           log=quiet)
    messages = []
    result = training.train(tiny_config(), run_dir, verbose=0,
                            log=messages.append)
    assert result["resumed"] and result["trained"]
    assert result["epochs_done"] == 2
    assert any("from epoch 2" in m for m in messages)
    assert epochs_in(run_dir) == {
        "checkpoint": 2, "history": [1, 2], "state": 2, "encoder": 2}
    previous = runs.read_checkpoint_state(
        os.path.join(run_dir, runs.PREVIOUS_CHECKPOINT_FILE))
    assert previous["epochs_done"] == 1
    assert leftovers(run_dir) == []


def test_an_unwritable_out_in_the_first_epoch_leaves_no_epoch(
        tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")

    def denied():  # names the temporary file, as open() does
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES),
                               os.path.join(run_dir, temporary))

    temporary = f"{runs.HISTORY_FILE}.partial-{os.getpid()}"
    # The history is written after the encoder: the encoder is taken back.
    fail_write(monkeypatch, runs.HISTORY_FILE, call=1, error=denied)
    with pytest.raises(runs.WriteError) as info:
        training.train(tiny_config(epochs=1), run_dir, verbose=0,
                       log=quiet)
    message = str(info.value)
    history = os.path.join(run_dir, runs.HISTORY_FILE)
    assert f"could not write {history} (Permission denied)" in message
    assert (f"No epoch of the run in {run_dir} was saved yet: make it "
            "writable, then rerun") in message
    # TensorBoard's event files are appended to, not an epoch's files.
    assert sorted(os.listdir(run_dir)) == [runs.CONFIG_FILE, "tensorboard"]


def test_the_command_stops_with_one_line(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    fail_write(monkeypatch, runs.CHECKPOINT_FILE, call=2)
    result = CliRunner().invoke(main, [
        "train", "--out", out, "--epochs", "2", "--no-evaluate",
    ] + helpers.TINY_CLI)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines()
              if line.startswith("Error: ")]
    assert errors == [result.output.strip().splitlines()[-1]]
    assert errors[0].startswith(
        f"Error: Training stopped: could not write "
        f"{os.path.join(out, runs.CHECKPOINT_FILE)} (No space left on "
        f"device). The run's last saved epoch (1) is intact in {out}")
    assert epochs_in(out)["checkpoint"] == 1
