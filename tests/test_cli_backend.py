"""Tests of `dim-keras train --backend`."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import pytest
from click.testing import CliRunner

from dim_keras.apps.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every test here depends on the Keras backend: CI runs them on each.
pytestmark = pytest.mark.backend


def test_unknown_backend_is_refused():
    result = CliRunner().invoke(main, ["train", "--backend", "numpy"])
    assert result.exit_code == 2
    assert "Received: backend='numpy'" in result.output


def test_backend_cannot_change_once_keras_is_loaded():
    other = "torch" if keras.backend.backend() == "jax" else "jax"
    result = CliRunner().invoke(main, ["train", "--backend", other])
    assert result.exit_code == 2
    assert f"Received: --backend={other}" in result.output
    assert "Traceback" not in result.output


def test_a_missing_backend_library_gets_a_one_line_message():
    # A fresh process where TensorFlow cannot be imported.
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import backend_worker; backend_worker.hide_tensorflow()\n"
        "from dim_keras.apps.cli import main\n"
        "main(['train', '--backend', 'tensorflow'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, ROOT, os.path.join(ROOT, "tests")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("Error: cannot use the tensorflow backend")
    assert "pip install 'dim-keras[tensorflow]'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_train_on_another_backend(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("KERAS_BACKEND", None)
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "dim_keras.apps.cli", "train", "--backend", backend,
         "--epochs", "1", "--batch-size", "256", "--critic-units", "16",
         "--no-evaluate", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{backend} backend" in result.stdout
    assert (out / "encoder.keras").exists()
    assert (out / "history.csv").read_text().count("\n") == 2
    # Its evaluation, on the same backend, with every part kept short.
    result = subprocess.run(
        [sys.executable, "-m", "dim_keras.apps.cli", "evaluate", str(out),
         "--mlp-epochs", "2", "--mine-steps", "20", "--ndm-steps", "20"],
        cwd=ROOT, env=dict(env, KERAS_BACKEND=backend), capture_output=True,
        text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "evaluation.json") as f:
        evaluation = json.load(f)
    assert {p["representation"] for p in evaluation["probes"]} == {
        "dim", "random", "pixels"}
    assert {d["measure"] for d in evaluation["dependence"]} == {"mine", "ndm"}
