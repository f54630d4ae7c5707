"""Distributed training: strategy choice, synced batch norm, and one step
on 2 replicas (2 logical CPU devices; 2 worker processes on 127.0.0.1)
compared with one device."""

import glob
import json
import os
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from dim_keras import distribute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEP_SCRIPT = os.path.join(ROOT, "tests", "distributed_step.py")


def test_auto_uses_several_gpus_only():
    assert distribute.resolve_strategy("auto", "tensorflow", gpus=0) == "none"
    assert distribute.resolve_strategy("auto", "tensorflow", gpus=1) == "none"
    assert (
        distribute.resolve_strategy("auto", "tensorflow", gpus=4) == "mirrored"
    )
    assert distribute.resolve_strategy("auto", "jax", gpus=2) == "data-parallel"
    assert distribute.resolve_strategy("auto", "torch", gpus=2) == "none"


@pytest.mark.parametrize(
    "name, backend",
    [("mirrored", "jax"), ("data-parallel", "tensorflow"),
     ("multi-worker", "torch")],
)
def test_strategy_of_another_backend_is_refused(name, backend):
    with pytest.raises(ValueError, match=f"Received: distribute='{name}'"):
        distribute.resolve_strategy(name, backend, gpus=0)


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="Received: distribute='ring'"):
        distribute.check_strategy("ring")


