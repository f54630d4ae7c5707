"""Tracing on shapes alone creates the variables of every layer called."""

import keras
import pytest

from dim_keras import symbolic

# Every test here depends on the Keras backend: CI runs them on each.
pytestmark = pytest.mark.backend


def test_trace_builds_the_layers_and_gives_the_output_shapes():
    first, second = keras.layers.Dense(4), keras.layers.Dense(2)
    outputs = symbolic.trace(
        lambda x: {"a": first(x), "b": second(first(x)) * 2.0}, (3, 5),
        name="two_layers")
    assert first.built and second.built
    assert tuple(first.kernel.shape) == (5, 4)
    assert tuple(second.kernel.shape) == (4, 2)
    assert isinstance(outputs["b"], keras.KerasTensor)
    assert tuple(outputs["a"].shape) == (3, 4)
    assert tuple(outputs["b"].shape) == (3, 2)
    assert outputs["b"].dtype == "float32"
