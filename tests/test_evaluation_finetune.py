"""Fine-tuning on few labels: trained weights against random ones."""

import keras
import numpy as np
import pytest

from dim_keras.evaluation import finetune
from dim_keras.networks import basic32x32

SIZE = 16


def _images(n, seed):
    # Class c brightens channel c: easy to tell apart.
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n // 3)
    images = rng.integers(0, 60, size=(len(labels), SIZE, SIZE, 3))
    images[np.arange(len(labels)), :, :, labels] += 150
    return images.astype("uint8"), labels


@pytest.fixture(scope="module")
def encoder():
    keras.utils.set_random_seed(0)
    return basic32x32(image_size=SIZE, representation_dim=8)


def test_the_copy_starts_from_the_encoder_or_from_scratch(encoder):
    images, _ = _images(6, 0)
    trained = finetune.finetune_model(encoder, 3, initial=True, seed=1)
    fresh = finetune.finetune_model(encoder, 3, initial=False, seed=1)
    inner = [layer for layer in trained.layers
             if isinstance(layer, keras.Model)][0]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(inner(images)["y"]),
        keras.ops.convert_to_numpy(encoder(images)["y"]), atol=1e-5)
    fresh_inner = [layer for layer in fresh.layers
                   if isinstance(layer, keras.Model)][0]
    assert not np.allclose(
        keras.ops.convert_to_numpy(fresh_inner(images)["y"]),
        keras.ops.convert_to_numpy(encoder(images)["y"]), atol=1e-3)
    assert trained.output_shape == (None, 3)


def test_records_per_rung_and_initialization_leave_the_encoder_alone(
        encoder):
    train_images, train_labels = _images(12, 0)
    test_images, test_labels = _images(9, 1)
    before = [w.copy() for w in encoder.get_weights()]
    records = finetune.finetune_probes(
        encoder, train_images, train_labels, test_images, test_labels,
        num_classes=3, ladder=(2, 4), draws=1, seed=0, steps=20)
    # 4 images per class is a whole class: the full-label probes' rung.
    assert [(r["representation"], r["labels_per_class"]) for r in records] \
        == [("dim", 2), ("random", 2)]
    for record in records:
        assert record["probe"] == "finetune" and record["layer"] == "y"
        assert record["draws"] == 1 and len(record["accuracy_per_draw"]) == 1
        assert record["accuracy"] == record["accuracy_per_draw"][0]
        assert record["train_size"] == 6
    # 20 steps of batch 6 on 6 labelled images: 20 epochs.
    assert records[0]["epochs"] == 20 and records[0]["batch_size"] == 6
    # The colour of a channel is easy: fine-tuned on 2 images per class, the
    # network gets most of the test images right.
    assert max(r["accuracy"] for r in records) >= 0.6
    for a, b in zip(before, encoder.get_weights()):
        np.testing.assert_array_equal(a, b)
