"""Tests of "DIM + occlusion": Y from occluded images, locals from clean."""

import numpy as np
from keras import ops

from dim_keras import objective
from dim_keras import view_schemes
from dim_keras.model import DeepInfoMax
from dim_keras.model import occlude
from dim_keras.networks.encoders import basic32x32


def test_occlude_masks_one_block_per_image():
    images = np.random.default_rng(0).integers(0, 100, (16, 8, 8, 3))
    out = ops.convert_to_numpy(occlude(images.astype("uint8"), seed=3))
    assert out.shape == (16, 8, 8, 3) and out.dtype == np.float32
    corners = set()
    for before, after in zip(images, out):
        masked = np.all(after == 127.5, axis=-1)  # inputs are < 100
        rows, cols = np.nonzero(masked)
        assert masked.sum() == 16  # one 4x4 block (half the side)
        assert rows.max() - rows.min() == 3 and cols.max() - cols.min() == 3
        np.testing.assert_array_equal(after[~masked], before[~masked])
        corners.add((rows.min(), cols.min()))
    assert len(corners) > 3


def _model(occlusion):
    return DeepInfoMax(
        basic32x32(), estimator="jsd", alpha=0.0, beta=1.0, gamma=0.0,
        local_critic_units=16, occlusion=occlusion, seed=0,
    )


def test_y_comes_from_occluded_images_and_locals_from_clean(monkeypatch):
    images = np.random.default_rng(1).integers(
        0, 256, (4, 32, 32, 3)).astype("float32")
    blank = np.zeros_like(images)
    monkeypatch.setattr(view_schemes, "occlude", lambda x, seed: blank)
    model = _model(occlusion=True)
    terms = model.compute_dim_losses(images, training=True)
    clean = model.encoder(images, training=True)
    occluded = model.encoder(blank, training=True)
    scores = model.local_critic(clean["local"], occluded["y"], training=True)
    expected = objective.local_mi(scores, "jsd")
    np.testing.assert_allclose(
        float(terms["local_mi"]), float(expected), rtol=1e-5)
    # Not what the clean Y gives.
    scores = model.local_critic(clean["local"], clean["y"], training=True)
    assert abs(float(terms["local_mi"]) -
               float(objective.local_mi(scores, "jsd"))) > 1e-6
    # No occlusion at inference.
    inference = model.compute_dim_losses(images, training=False)
    scores = model.local_critic(
        model.encoder(images)["local"], model.encoder(images)["y"])
    np.testing.assert_allclose(
        float(inference["local_mi"]),
        float(objective.local_mi(scores, "jsd")), rtol=1e-5)


def test_occlusion_is_in_the_config():
    model = _model(occlusion=True)
    assert model.get_config()["occlusion"] is True
    assert _model(occlusion=False).get_config()["occlusion"] is False
