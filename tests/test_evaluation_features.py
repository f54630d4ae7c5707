"""Feature extraction: shapes, inference mode, identical across runs."""

import keras
import numpy as np
import pytest

from dim_keras.evaluation.features import extract_features
from dim_keras.networks import basic32x32


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 16, 16, 3), dtype=np.uint8)


def test_features_of_a_saved_encoder_are_identical_across_extractions(
        tmp_path):
    keras.utils.set_random_seed(0)
    encoder = basic32x32(image_size=16, representation_dim=8)
    path = str(tmp_path / "encoder.keras")
    encoder.save(path)
    images = _images(10)
    first = extract_features(keras.saving.load_model(path), images,
                             layers=("conv", "fc", "y"), batch_size=4,
                             flatten=True)
    second = extract_features(keras.saving.load_model(path), images,
                              layers=("conv", "fc", "y"), batch_size=4,
                             flatten=True)
    assert first["conv"].shape == (10, 2 * 2 * 256)
    assert first["fc"].shape == (10, 1024)
    assert first["y"].shape == (10, 8)
    for name in ("conv", "fc", "y"):
        assert first[name].dtype == np.float32
        np.testing.assert_array_equal(first[name], second[name])


def test_features_are_the_inference_mode_outputs_batched_or_not():
    keras.utils.set_random_seed(1)
    encoder = basic32x32(image_size=16, representation_dim=8)
    images = _images(7)
    expected = keras.ops.convert_to_numpy(
        encoder(images.astype("float32"), training=False)["y"])
    got = extract_features(encoder, images, layers=("y",), batch_size=3)
    np.testing.assert_allclose(got["y"], expected, rtol=1e-4, atol=1e-5)


def test_unknown_layer_is_refused():
    encoder = basic32x32(image_size=16, representation_dim=8)
    with pytest.raises(ValueError, match="Received: layers"):
        extract_features(encoder, _images(2), layers=("nope",))


class _CountCalls(keras.layers.Layer):
    """Identity layer counting how often its Python `call` runs (traces)."""

    calls = 0

    def call(self, x):
        _CountCalls.calls += 1
        return x


def test_extraction_traces_the_encoder_once_over_varying_batches():
    if keras.backend.backend() not in ("tensorflow", "jax"):
        pytest.skip("counts traces of a compiled predict function")
    images = keras.Input((4, 4, 3))
    hidden = _CountCalls()(images)
    y = keras.layers.Dense(2)(keras.layers.Flatten()(hidden))
    encoder = keras.Model(images, {"y": y, "conv": hidden})
    before = _CountCalls.calls
    # Short last batches (10 = 4 + 4 + 2, 7 = 4 + 3), two splits, and a
    # second extraction: without fixed shapes and a kept feature model
    # each of these traced again (TensorFlow's retracing warnings).
    for n in (10, 7, 9, 10):
        got = extract_features(encoder, _images(n)[:, :4, :4], layers=("y",),
                               batch_size=4, verbose=0)
        assert got["y"].shape == (n, 2)
    assert _CountCalls.calls - before == 1


def test_padded_last_batch_leaves_the_features_unchanged():
    keras.utils.set_random_seed(2)
    encoder = basic32x32(image_size=16, representation_dim=8)
    images = _images(5)
    one_batch = extract_features(encoder, images, layers=("y",), batch_size=5)
    padded = extract_features(encoder, images, layers=("y",), batch_size=4)
    np.testing.assert_allclose(padded["y"], one_batch["y"], rtol=1e-4,
                               atol=1e-5)