def test_multi_worker_without_tf_config_is_refused(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.make_distribution("multi-worker", "tensorflow")


def test_synchronized_batch_norm_is_not_saved(tmp_path):
    from dim_keras.networks.encoders import build_encoder

    encoder = build_encoder("basic32x32", image_size=32)
    distribute.set_batch_norm_synchronized(encoder, True)
    norms = [
        layer for layer in encoder.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert norms and all(layer.synchronized for layer in norms)
    path = str(tmp_path / "encoder.keras")
    with distribute.unsynchronized_batch_norm(encoder):
        encoder.save(path)
    assert all(layer.synchronized for layer in norms)
    loaded = keras.saving.load_model(path)
    assert not any(
        layer.synchronized for layer in loaded.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )


# --- One step on 2 replicas against one device ---------------------------


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _steps(init, out_dir, *runs, env=None):
    return subprocess.Popen(
        [sys.executable, STEP_SCRIPT, init, str(out_dir), *runs],
        cwd=ROOT, env=env or _env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _finish(process, timeout=300):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]


def assert_same_update(reference, other):
    names = reference["names"]
    for key in reference.files:
        if not key.startswith("v"):
            continue
        name = names[int(key[1:])]
        expected, actual = reference[key], other[key]
        if "momentum" in name or "velocity" in name:
            # Adam's moments are linear (quadratic) in the gradients: a
            # wrong loss scale or wrong negatives show here.
            np.testing.assert_allclose(
                actual, expected, rtol=1e-3, atol=1e-6, err_msg=name
            )
        else:
            # The first Adam step moves each weight by about lr * sign(g):
            # gradients near 0 may flip sign by rounding.
            np.testing.assert_allclose(
                actual, expected, rtol=1e-4, atol=5e-5, err_msg=name
            )
    for key in reference.files:
        if key.startswith("log_"):
            np.testing.assert_allclose(other[key], reference[key], rtol=1e-5)


def max_moment_difference(reference, other):
    names = reference["names"]
    return max(
        float(np.abs(reference[k] - other[k]).max())
        for k in reference.files
        if k.startswith("v") and "momentum" in names[int(k[1:])]
    )


@pytest.mark.slow  # subprocesses
def test_mirrored_two_replicas_global_negatives_match_one_device(tmp_path):
    # One device first (it writes the shared initial weights), then 2
    # replicas with global negatives; in a second process (one
    # MirroredStrategy per process), 2 replicas with negatives per replica.
    init = str(tmp_path / "init.weights.h5")
    first = _steps(init, tmp_path, "none", "mirrored:global")
    deadline = time.time() + 300
    while not os.path.exists(init) and first.poll() is None:
        assert time.time() < deadline
        time.sleep(0.2)
    second = _steps(init, tmp_path, "mirrored")
    _finish(first)
    _finish(second)
    reference = np.load(str(tmp_path / "none.npz"))
    assert_same_update(reference, np.load(str(tmp_path / "mirrored_global.npz")))
    # Negatives per replica (4 images each) are another objective: the
    # comparison above can tell them apart.
    local = np.load(str(tmp_path / "mirrored.npz"))
    assert max_moment_difference(reference, local) > 1e-3


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow  # subprocesses
def test_multi_worker_two_processes_match_one_device(tmp_path):
    init = str(tmp_path / "init.weights.h5")
    _finish(_steps(init, tmp_path, "none"))
    reference = np.load(str(tmp_path / "none.npz"))
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {
            "cluster": {"worker": workers},
            "task": {"type": "worker", "index": index},
        }
        out_dir = tmp_path / f"worker{index}"
        out_dir.mkdir()
        processes.append(
            _steps(init, out_dir, "multi-worker:global",
                   env=_env(TF_CONFIG=json.dumps(tf_config)))
        )
    for process in processes:
        _finish(process)
    for index in range(2):
        result = tmp_path / f"worker{index}" / "multi-worker_global.npz"
        assert_same_update(reference, np.load(str(result)))


@pytest.mark.slow  # subprocesses
def test_cli_trains_on_two_mirrored_replicas(tmp_path):
    """`dim-keras train --distribute mirrored` end to end on 2 CPU devices,
    multi-view with global negatives (each replica gets whole image pairs)."""
    out = str(tmp_path / "run")
    code = (
        "import sys, tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(\n"
        "    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
        "from dim_keras.apps.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "train", "--distribute", "mirrored",
         "--global-negatives", "--batch-size", "8", "--critic-units", "16",
         "--steps-per-epoch", "2", "--epochs", "1", "--no-evaluate",
         "--views", "2", "--out", out],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mirrored: 2 replicas" in result.stdout
    assert "Done: 1 epochs" in result.stdout
    # TensorBoard takes the strategy's shape-[1] logs.
    assert glob.glob(os.path.join(out, "tensorboard", "train", "events.*"))
    encoder = keras.saving.load_model(os.path.join(out, "encoder.keras"))
    assert not any(
        getattr(layer, "synchronized", False) for layer in encoder.layers
    )
    bad = subprocess.run(
        [sys.executable, "-c", code, "train", "--distribute", "mirrored",
         "--batch-size", "9", "--out", str(tmp_path / "odd")],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert bad.returncode != 0
    assert "multiple of the 2 replicas" in bad.stderr
    assert "Traceback" not in bad.stderr


JAX_SCRIPT = """
import importlib.util, os, sys
try:
    from dim_keras import distribute
except ImportError:  # dim_keras without its JAX trainer: load the module.
    spec = importlib.util.spec_from_file_location(
        "distribute", os.path.join("dim_keras", "distribute.py"))
    distribute = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(distribute)
import keras, numpy as np
d = distribute.make_distribution("data-parallel")
with d.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.ones((8, 4)), np.ones((8, 1)), batch_size=8, verbose=0)
mesh = model.layers[0].kernel.value.sharding.mesh
print(d.name, d.num_replicas, type(d.strategy).__name__, mesh.devices.size)
"""


def test_jax_data_parallel_selection():
    """`data-parallel` on JAX: `keras.distribution.DataParallel` over the
    2 host devices (the selection only: DIM's JAX trainer lives with the
    JAX backend)."""
    pytest.importorskip("jax")
    result = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT], cwd=ROOT,
        env=_env(KERAS_BACKEND="jax",
                 XLA_FLAGS="--xla_force_host_platform_device_count=2"),
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["data-parallel", "2", "DataParallel", "2"]


# --- JAX: several processes ------------------------------------------------


def _jax_cluster_env(port, index, count=2, **extra):
    return _env(
        KERAS_BACKEND="jax",
        KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
        KERAS_DISTRIBUTION_NUM_PROCESSES=str(count),
        KERAS_DISTRIBUTION_PROCESS_ID=str(index),
        **extra,
    )


@pytest.mark.parametrize(
    "environ, message",
    [
        ({}, "KERAS_DISTRIBUTION_JOB_ADDRESSES, "
             "KERAS_DISTRIBUTION_NUM_PROCESSES, "
             "KERAS_DISTRIBUTION_PROCESS_ID unset"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "host",
          "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
          "KERAS_DISTRIBUTION_PROCESS_ID": "0"},
         "coordinator's host:port. Received: "
         "KERAS_DISTRIBUTION_JOB_ADDRESSES='host'"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "a:1",
          "KERAS_DISTRIBUTION_NUM_PROCESSES": "two",
          "KERAS_DISTRIBUTION_PROCESS_ID": "0"},
         "must be an integer. Received: "
         "KERAS_DISTRIBUTION_NUM_PROCESSES='two'"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "a:1",
          "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
          "KERAS_DISTRIBUTION_PROCESS_ID": "2"},
         "Received: KERAS_DISTRIBUTION_NUM_PROCESSES=2, "
         "KERAS_DISTRIBUTION_PROCESS_ID=2"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "a:1,b:1,c:1",
          "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
          "KERAS_DISTRIBUTION_PROCESS_ID": "1"},
         "lists 3 addresses for 2 processes"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "a:1",
          "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
          "KERAS_DISTRIBUTION_PROCESS_ID": "1",
          "DIM_KERAS_JOIN_TIMEOUT": "0"},
         "positive number of seconds. Received: DIM_KERAS_JOIN_TIMEOUT='0'"),
    ],
)
def test_jax_cluster_settings_are_checked(environ, message):
    pytest.importorskip("jax")
    from dim_keras.backend.jax import cluster_from_environment

    with pytest.raises(ValueError) as error:
        cluster_from_environment(environ)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_jax_cluster_settings_are_read():
    pytest.importorskip("jax")
    from dim_keras.backend.jax import cluster_from_environment

    environ = {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234,10.0.0.2:2345",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
        "KERAS_DISTRIBUTION_PROCESS_ID": "1",
    }
    assert cluster_from_environment(environ) == ("10.0.0.1:1234", 2, 1, 120)
    environ["DIM_KERAS_JOIN_TIMEOUT"] = "7"
    assert cluster_from_environment(environ)[3] == 7


