"""Tests of `dim_keras.backend`: the per-backend training steps.

In-process tests run on the active Keras backend (`KERAS_BACKEND`); CI runs
them on each backend. The cross-backend tests start one process per
installed backend (`tests/backend_worker.py`) and compare what they write.
"""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import dim_keras.backend
from dim_keras.data.pipeline import training_pipeline
from dim_keras.model import DeepInfoMax
from dim_keras.networks.encoders import build_encoder
from tests.helpers import tiny_encoder

# Every test here depends on the Keras backend: CI runs them on each.
pytestmark = pytest.mark.backend

WORKER = os.path.join(os.path.dirname(__file__), "backend_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTALLED = [
    b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b)
]
TOLERANCE = 1e-4


def tiny_model(gamma=0.1):
    keras.utils.set_random_seed(0)
    model = DeepInfoMax(
        build_encoder("basic32x32", image_size=32),
        alpha=0.5,
        beta=1.0,
        gamma=gamma,
        local_critic_units=16,
        global_critic_units=16,
        seed=0,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        discriminator_optimizer=keras.optimizers.Adam(1e-3),
    )
    model.build((None, 32, 32, 3))
    model.build_optimizers()
    return model


def test_the_active_backend_s_trainer_is_used():
    backend = keras.backend.backend()
    module = dim_keras.backend.Trainer.__module__
    assert module == f"dim_keras.backend.{backend}"
    assert issubclass(DeepInfoMax, dim_keras.backend.Trainer)


def test_input_gradient_penalty_of_a_linear_network_is_its_squared_norm():
    # d(w.x + b)/dx = w for every sample, so the penalty is |w|^2.
    inputs = keras.Input((3,))
    network = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    w = np.array([[0.5], [-2.0], [1.5]], dtype="float32")
    network.set_weights([w, np.array([0.3], dtype="float32")])
    samples = keras.ops.convert_to_tensor(
        np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    )
    penalty = dim_keras.backend.Trainer().input_gradient_penalty(
        network, samples
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(penalty), np.sum(w**2), rtol=1e-6
    )


def test_discriminator_gradient_is_that_of_its_own_objective_only():
    # With gradient_penalty 0, the discriminator's loss on fixed samples is
    # mean softplus(-D(prior)) + mean softplus(D(code)); its gradient for
    # the logit bias is mean(sigmoid(D(prior)) - 1) + mean(sigmoid(D(code)))
    # and must not include the encoder's prior-matching term.
    model = tiny_model()
    model.gradient_penalty = 0.0
    images = np.random.default_rng(0).integers(
        0, 256, size=(4, 32, 32, 3), dtype=np.uint8
    )
    prior = np.random.default_rng(1).uniform(size=(4, 64)).astype("float32")
    terms, grads, d_grads, _ = model.compute_dim_gradients(
        keras.ops.convert_to_tensor(images), prior_samples=prior
    )
    outputs = model.encoder(images, training=True)
    code = keras.ops.sigmoid(outputs["y"])
    real = keras.ops.convert_to_numpy(model.prior_discriminator(prior))
    fake = keras.ops.convert_to_numpy(model.prior_discriminator(code))
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    expected = np.mean(sigmoid(real) - 1) + np.mean(sigmoid(fake))
    bias_index = [v.path for v in model.discriminator_variables].index(
        model.prior_discriminator.get_layer("logit").bias.path
    )
    bias_grad = keras.ops.convert_to_numpy(d_grads[bias_index])
    np.testing.assert_allclose(bias_grad, [expected], rtol=2e-3, atol=1e-5)
    assert len(grads) == len(model.encoder_variables)
    assert float(terms["gradient_penalty"]) == 0.0


def test_fit_steps_both_optimizers():
    model = tiny_model()
    d_before = [
        keras.ops.convert_to_numpy(v) for v in model.discriminator_variables
    ]
    slots_before = [
        keras.ops.convert_to_numpy(v)
        for v in model.discriminator_optimizer.variables
    ]
    images = np.random.default_rng(0).integers(
        0, 256, size=(10, 32, 32, 3), dtype=np.uint8
    )
    pipeline = training_pipeline(images, 4, seed=0)
    history = model.fit(pipeline, epochs=2, verbose=0, shuffle=False)
    # 10 images in batches of 4: 2 full batches an epoch, 2 epochs.
    assert int(model.optimizer.iterations) == 4
    assert int(model.discriminator_optimizer.iterations) == 4
    d_after = [
        keras.ops.convert_to_numpy(v) for v in model.discriminator_variables
    ]
    assert all(not np.array_equal(b, a) for b, a in zip(d_before, d_after))
    slots_after = [
        keras.ops.convert_to_numpy(v)
        for v in model.discriminator_optimizer.variables
    ]
    changed = [
        not np.array_equal(b, a) for b, a in zip(slots_before, slots_after)
    ]
    # Every moment slot moved (the learning rate variable stays).
    assert sum(changed) == len(changed) - 1
    assert set(history.history) >= {"loss", "local_mi", "discriminator_loss"}
    assert all(np.isfinite(history.history["loss"]))


