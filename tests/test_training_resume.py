"""Fault tolerance of training runs: resuming, checkpoints, divergence."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from dim_keras import runs
from dim_keras import training
from tests.helpers import ROOT
from tests.helpers import quiet
from tests.helpers import tiny_config
from tests.helpers import trained_run_config


def read_history(run_dir):
    with open(os.path.join(run_dir, runs.HISTORY_FILE)) as f:
        return list(csv.DictReader(f))


def all_state(model):
    """Every variable a resumed run needs: networks, the optimizers (the
    online probe's too), RNG."""
    variables = (
        list(model.weights)
        + list(model.optimizer.variables)
        + list(model.discriminator_optimizer.variables)
        + list(model.probe_optimizer.variables)
    )
    # Paths hold uniquified object names (adam_2, deep_info_max_1): key by
    # position, which is the same for models built alike.
    return {i: np.array(v.numpy()) for i, v in enumerate(variables)}


def test_checkpoint_restores_weights_and_both_optimizers(tmp_path):
    run_dir = str(tmp_path / "run")
    first = training.train(tiny_config(online_probe=True), run_dir, verbose=0,
                           log=quiet)
    saved = all_state(first["model"])
    model = first["model"]
    # Both Adam optimizers took steps and have non-zero moments to restore.
    assert int(model.optimizer.iterations.numpy()) == 2
    assert int(model.discriminator_optimizer.iterations.numpy()) == 2
    d_moments = [
        v for v in model.discriminator_optimizer.variables
        if "momentum" in v.path
    ]
    assert d_moments and any(np.abs(v.numpy()).max() > 0 for v in d_moments)
    assert int(model.probe_optimizer.iterations.numpy()) == 2

    fresh = training.build_model(
        tiny_config(encoder="basic32x32", online_probe=True), 32,
        num_classes=10)
    before = all_state(fresh)
    assert set(before) == set(saved)
    assert all(before[k].shape == saved[k].shape for k in saved)
    assert any(not np.array_equal(before[k], saved[k]) for k in saved)
    runs.restore_checkpoint(
        fresh, os.path.join(run_dir, runs.CHECKPOINT_FILE)
    )
    restored = all_state(fresh)
    for key, value in saved.items():
        np.testing.assert_array_equal(restored[key], value, err_msg=key)


def test_checkpoint_is_the_commit_point(run_copy):
    """A state.json older than the checkpoint (a kill between the two
    writes) does not make the run redo or skip an epoch."""
    run_dir = run_copy
    with open(os.path.join(run_dir, runs.STATE_FILE), "w") as f:
        json.dump({"epochs_done": 0, "history": []}, f)
    config = trained_run_config(encoder="basic32x32")
    epochs_done, history = runs.read_run_state(run_dir, config)
    assert epochs_done == 2 and [r["epoch"] for r in history] == [1, 2]


def test_finished_run_does_nothing_and_raised_epochs_continue(run_copy):
    run_dir = run_copy
    checkpoint = os.path.join(run_dir, runs.CHECKPOINT_FILE)
    stamp = os.stat(checkpoint).st_mtime_ns
    messages = []
    again = training.train(trained_run_config(), run_dir, verbose=0,
                           log=messages.append)
    assert not again["trained"]
    assert "already finished 2 epochs" in messages[0]
    assert os.stat(checkpoint).st_mtime_ns == stamp

    messages = []
    more = training.train(trained_run_config(epochs=3), run_dir, verbose=0,
                          log=messages.append)
    assert any("from epoch 3" in m for m in messages)
    # The restored optimizers continue counting: 2 steps per epoch.
    assert int(more["model"].optimizer.iterations.numpy()) == 6
    assert int(more["model"].discriminator_optimizer.iterations.numpy()) == 6
    assert [r["epoch"] for r in read_history(run_dir)] == ["1", "2", "3"]


def test_changed_settings_are_refused(run_copy):
    with pytest.raises(runs.RunError, match="estimator"):
        training.train(trained_run_config(estimator="nce"), run_copy,
                       verbose=0)


def test_nonfinite_loss_stops_and_keeps_last_good_epoch(tmp_path, monkeypatch):
    config = tiny_config(epochs=3)
    steps = config.steps_per_epoch

    def poisoned_pipeline(images, batch_size, seed=None, repeat=False,
                          **unused):
        # Good batches for the first epoch, then NaN pixels.
        good = images[: steps * batch_size].astype("float32")
        bad = np.full_like(good, np.nan)
        batches = np.concatenate([good, bad, bad])
        dataset = tf.data.Dataset.from_tensor_slices(batches)
        return dataset.batch(batch_size, drop_remainder=True)

    monkeypatch.setattr(
        "dim_keras.data.pipeline.training_pipeline", poisoned_pipeline
    )
    run_dir = str(tmp_path / "run")
    with pytest.raises(runs.RunError) as info:
        training.train(config, run_dir, verbose=0, log=quiet)
    message = str(info.value)
    assert "non-finite loss in epoch 2" in message
    assert "last good epoch (1) is kept" in message
    epochs_done, history = runs.read_run_state(run_dir, config)
    assert epochs_done == 1 and len(history) == 1
    encoder = keras.saving.load_model(
        os.path.join(run_dir, runs.ENCODER_FILE)
    )
    weights = np.concatenate([w.reshape(-1) for w in encoder.get_weights()])
    assert np.all(np.isfinite(weights))
    assert len(read_history(run_dir)) == 1


def _cli(out, epochs, steps):
    return [
        sys.executable, "-m", "dim_keras.apps.cli", "train",
        "--dataset", "digits", "--batch-size", "16", "--critic-units", "16",
        "--steps-per-epoch", str(steps), "--epochs", str(epochs),
        # The run's evaluation is tested elsewhere: here it would only
        # make the test slower.
        "--no-jit", "--no-evaluate", "--out", out,
    ]


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    return env


def _epochs_done(out):
    try:
        with open(os.path.join(out, runs.STATE_FILE)) as f:
            return json.load(f)["epochs_done"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow  # two CLI processes, one killed with SIGKILL
def test_sigkill_mid_epoch_then_resume(tmp_path):
    out = str(tmp_path / "run")
    epochs, steps = 4, 4
    process = subprocess.Popen(
        _cli(out, epochs, steps), cwd=ROOT, env=_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while _epochs_done(out) < 1 and process.poll() is None:
        assert time.time() < deadline, "no epoch finished in time"
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    # The checkpoint is the commit point (state.json may lag it by one).
    done_at_kill = runs.read_checkpoint_state(
        os.path.join(out, runs.CHECKPOINT_FILE)
    )["epochs_done"]
    assert 1 <= done_at_kill < epochs

    result = subprocess.run(
        _cli(out, epochs, steps), cwd=ROOT, env=_env(),
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"from epoch {done_at_kill + 1}" in result.stdout
    assert f"Done: {epochs} epochs" in result.stdout
    rows = read_history(out)
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    # No temporary files are left behind under the final names' directory.
    assert not [n for n in os.listdir(out) if "partial" in n]
    encoder = keras.saving.load_model(os.path.join(out, runs.ENCODER_FILE))
    y = encoder(np.zeros((2, 32, 32, 3), "uint8"))["y"]
    assert tuple(y.shape) == (2, 64)

    again = subprocess.run(
        _cli(out, epochs, steps), cwd=ROOT, env=_env(),
        capture_output=True, text=True, timeout=300,
    )
    assert again.returncode == 0
    assert f"already finished {epochs} epochs" in again.stdout
    assert "Done:" not in again.stdout


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_training(tmp_path, precision):
    run_dir = str(tmp_path / "run")
    result = training.train(
        tiny_config(precision=precision), run_dir, verbose=0,
        log=quiet,
    )
    # The global policy is the caller's again afterwards.
    assert keras.config.dtype_policy().name == "float32"
    model = result["model"]
    assert model.encoder.dtype_policy.name == precision
    assert all(v.dtype == "float32" for v in model.encoder.trainable_weights)
    loss_scaled = precision == "mixed_float16"
    for optimizer in (model.optimizer, model.discriminator_optimizer):
        assert isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ) == loss_scaled
    assert all(np.isfinite(v) for v in result["history"][-1].values())
    encoder = keras.saving.load_model(
        os.path.join(run_dir, runs.ENCODER_FILE)
    )
    y = encoder(np.zeros((2, 32, 32, 3), "uint8"))["y"]
    assert keras.backend.standardize_dtype(y.dtype) == precision.split("_")[1]


def test_loss_terms_are_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = training.build_model(
            tiny_config(encoder="basic32x32", alpha=0.5), 32
        )
        images = np.random.RandomState(0).randint(0, 256, (4, 32, 32, 3))
        terms = model.compute_dim_losses(images.astype("uint8"))
    finally:
        keras.config.set_dtype_policy(previous)
    for name, value in terms.items():
        assert keras.backend.standardize_dtype(value.dtype) == "float32", name


def test_mixed_float16_gradients_are_unscaled():
    """Loss scaling must not leak into the update: Adam's first moment
    after one step matches float32's (up to float16 rounding)."""
    images = np.random.RandomState(0).randint(0, 256, (8, 32, 32, 3))
    images = images.astype("uint8")
    previous = keras.config.dtype_policy()
    moments, weights = {}, None
    try:
        for precision in ("float32", "mixed_float16"):
            keras.config.set_dtype_policy(precision)
            config = tiny_config(encoder="basic32x32", precision=precision)
            model = training.build_model(config, 32)
            if weights is None:
                weights = model.get_weights()
            else:
                model.set_weights(weights)
            model.fit(images, batch_size=8, epochs=1, verbose=0,
                      shuffle=False)
            inner = getattr(model.optimizer, "inner_optimizer", model.optimizer)
            moments[precision] = {
                v.path.rsplit("/", 1)[-1]: np.array(v.numpy())
                for v in inner.variables if "momentum" in v.path
            }
    finally:
        keras.config.set_dtype_policy(previous)
    key = next(k for k in moments["float32"] if "block1_conv_kernel" in k)
    reference = np.linalg.norm(moments["float32"][key])
    assert reference > 0
    ratio = np.linalg.norm(moments["mixed_float16"][key]) / reference
    assert 0.8 < ratio < 1.25, ratio


def test_a_run_resumes_with_the_recipe_it_started_with(tmp_path):
    # A run recorded before its dataset's recipe changed: it used the
    # reference's settings (lr 1e-4, augmentation, batch and layer norm in
    # the critic, no critic_norm in its config). Resumed with no settings
    # given, it keeps them instead of taking today's recipe.
    run_dir = str(tmp_path / "run")
    first = training.train(
        tiny_config(lr=1e-4, augment=True, critic_norm="batch_layer"),
        run_dir, verbose=0, log=quiet,
    )
    assert first["config"].lr == 1e-4
    path = os.path.join(run_dir, runs.CONFIG_FILE)
    with open(path) as f:
        recorded = json.load(f)
    del recorded["critic_norm"], recorded["view_crop"]
    with open(path, "w") as f:
        json.dump(recorded, f)
    resumed = training.train(tiny_config(epochs=2), run_dir, verbose=0,
                             log=quiet)
    assert resumed["resumed"] and resumed["epochs_done"] == 2
    config = resumed["config"]
    assert (config.lr, config.augment, config.critic_norm) == (
        1e-4, True, "batch_layer")
    assert config.view_crop == "resized"  # views were resized crops then
    # A new run on the same dataset takes today's recipe (as `train`
    # resolves a config for an empty run directory).
    fresh = tiny_config(critic_units=None).resolved(resumed["dataset"])
    assert (fresh.lr, fresh.critic_units) == (1e-3, 512)
    assert fresh.view_crop == "translate"
