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