def test_fit_without_prior_matching_steps_only_the_encoder():
    model = tiny_model(gamma=0.0)
    assert model.prior_discriminator is None
    images = np.random.default_rng(0).integers(
        0, 256, size=(8, 32, 32, 3), dtype=np.uint8
    )
    pipeline = training_pipeline(images, 4, seed=0)
    history = model.fit(pipeline, epochs=1, verbose=0, shuffle=False)
    assert int(model.optimizer.iterations) == 2
    assert int(model.discriminator_optimizer.iterations) == 0
    assert history.history["prior_loss"] == [0.0]
    assert history.history["discriminator_loss"] == [0.0]
    assert np.isfinite(history.history["loss"][0])


def _value_or_none(variable):
    """A variable's value, or None when `fit` left it without one (its
    buffer purged or donated to the step, and never written back)."""
    try:
        return np.array(variable.numpy())
    except (RuntimeError, TypeError):
        return None


@pytest.mark.skipif(keras.backend.backend() != "jax",
                    reason="about Keras's JAX train state")
def test_jax_fit_carries_every_optimizer_s_state():
    """The discriminator's and the probe's optimizer state ride in Keras's
    JAX train state after the metrics' (`dim_keras.backend.jax_state`):
    this fails, saying so, when Keras's `fit` stops carrying them."""
    keras.utils.set_random_seed(0)
    model = DeepInfoMax(tiny_encoder(), alpha=0.5, beta=1.0, gamma=0.1,
                        local_critic_units=16, online_probe_classes=3, seed=0)
    model.compile()
    model.build((None, 32, 32, 3))
    model.build_optimizers()
    carried = [model.discriminator_optimizer, model.probe_optimizer]
    before = [[np.array(v.numpy()) for v in o.variables] for o in carried]
    images = np.random.default_rng(0).random((8, 32, 32, 3), "float32")
    labels = np.array([0, 1, 2, 0] * 2, dtype="int32")
    model.fit(images, labels, batch_size=4, epochs=1, shuffle=False,
              verbose=0)
    assert int(model.optimizer.iterations) == 2
    for optimizer, values in zip(carried, before):
        steps = _value_or_none(optimizer.iterations)
        moments = [
            after is not None and not np.array_equal(value, after)
            for value, after, variable in zip(
                values, map(_value_or_none, optimizer.variables),
                optimizer.variables)
            if "momentum" in variable.path
        ]
        assert steps == 2 and moments and all(moments), (
            "Keras's JAX fit no longer carries Model.metrics_variables "
            "through the steps and back, where the prior discriminator's "
            "and the online probe's optimizer state ride: move them to "
            "where Keras now carries them (dim_keras/backend/jax_state.py). "
            f"Received: {optimizer.name}.iterations={steps} after 2 steps, "
            f"moments moved={moments}"
        )


def test_metrics_state_splits_and_joins_and_refuses_another_layout():
    from dim_keras.backend.jax_state import MetricsState

    tracker = keras.metrics.Mean()
    optimizer = keras.optimizers.Adam()
    optimizer.build([keras.Variable(np.zeros(3))])
    layout = MetricsState([tracker], [optimizer, None])
    values = [variable.value for variable in layout.variables]
    assert len(values) == len(tracker.variables) + len(optimizer.variables)
    metric_values, optimizer_values = layout.split(values)
    assert [len(v) for v in metric_values] == [len(tracker.variables)]
    assert [len(v) for v in optimizer_values] == [len(optimizer.variables), 0]
    joined = layout.join(metric_values, optimizer_values)
    assert all(a is b for a, b in zip(joined, values))
    assert len(joined) == len(values)
    with pytest.raises(RuntimeError) as error:
        layout.split(values[: len(tracker.variables)])
    assert "no longer carries Model.metrics_variables" in str(error.value)
    assert "Received: len(metrics_variables)=2" in str(error.value)


def _run_worker(backend, mode, out_dir, hide_tensorflow=False, **env_vars):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    env.update(env_vars)
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    command = [sys.executable, WORKER, mode, str(out_dir)]
    if hide_tensorflow:
        command.append("--without-tensorflow")
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, (
        f"{backend} {mode} failed:\n{result.stderr[-4000:]}"
    )


