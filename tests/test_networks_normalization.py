"""The critic's normalizations equal the plain Keras layers, with gradients."""

import keras
import numpy as np
import pytest
from keras import layers
from keras import ops

from dim_keras import networks
from dim_keras.networks import normalization

# Every test here depends on the Keras backend: CI runs them on each.
pytestmark = pytest.mark.backend


def numpy(x):
    return ops.convert_to_numpy(x)


def value_and_gradients(fn, x, variables):
    """`fn(x)` and the gradients of `sum(fn(x) * weights)` w.r.t. x, vars.

    Runs `fn` statelessly (variable values passed in) so that one helper
    serves every backend; returns numpy arrays and the state updates.
    """
    backend = keras.backend.backend()
    values = [ops.convert_to_tensor(numpy(v)) for v in variables]
    x = ops.convert_to_tensor(x)

    def run(x, *values):
        with keras.StatelessScope(
            state_mapping=list(zip(variables, values))
        ) as scope:
            out = fn(x)
        weights = ops.cos(ops.arange(out.shape[-1], dtype="float32"))
        loss = ops.sum(ops.cast(out, "float32") * weights)
        return loss, out, scope

    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch([x] + values)
            loss, out, scope = run(x, *values)
        grads = tape.gradient(loss, [x] + values)
    elif backend == "jax":
        import jax

        def loss_only(args):
            return run(*args)[0]

        _, out, scope = run(x, *values)
        grads = jax.grad(loss_only)([x] + values)
    else:
        import torch

        inputs = [t.detach().clone().requires_grad_(True) for t in [x] + values]
        loss, out, scope = run(*inputs)
        grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    updates = {
        v.path: numpy(scope.get_current_value(v))
        for v in variables
        if scope.get_current_value(v) is not None
    }
    grads = [None if g is None else numpy(g) for g in grads]
    return numpy(out), grads, updates


def make_layers(channels, units, seed=0):
    rng = np.random.default_rng(seed)
    dense = layers.Dense(units, use_bias=False)
    dense.build((None, channels))
    norm = layers.BatchNormalization()
    norm.build((None, units))
    dense.kernel.assign(rng.normal(size=(channels, units)).astype("float32"))
    norm.gamma.assign(rng.uniform(0.5, 2.0, units).astype("float32"))
    norm.beta.assign(rng.normal(size=units).astype("float32"))
    norm.moving_mean.assign(rng.normal(size=units).astype("float32"))
    norm.moving_variance.assign(rng.uniform(0.5, 2.0, units).astype("float32"))
    return dense, norm


@pytest.mark.parametrize("training", [True, False])
def test_linear_batch_norm_relu_equals_the_layers(training):
    dense, norm = make_layers(channels=5, units=7)
    # Rows with a large common offset: the statistics must not cancel.
    x = np.random.default_rng(1).normal(3.0, 0.5, (40, 5)).astype("float32")
    variables = [dense.kernel, norm.gamma, norm.beta] + [
        norm.moving_mean,
        norm.moving_variance,
    ]

    def reference(x):
        return ops.relu(norm(dense(x), training=training))

    def folded(x):
        return normalization.linear_batch_norm_relu(
            x, dense, norm, training=training
        )

    want, want_grads, want_state = value_and_gradients(reference, x, variables)
    got, got_grads, got_state = value_and_gradients(folded, x, variables)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert (want > 0).mean() > 0.2  # the ReLU leaves both signs active
    for g, w in zip(got_grads[:4], want_grads[:4]):
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-3)
    assert got_state.keys() == want_state.keys()
    for key in want_state:
        np.testing.assert_allclose(
            got_state[key], want_state[key], rtol=1e-5, atol=1e-5
        )


def test_linear_batch_norm_relu_uses_the_biased_batch_variance():
    dense, norm = make_layers(channels=2, units=2)
    dense.kernel.assign(np.eye(2, dtype="float32"))
    norm.gamma.assign(np.ones(2, "float32"))
    norm.beta.assign(np.full(2, 5.0, "float32"))  # keep the ReLU open
    x = np.array([[1.0, 0.0], [3.0, 4.0]], "float32")
    out = numpy(normalization.linear_batch_norm_relu(x, dense, norm, True))
    # Column 0: mean 2, variance 1; column 1: mean 2, variance 4.
    expected = np.array(
        [[-1 / np.sqrt(1 + 1e-3), -2 / np.sqrt(4 + 1e-3)],
         [1 / np.sqrt(1 + 1e-3), 2 / np.sqrt(4 + 1e-3)]]
    ) + 5.0
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_standardize_equals_a_layer_norm_without_scale_and_offset():
    layer = layers.LayerNormalization(center=False, scale=False)
    layer.build((None, 6))
    x = np.random.default_rng(2).normal(2.0, 3.0, (9, 6)).astype("float32")
    want, want_grads, _ = value_and_gradients(layer, x, [])
    got, got_grads, _ = value_and_gradients(
        lambda x: normalization.standardize(x, layer.epsilon), x, []
    )
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_grads[0], want_grads[0], atol=1e-5)


