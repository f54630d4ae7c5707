"""One writer per run directory: a second start is refused at once with one
line naming the holder; a lock left by a killed process never blocks."""

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from dim_keras import run_lock
from dim_keras import runs
from dim_keras.apps.cli import exit_code
from dim_keras.run_lock import LOCK_FILE
from dim_keras.run_lock import RunLock
from dim_keras.run_lock import RunLockedError
from dim_keras.runs import RunError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_lock(directory, **fields):
    """A lock file as another process of this host would leave it."""
    holder = dict(run_lock.this_process("dim-keras train"), **fields)
    with open(os.path.join(directory, LOCK_FILE), "w") as f:
        json.dump(holder, f)
    return holder


def dead_pid():
    """The id of a process that has ended (and was waited for)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_acquire_writes_the_holder_and_release_removes_it(tmp_path):
    with RunLock(str(tmp_path)) as lock:
        with open(tmp_path / LOCK_FILE) as f:
            holder = json.load(f)
        assert holder["pid"] == os.getpid()
        assert holder["host"] == socket.gethostname()
        assert holder["started"] and "command" in holder
        assert lock.stale is None
    assert not (tmp_path / LOCK_FILE).exists()
    assert tmp_path.exists()  # a directory it did not create stays


def test_a_directory_it_created_and_left_empty_is_removed(tmp_path):
    out = tmp_path / "run"
    with RunLock(str(out)):
        assert out.is_dir()
    assert not out.exists()
    with RunLock(str(out)):
        (out / "config.json").write_text("{}")
    assert sorted(os.listdir(out)) == ["config.json"]


def test_a_second_acquire_is_refused_naming_the_holder(tmp_path):
    out = str(tmp_path)
    with RunLock(out):
        with pytest.raises(RunLockedError) as info:
            RunLock(out).acquire()
        # Still held by the first.
        with open(tmp_path / LOCK_FILE) as f:
            assert json.load(f)["pid"] == os.getpid()
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert f"Run directory {out} is in use by process {os.getpid()}" in message
    assert f"on host {socket.gethostname()}" in message
    assert "another --out" in message and message.endswith(f"out={out}")
    assert "remove" not in message  # a live process of this host
    assert isinstance(info.value, RunError)
    assert exit_code(info.value) == 1


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path):
    pid = dead_pid()
    left = write_lock(str(tmp_path), pid=pid)
    with RunLock(str(tmp_path)) as lock:
        assert lock.stale == left
        with open(tmp_path / LOCK_FILE) as f:
            assert json.load(f)["pid"] == os.getpid()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_pid_taken_by_a_later_process_is_not_the_holder(tmp_path):
    # This process runs, but it is not the one that wrote the lock.
    left = write_lock(str(tmp_path), process_start="1")
    with RunLock(str(tmp_path)) as lock:
        assert lock.stale == left


@pytest.mark.parametrize("content", [b"", b'{"pid": 12', b"\x00\xff" * 40,
                                     b"[1, 2]", b'{"host": "vm"}'],
                         ids=["empty", "cut", "binary", "list", "no-pid"])
def test_an_unreadable_lock_is_taken_over(tmp_path, content):
    (tmp_path / LOCK_FILE).write_bytes(content)
    with RunLock(str(tmp_path)) as lock:
        assert lock.stale == {}
        with open(tmp_path / LOCK_FILE) as f:
            assert json.load(f)["pid"] == os.getpid()


def test_a_lock_of_another_host_is_respected(tmp_path):
    write_lock(str(tmp_path), host="elsewhere", pid=dead_pid())
    with pytest.raises(RunLockedError) as info:
        RunLock(str(tmp_path), what="Search directory").acquire()
    message = str(info.value)
    assert message.startswith(f"Search directory {tmp_path} is in use by")
    assert "on host elsewhere" in message
    assert f"remove {tmp_path / LOCK_FILE}" in message
    assert len(message.splitlines()) == 1


def test_release_keeps_a_lock_that_is_no_longer_ours(tmp_path):
    lock = RunLock(str(tmp_path)).acquire()
    other = write_lock(str(tmp_path), pid=os.getpid() + 1)
    lock.release()
    with open(tmp_path / LOCK_FILE) as f:
        assert json.load(f) == other


def test_an_unwritable_directory_is_one_line(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    out = str(tmp_path / "file" / "run")
    with pytest.raises(RunError) as info:
        RunLock(out).acquire()
    message = str(info.value)
    assert message.startswith(f"Cannot write in run directory {out}: ")
    assert "Not a directory" in message and message.endswith(f"out={out}")


def test_a_full_disk_at_start_is_one_line(tmp_path, monkeypatch):
    def full(path, holder):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(run_lock, "_create", full)
    with pytest.raises(RunError) as info:
        RunLock(str(tmp_path)).acquire()
    assert "No space left on device; free some space" in str(info.value)
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_search_directory_in_use_is_refused_before_any_work(tmp_path):
    from dim_keras.config import TrainConfig
    from dim_keras.tuning.search import SearchSettings
    from dim_keras.tuning.search import run_search

    out = str(tmp_path / "search")
    settings = SearchSettings(
        base=TrainConfig(dataset="digits", batch_size=32, critic_units=16,
                         jit_compile=False),
        max_trials=1, epochs_per_trial=1)
    with RunLock(out, what="Search directory"):
        with pytest.raises(RunLockedError) as info:
            run_search(settings, out, log=lambda _: None)
        assert os.listdir(out) == [LOCK_FILE]
    assert f"Search directory {out} is in use by process {os.getpid()}" in (
        str(info.value))


def test_a_run_directory_in_use_is_refused_before_any_work(tmp_path):
    from dim_keras import training
    from dim_keras.config import TrainConfig

    out = str(tmp_path / "run")
    config = TrainConfig(dataset="digits", batch_size=8, critic_units=16,
                         steps_per_epoch=1, epochs=1, jit_compile=False)
    with RunLock(out):
        with pytest.raises(RunLockedError, match=f"process {os.getpid()}"):
            training.train(config, out, verbose=0, log=lambda m: None)
        assert os.listdir(out) == [LOCK_FILE]


def _cli(out, epochs, steps):
    return [
        sys.executable, "-m", "dim_keras.apps.cli", "train",
        "--dataset", "digits", "--batch-size", "16", "--critic-units", "16",
        "--steps-per-epoch", str(steps), "--epochs", str(epochs),
        "--no-jit", "--no-evaluate", "--out", out,
    ]


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)


# TensorFlow's C++ start-up lines (glog format, and absl's note that they
# come before its logging is set up): TF_CPP_MIN_LOG_LEVEL does not hide
# them on every CPU (oneDNN's notice on AVX-512 machines, for one).
NATIVE_LOG_LINE = re.compile(
    r"^([IWEF]\d{4} |WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions:)"
)


def _our_lines(stderr):
    """stderr's lines, less TensorFlow's C++ start-up lines."""
    return [line for line in stderr.strip().splitlines()
            if not NATIVE_LOG_LINE.match(line)]


def _epochs_done(out):
    """The epochs of the newest readable checkpoint (one may be mid-rename)."""
    done = 0
    for name in (runs.CHECKPOINT_FILE, runs.PREVIOUS_CHECKPOINT_FILE):
        try:
            state = runs.read_checkpoint_state(os.path.join(out, name))
        except runs.DamagedFileError:
            continue
        if state:
            done = max(done, state["epochs_done"])
    return done


@pytest.mark.slow
def test_two_starts_on_one_out_then_kill_and_resume(tmp_path):
    out = str(tmp_path / "run")
    # Many short epochs: it is still training when the second one starts.
    first = subprocess.Popen(
        _cli(out, 1000, 2), cwd=ROOT, env=_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 300
        while _epochs_done(out) < 1 and first.poll() is None:
            assert time.time() < deadline, "no epoch finished in time"
            time.sleep(0.1)
        assert first.poll() is None, "the first run ended too early"
        with open(os.path.join(out, LOCK_FILE)) as f:
            assert json.load(f)["pid"] == first.pid

        second = subprocess.run(
            _cli(out, 1000, 2), cwd=ROOT, env=_env(),
            capture_output=True, text=True, timeout=300,
        )
        assert second.returncode == 1, second.stderr[-2000:]
        lines = _our_lines(second.stderr)
        assert len(lines) == 1, second.stderr
        assert "Traceback" not in second.stderr
        assert lines[0].startswith(f"Error: Run directory {out} is in use by "
                                   f"process {first.pid} on host ")
        assert "Training DIM" not in second.stdout  # refused before any work
        assert first.poll() is None, "the first run stopped"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    done_at_kill = _epochs_done(out)
    assert done_at_kill >= 1
    assert os.path.exists(os.path.join(out, LOCK_FILE))  # left by the kill

    resumed = subprocess.run(
        _cli(out, done_at_kill + 1, 2), cwd=ROOT, env=_env(),
        capture_output=True, text=True, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"from epoch {done_at_kill + 1}" in resumed.stdout
    assert f"Done: {done_at_kill + 1} epochs" in resumed.stdout
    names = os.listdir(out)
    assert LOCK_FILE not in names
    assert not [n for n in names if "partial" in n or n.startswith(".kept")]