@pytest.fixture(scope="module")
def cross_backend_runs(tmp_path_factory):
    """Each installed backend trains from the same weights; TF loads them."""
    if len(INSTALLED) < 2:
        pytest.skip(f"needs two backends; installed: {INSTALLED}")
    out_dir = tmp_path_factory.mktemp("backends")
    for backend in INSTALLED:  # the first one writes the shared weights
        _run_worker(
            backend, "run", out_dir, hide_tensorflow=backend != "tensorflow"
        )
    if "tensorflow" in INSTALLED:
        _run_worker("tensorflow", "load", out_dir)
    return out_dir


def _load(out_dir, name):
    with np.load(os.path.join(out_dir, name)) as f:
        return dict(f)


@pytest.mark.slow
def test_backends_agree_on_every_loss_term_and_gradient(cross_backend_runs):
    results = {
        b: _load(cross_backend_runs, f"gradients-{b}.npz") for b in INSTALLED
    }
    reference_backend = INSTALLED[0]
    reference = results[reference_backend]
    # 3 estimators and multi-view x (7 terms + 41 encoder and 6
    # discriminator gradients); across scales, 16 more of the conv critic;
    # two encoders on channel groups, 14 more of the second encoder.
    assert len(reference) == (4 * (7 + 41 + 6) + (7 + 41 + 16 + 6)
                              + (7 + 41 + 14 + 6))
    # Agreement on zeros would prove little: most gradients are not zero
    # (a bias followed by batch norm has a zero gradient, mathematically).
    grads = [v for k, v in reference.items() if "grad" in k]
    nonzero = sum(bool(np.any(np.abs(v) > 1e-6)) for v in grads)
    assert nonzero >= 0.8 * len(grads)
    for backend in INSTALLED[1:]:
        assert sorted(results[backend]) == sorted(reference)
        for key, value in reference.items():
            np.testing.assert_allclose(
                results[backend][key],
                value,
                rtol=TOLERANCE,
                atol=TOLERANCE,
                err_msg=f"{backend} vs {reference_backend}: {key}",
            )


@pytest.mark.slow
def test_each_backend_trains_both_optimizers(cross_backend_runs):
    for backend in INSTALLED:
        result = _load(cross_backend_runs, f"train-{backend}.npz")
        steps = int(result["steps"])
        assert steps == 6
        assert int(result["iterations/optimizer"]) == steps
        assert int(result["iterations/discriminator_optimizer"]) == steps
        for group in ("encoder", "discriminator"):
            keys = [k for k in result if k.startswith(f"before/{group}/")]
            assert keys
            for key in keys:
                after = result[key.replace("before/", "after/", 1)]
                assert not np.array_equal(result[key], after), (backend, key)
        assert np.all(np.isfinite(result["history/loss"]))


@pytest.mark.slow
def test_encoders_trained_on_any_backend_load_in_tensorflow(
    cross_backend_runs,
):
    if "tensorflow" not in INSTALLED:
        pytest.skip("TensorFlow is not installed")
    loaded = _load(cross_backend_runs, "load-tensorflow.npz")
    assert {key.split("/")[0] for key in loaded} == set(INSTALLED)
    for backend in INSTALLED:
        result = _load(cross_backend_runs, f"train-{backend}.npz")
        for name in ("local", "conv", "fc", "y"):
            np.testing.assert_allclose(
                loaded[f"{backend}/{name}"],
                result[f"output/{name}"],
                rtol=1e-5,
                atol=1e-5,
                err_msg=f"encoder trained on {backend}: {name}",
            )


@pytest.mark.slow
def test_jax_data_parallel_trains_like_one_device(cross_backend_runs):
    if "jax" not in INSTALLED:
        pytest.skip("JAX is not installed")
    _run_worker(
        "jax",
        "parallel",
        cross_backend_runs,
        hide_tensorflow=True,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    parallel = _load(cross_backend_runs, "train-jax-parallel.npz")
    single = _load(cross_backend_runs, "train-jax.npz")
    assert int(parallel["mesh_devices"]) == 2
    assert int(single["mesh_devices"]) == 1
    assert int(parallel["iterations/optimizer"]) == 6
    assert int(parallel["iterations/discriminator_optimizer"]) == 6
    # The same global batches, split over two devices: the same maths up
    # to float rounding (amplified a little by Adam over 6 steps).
    for key in ("loss", "local_mi", "global_mi", "discriminator_loss"):
        np.testing.assert_allclose(
            parallel[f"history/{key}"], single[f"history/{key}"], rtol=1e-2
        )
