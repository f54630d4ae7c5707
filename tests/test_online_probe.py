"""The online probe's pieces: its features, its heads' widths, its loss."""

import keras
import numpy as np
import pytest
from keras import ops

from dim_keras import online_probe
from dim_keras.online_probe import PROBED_ONLINE

# Every test here depends on the Keras backend: CI runs them on each.
pytestmark = pytest.mark.backend


def numpy(x):
    return ops.convert_to_numpy(x)


def _view(seed, n=2):
    rng = np.random.default_rng(seed)
    return {"y": rng.normal(size=(n, 3)).astype("float32"),
            "conv": rng.normal(size=(n, 2, 2, 4)).astype("float32")}


def test_probe_features_flatten_each_layer_and_put_views_side_by_side():
    a, b = _view(0), _view(1)
    one = online_probe.probe_features([a])
    assert sorted(one) == sorted(PROBED_ONLINE)
    np.testing.assert_array_equal(numpy(one["y"]), a["y"])
    np.testing.assert_array_equal(numpy(one["conv"]),
                                  a["conv"].reshape(2, 16))
    two = online_probe.probe_features([a, b])
    np.testing.assert_array_equal(
        numpy(two["conv"]),
        np.concatenate([a["conv"].reshape(2, 16), b["conv"].reshape(2, 16)],
                       axis=-1))
    assert numpy(two["y"]).shape == (2, 6)
    assert numpy(two["y"]).dtype == np.float32


def test_probe_widths_add_up_the_encoders_flat_outputs():
    def encoder(units):
        images = keras.Input((8, 8, 3))
        conv = keras.layers.Conv2D(units, 4, strides=4)(images)
        y = keras.layers.Dense(units)(keras.layers.Flatten()(conv))
        return keras.Model(images, {"conv": conv, "y": y})

    assert online_probe.probe_widths([encoder(5)]) == {
        "y": 5, "conv": 2 * 2 * 5}
    assert online_probe.probe_widths([encoder(5), encoder(3)]) == {
        "y": 8, "conv": 2 * 2 * 8}


def test_probe_heads_are_named_after_their_layers():
    assert online_probe.probe_heads(0) == (None,) * len(PROBED_ONLINE)
    heads = online_probe.probe_heads(4)
    assert [head.name for head in heads] == [
        f"online_probe_{key}" for key in PROBED_ONLINE]
    assert all(head.units == 4 for head in heads)


def _zero_heads(classes, widths):
    heads = {}
    for key, width in widths.items():
        heads[key] = keras.layers.Dense(classes, kernel_initializer="zeros")
        heads[key].build((None, width))
    return heads


def test_probe_loss_of_zero_heads_is_log_classes_per_layer():
    heads = _zero_heads(4, {"y": 3, "conv": 16})
    features = online_probe.probe_features([_view(0, n=3)])
    loss = online_probe.probe_loss(heads, features, np.array([1, -1, 3]))
    assert float(numpy(loss)) == pytest.approx(2 * np.log(4), rel=1e-5)
    none = online_probe.probe_loss(heads, features, np.array([-1, -1, -1]))
    assert float(numpy(none)) == 0.0


def test_probe_loss_counts_only_the_labelled_images():
    heads = _zero_heads(2, {"y": 3})
    heads["y"].bias.assign(np.array([0.0, np.log(3.0)], "float32"))
    features = {"y": np.zeros((3, 3), "float32")}
    # Softmax (1/4, 3/4): label 0 costs log 4, label 1 log(4/3); the
    # unlabelled image costs nothing and does not count.
    loss = online_probe.probe_loss(heads, features, np.array([0, 1, -1]))
    assert float(numpy(loss)) == pytest.approx(
        (np.log(4) + np.log(4 / 3)) / 2, rel=1e-5)


def test_the_default_optimizer_keeps_a_moving_average_of_the_weights():
    optimizer = online_probe.probe_optimizer()
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert float(numpy(optimizer.learning_rate)) == pytest.approx(1e-2)
    assert optimizer.use_ema and optimizer.ema_momentum == 0.99


def test_averaged_weights_score_with_the_average_then_put_the_weights_back():
    heads = _zero_heads(2, {"y": 3})
    head = heads["y"]
    optimizer = keras.optimizers.SGD(1.0, use_ema=True, ema_momentum=0.5)
    optimizer.build(head.trainable_variables)
    # SGD at rate 1 on gradients of -1 adds 1 to every weight per step;
    # the average starts at the first step's weights (1), then moves
    # halfway to the new ones: (1 + 2) / 2 = 1.5.
    for _ in range(2):
        optimizer.apply(
            [ops.full(v.shape, -1.0) for v in head.trainable_variables],
            head.trainable_variables)
    np.testing.assert_allclose(numpy(head.bias), [2.0, 2.0])
    with online_probe.averaged_weights(heads, optimizer):
        np.testing.assert_allclose(numpy(head.kernel), np.full((3, 2), 1.5))
        np.testing.assert_allclose(numpy(head.bias), [1.5, 1.5])
    np.testing.assert_array_equal(numpy(head.kernel), np.full((3, 2), 2.0))
    np.testing.assert_array_equal(numpy(head.bias), [2.0, 2.0])


def test_averaged_weights_without_an_average_leave_the_heads_alone():
    heads = _zero_heads(2, {"y": 3})
    heads["y"].bias.assign(np.array([1.0, 2.0], "float32"))
    unbuilt = online_probe.probe_optimizer()
    plain = keras.optimizers.Adam(1e-2)
    plain.build(heads["y"].trainable_variables)
    for optimizer in (None, unbuilt, plain):
        with online_probe.averaged_weights(heads, optimizer):
            np.testing.assert_array_equal(numpy(heads["y"].bias), [1.0, 2.0])
