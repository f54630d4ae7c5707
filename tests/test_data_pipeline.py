"""Tests of the training input pipeline."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from dim_keras.data import augment
from dim_keras.data import get_dataset
from dim_keras.data import pipeline
from dim_keras.data import tfds_data


def _images(n, size=8):
    # Image i is filled with the value i: batches can be traced back.
    return np.repeat(np.arange(n, dtype=np.uint8), size * size * 3).reshape(
        n, size, size, 3)


def test_in_memory_batches_drop_the_remainder_and_shuffle():
    images = _images(10)
    batches = list(pipeline.training_pipeline(images, 4, seed=0))
    assert [b.shape for b in batches] == [(4, 8, 8, 3)] * 2
    ids = np.concatenate([b.numpy()[:, 0, 0, 0] for b in batches])
    assert len(set(ids)) == 8  # no image twice within an epoch
    epoch2 = np.concatenate(
        [b.numpy()[:, 0, 0, 0] for b in pipeline.training_pipeline(
            images, 10, seed=0)])
    assert sorted(epoch2) == list(range(10))


def test_streamed_dataset_is_cached_shuffled_and_resized():
    images = _images(12, size=16)
    source = tf.data.Dataset.from_tensor_slices(images)
    data = pipeline.training_pipeline(
        source, 5, seed=0, image_size=8, num_images=12)
    batches = list(data)
    assert [tuple(b.shape) for b in batches] == [(5, 8, 8, 3)] * 2
    ids = np.concatenate([b.numpy()[:, 0, 0, 0] for b in batches])
    assert len(set(ids)) == 10 and ids.tolist() != sorted(ids.tolist())


def test_batch_size_checks():
    with pytest.raises(ValueError, match="Received: batch_size=1"):
        pipeline.training_pipeline(_images(4), 1)
    with pytest.raises(ValueError, match="exceeds the 4 training images"):
        pipeline.training_pipeline(_images(4), 5)
    with pytest.raises(ValueError, match="num_images"):
        pipeline.training_pipeline(tf.data.Dataset.from_tensor_slices(
            _images(4)), 2)


def test_dataset_pipeline_augments_by_default_and_not_when_off(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(tfds_data, "reachable", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=8):
        ds = get_dataset("stl10", data_dir=str(tmp_path))
        on = next(iter(pipeline.dataset_pipeline(ds, 4, seed=0)))
        off = next(iter(pipeline.dataset_pipeline(
            ds, 4, seed=0, augment_images=False)))
    assert on.shape == off.shape == (4, 64, 64, 3)
    assert on.dtype == off.dtype == tf.uint8


def test_digits_pipeline_has_no_augmentation():
    ds = get_dataset("digits")
    batch = next(iter(pipeline.dataset_pipeline(ds, 16, seed=0)))
    train = ds.training_images()
    # Without augmentation each batch image is one of the training images.
    flat = {im.tobytes() for im in train}
    assert all(im.tobytes() in flat for im in batch.numpy())
    assert augment.NONE == ds.augmentation


def test_augmentation_differs_between_epochs_but_repeats_with_the_seed():
    images = np.random.default_rng(0).integers(
        0, 256, (8, 32, 32, 3)).astype(np.uint8)
    aug = augment.Augmentation(random_crop=True, crop_padding=4, flip=True)

    def epochs(seed):
        data = pipeline.training_pipeline(
            images, 8, seed=seed, augmentation=aug)
        return [np.sort(next(iter(data)).numpy().reshape(8, -1), axis=0)
                for _ in range(2)]

    first, second = epochs(0)
    assert first.shape == (8, 32 * 32 * 3)
    assert not np.array_equal(first, second)
    again = epochs(0)
    np.testing.assert_array_equal(first, again[0])


def _ids(batch_images):
    # The brightest pixel of image i is i (crops pad with zeros).
    return np.asarray(batch_images).reshape(len(batch_images), -1).max(axis=1)


@pytest.mark.parametrize("augmentation", [
    augment.NONE,
    augment.Augmentation(random_crop=True, crop_padding=2, flip=True),
])
def test_labels_stay_with_their_images(augmentation):
    images = _images(12)
    labels = np.arange(12, dtype=np.int64)
    batches = list(pipeline.tf_data_pipeline(
        images, 4, seed=0, augmentation=augmentation, labels=labels))
    assert len(batches) == 3
    for batch_images, batch_labels, *clean in batches:
        assert batch_images.shape == (4, 8, 8, 3)
        np.testing.assert_array_equal(_ids(batch_images), batch_labels)
    in_memory = pipeline.ShuffledBatches(images, 5, seed=1, labels=labels)
    for index in range(len(in_memory)):
        batch_images, batch_labels = in_memory[index]
        np.testing.assert_array_equal(_ids(batch_images), batch_labels)


def test_two_views_carry_one_label_per_image():
    images = _images(8, size=32)
    batch_images, batch_labels, _ = next(iter(pipeline.tf_data_pipeline(
        images, 4, seed=0, views=2, labels=np.arange(8, dtype=np.int64))))
    assert batch_images.shape == (4, 2, 32, 32, 3)
    assert batch_labels.shape == (4,)


@pytest.mark.parametrize("settings", [
    dict(views=2),
    dict(augmentation=augment.Augmentation(random_crop=True, crop_padding=2,
                                           flip=True)),
])
def test_augmented_labelled_batches_carry_their_clean_images(settings):
    """The online probe's un-augmented copy: each row the very image its
    views were drawn from, as it is stored."""
    images = _images(8, size=8)
    labels = np.arange(8, dtype=np.int64)
    for views, batch_labels, clean in pipeline.tf_data_pipeline(
            images, 4, seed=0, labels=labels, **settings):
        assert clean.dtype == images.dtype
        np.testing.assert_array_equal(clean.numpy(),
                                      images[batch_labels.numpy()])
        assert views.shape[0] == 4


def test_unaugmented_or_unlabelled_batches_carry_no_clean_copy():
    images = _images(8, size=8)
    labels = np.arange(8, dtype=np.int64)
    plain = next(iter(pipeline.tf_data_pipeline(images, 4, labels=labels)))
    assert len(plain) == 2  # the images are clean already
    resized = next(iter(pipeline.tf_data_pipeline(
        images, 4, image_size=4, labels=labels)))
    assert len(resized) == 2 and resized[0].shape == (4, 4, 4, 3)
    unlabelled = next(iter(pipeline.tf_data_pipeline(images, 4, views=2)))
    assert unlabelled.shape == (4, 2, 8, 8, 3)  # no labels, no probe


def test_clean_images_are_resized_to_the_training_size():
    images = _images(2, size=8)
    clean = pipeline.clean_images(images, 8, 4)
    assert clean.shape == (2, 4, 4, 3) and clean.dtype == np.uint8
    assert pipeline.clean_images(images, 8, 8) is images


def test_labels_must_match_the_images():
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        pipeline.ShuffledBatches(_images(4), 2, labels=np.zeros(3))
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        pipeline.tf_data_pipeline(_images(4), 2, labels=np.zeros(3))


def test_batches_that_need_tensorflow_say_so_in_a_dataset_error(monkeypatch):
    import builtins

    import keras

    from dim_keras.data.image_dataset import DatasetError

    real_import = builtins.__import__

    def without_tensorflow(name, *args, **kwargs):
        if name == "tensorflow":
            raise ImportError("No module named 'tensorflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    monkeypatch.setattr(builtins, "__import__", without_tensorflow)
    images = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(DatasetError, match="repeat=True"):
        pipeline.training_pipeline(images, 2, repeat=True)