def test_standardize_by_hand():
    x = np.array([[1.0, 3.0], [0.0, 4.0]], "float32")
    got = numpy(normalization.standardize(x, 0.0))
    np.testing.assert_allclose(got, [[-1.0, 1.0], [-1.0, 1.0]], atol=1e-6)


def test_standardize_gradient_of_a_row_sum_is_zero():
    # A standardized row sums to the constant 0, so the gradient of that sum
    # with respect to the row is exactly zero.
    x = np.array([[1.0, 2.0, 4.0, 8.0]], "float32")

    def row_sum(x):
        return ops.sum(normalization.standardize(x, 1e-3), -1, keepdims=True)

    _, grads, _ = value_and_gradients(row_sum, x, [])
    np.testing.assert_allclose(grads[0], np.zeros((1, 4)), atol=1e-6)


def test_mi_embedding_matches_its_layers_composed():
    embedding = networks.MIEmbedding(8)
    embedding.build((None, 5))
    x = np.random.default_rng(3).normal(1.0, 2.0, (30, 5)).astype("float32")
    for training in (True, False):
        got = numpy(embedding(x, training=training))
        rows = ops.convert_to_tensor(x)
        pre = numpy(embedding.hidden(rows))
        if training:  # the batch's statistics, computed the plain way
            mean, var = pre.mean(0), pre.var(0)
        else:
            mean = numpy(embedding.norm.moving_mean)
            var = numpy(embedding.norm.moving_variance)
        h = np.maximum(
            numpy(embedding.norm.gamma) * (pre - mean)
            / np.sqrt(var + embedding.norm.epsilon)
            + numpy(embedding.norm.beta),
            0,
        ).astype("float32")
        want = numpy(
            embedding.layer_norm(
                embedding.out(h) + embedding.shortcut(rows)
            )
        )
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_standardized_dot_equals_a_layer_norm_then_a_matmul():
    # Rows with a large common offset and one nearly constant row (its
    # variance below epsilon); gradients with respect to both operands.
    rng = np.random.default_rng(4)
    layer = layers.LayerNormalization(center=False, scale=False)
    layer.build((None, 16))
    x = rng.normal(5.0, 2.0, (12, 16)).astype("float32")
    x[3] = 7.0 + 1e-3 * rng.normal(size=16)
    y = ops.convert_to_tensor(rng.normal(size=(6, 16)).astype("float32"))
    y_var = keras.Variable(y)

    def reference(x):
        return ops.matmul(layer(x), ops.transpose(y_var))

    def fused(x):
        return normalization.standardized_dot(x, y_var, layer.epsilon)

    want, want_grads, _ = value_and_gradients(reference, x, [y_var])
    got, got_grads, _ = value_and_gradients(fused, x, [y_var])
    # Row 3's deviations (1e-3 around 7) keep only about 10 bits in
    # float32: both computations are within about 1e-4 of exact there.
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=5e-4)
    np.testing.assert_allclose(got_grads[0], want_grads[0], atol=5e-4)
    np.testing.assert_allclose(got_grads[1], want_grads[1], atol=5e-4)
    assert np.abs(want_grads[0]).max() > 0.1  # a gradient that could differ

    # And against float64: x_hat = (x - mean) * s, s = (var + eps)^-1/2, and
    # for g = d @ y: dx = s * (g - mean(g) - x_hat * mean(g * x_hat)).
    x64, y64 = x.astype("float64"), numpy(y).astype("float64")
    centered = x64 - x64.mean(-1, keepdims=True)
    s = 1 / np.sqrt((centered**2).mean(-1, keepdims=True) + layer.epsilon)
    x_hat = centered * s
    g = np.broadcast_to(np.cos(np.arange(6)), (12, 6)) @ y64
    dx = s * (
        g
        - g.mean(-1, keepdims=True)
        - x_hat * (g * x_hat).mean(-1, keepdims=True)
    )
    np.testing.assert_allclose(got, x_hat @ y64.T, rtol=1e-4, atol=5e-4)
    np.testing.assert_allclose(got_grads[0], dx, rtol=1e-4, atol=5e-4)


def test_standardized_dot_by_hand():
    # Rows standardize to [-1, 1] and [1, -1] (epsilon 0); y = [[2, 5]].
    x = np.array([[1.0, 3.0], [4.0, 0.0]], "float32")
    y = np.array([[2.0, 5.0]], "float32")
    got = numpy(normalization.standardized_dot(x, y, 0.0))
    np.testing.assert_allclose(got, [[3.0], [-3.0]], atol=1e-6)


def test_standardized_dot_in_bfloat16_follows_float32():
    rng = np.random.default_rng(5)
    x = rng.normal(1.0, 3.0, (64, 32)).astype("float32")
    y = rng.normal(size=(8, 32)).astype("float32")
    want = numpy(normalization.standardized_dot(x, y, 1e-3))
    got = normalization.standardized_dot(
        ops.cast(x, "bfloat16"), ops.cast(y, "bfloat16"), 1e-3
    )
    assert keras.backend.standardize_dtype(got.dtype) == "bfloat16"
    got = numpy(ops.cast(got, "float32"))
    # bfloat16 keeps 8 significant bits: about 1% of a score's size.
    np.testing.assert_allclose(got, want, atol=0.02 * np.abs(want).max())
