"""The online probe's head: standardized, width-scaled inputs to a Dense."""

import keras
import numpy as np
import pytest

from dim_keras.networks.online_probe import OnlineProbeHead
from dim_keras.networks.online_probe import width_scale


def _head(width, classes=3):
    keras.utils.set_random_seed(0)
    head = OnlineProbeHead(classes, name="online_probe_y")
    head.build((None, width))
    return head


def test_logits_ignore_the_scale_and_offset_of_each_feature():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8)).astype("float32")
    scale = rng.uniform(0.5, 500.0, size=8).astype("float32")
    offset = rng.normal(scale=100.0, size=8).astype("float32")
    head = _head(8)
    plain = keras.ops.convert_to_numpy(head(x))
    moved = keras.ops.convert_to_numpy(head(x * scale + offset))
    np.testing.assert_allclose(moved, plain, atol=1e-3)
    # A plain Dense layer with the same weights is thrown far off.
    dense = keras.layers.Dense(3)
    dense.build((None, 8))
    dense.set_weights(head.get_weights())
    assert np.abs(keras.ops.convert_to_numpy(dense(x * scale + offset))
                  - keras.ops.convert_to_numpy(dense(x))).max() > 10


def test_wide_inputs_are_scaled_down_by_their_width():
    assert width_scale(64) == width_scale(8) == 1.0
    assert width_scale(9408) == pytest.approx(64 / 9408)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 640)).astype("float32")
    head = _head(640)
    kernel, bias = head.get_weights()
    z = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    expected = (z * 0.1) @ kernel + bias
    np.testing.assert_allclose(keras.ops.convert_to_numpy(head(x)), expected,
                               rtol=1e-4, atol=1e-5)


def test_its_variables_are_a_dense_layers():
    # Checkpoints of runs whose heads were plain Dense layers still load.
    head = _head(5)
    assert [v.path for v in head.weights] == ["online_probe_y/kernel",
                                              "online_probe_y/bias"]
    assert isinstance(head, keras.layers.Dense)