def _cli(args, env):
    return subprocess.Popen(
        [sys.executable, "-m", "dim_keras.apps.cli", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_jax_unreachable_coordinator_fails_in_bounded_time(tmp_path):
    """Process 1 alone, its coordinator never up: one line, not a hang."""
    pytest.importorskip("jax")
    port = _free_ports(1)[0]
    start = time.time()
    process = _cli(
        ["train", "--backend", "jax", "--distribute", "multi-worker",
         "--out", str(tmp_path / "run")],
        _jax_cluster_env(port, 1, DIM_KERAS_JOIN_TIMEOUT="5"),
    )
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 1, stderr[-3000:]
    assert time.time() - start < 200
    lines = [line for line in stderr.splitlines()
             if line.startswith("Error:")]
    assert len(lines) == 1, stderr[-3000:]
    assert f"could not join the coordinator at 127.0.0.1:{port} within 5 s" \
        in lines[0]
    assert "Traceback" not in stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_jax_two_processes_match_one_device(tmp_path):
    """One step of 2 JAX processes (gloo on CPU), each feeding half of the
    global batch, against one device with the whole batch."""
    pytest.importorskip("jax")
    init = str(tmp_path / "init.weights.h5")
    _finish(_steps(init, tmp_path, "none", env=_env(KERAS_BACKEND="jax")))
    reference = np.load(str(tmp_path / "none.npz"))
    port = _free_ports(1)[0]
    processes = []
    for index in range(2):
        out_dir = tmp_path / f"process{index}"
        out_dir.mkdir()
        processes.append(_steps(init, out_dir, "multi-worker",
                                env=_jax_cluster_env(port, index)))
    for index, process in enumerate(processes):
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output[-3000:]
        assert (f"2 replicas on 2 worker(s), this is worker {index}"
                in output)
    for index in range(2):
        result = tmp_path / f"process{index}" / "multi-worker.npz"
        assert_same_update(reference, np.load(str(result)))


def _start_jax_run(out, port, epochs):
    args = ["train", "--backend", "jax", "--distribute", "multi-worker",
            "--batch-size", "8", "--critic-units", "16",
            "--steps-per-epoch", "2", "--epochs", str(epochs),
            "--no-evaluate", "--out", out]
    return [_cli(args, _jax_cluster_env(port, index)) for index in range(2)]


def _epochs_done(out):
    try:
        with open(os.path.join(out, "state.json")) as f:
            return json.load(f)["epochs_done"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_jax_two_process_cli_run_is_written_by_process_0_and_resumes(
        tmp_path):
    pytest.importorskip("jax")
    out = str(tmp_path / "run")
    epochs = 12
    processes = _start_jax_run(out, _free_ports(1)[0], epochs)
    deadline = time.time() + 300
    while _epochs_done(out) < 2:
        assert all(p.poll() is None for p in processes), [
            p.communicate()[1][-2000:] for p in processes]
        assert time.time() < deadline
        time.sleep(0.2)
    for process in processes:
        process.kill()  # SIGKILL: no clean-up of any kind
        process.communicate()
    killed_at = _epochs_done(out)
    assert 2 <= killed_at < epochs

    processes = _start_jax_run(out, _free_ports(1)[0], epochs)
    outputs = [p.communicate(timeout=400) for p in processes]
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    chief, worker = outputs[0][0], outputs[1][0]
    for stdout in (chief, worker):
        assert f"Resuming the run in {out} from epoch" in stdout
        assert "2 replicas on 2 worker(s)" in stdout
    assert f"Done: {epochs} epochs, loss" in chief
    assert "Process 0 writes the run directory" in worker
    # One run directory, written by process 0 alone: no worker copies.
    assert sorted(os.listdir(out)) == sorted([
        "checkpoint.previous.weights.h5", "checkpoint.weights.h5",
        "config.json", "encoder.json", "encoder.keras", "history.csv",
        "state.json", "tensorboard",
    ])
    assert _epochs_done(out) == epochs
    with open(os.path.join(out, "history.csv")) as f:
        rows = f.read().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == [
        str(e) for e in range(1, epochs + 1)]
    encoder = keras.saving.load_model(os.path.join(out, "encoder.keras"))
    assert encoder.outputs  # loads in plain Keras
