"""The input pipeline of unsupervised training.

On the TensorFlow backend the images go through `tf.data`; on JAX and
PyTorch they are served from memory by a `keras.utils.PyDataset`, so
training needs no TensorFlow.
"""

import keras
import numpy as np


def _check_batch_size(batch_size, num_images):
    if batch_size < 2:
        raise ValueError(
            "batch_size must be at least 2 (negatives are the other images "
            f"of the batch). Received: batch_size={batch_size}"
        )
    if batch_size > num_images:
        raise ValueError(
            f"batch_size exceeds the {num_images} training images. "
            f"Received: batch_size={batch_size}"
        )


class ShuffledBatches(keras.utils.PyDataset):
    """In-memory shuffled batches; the last partial batch is dropped.

    Every epoch serves a fresh permutation of the images (seeded), cut into
    `len(images) // batch_size` full batches.

    Args:
        images: uint8 `[N, H, W, 3]` numpy array.
        batch_size: int, at least 2 and at most `N`.
        seed: int or None, shuffling seed.
    """

    def __init__(self, images, batch_size, seed=None):
        super().__init__()
        _check_batch_size(batch_size, len(images))
        self.images = images
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self):
        return len(self.images) // self.batch_size

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(
                f"Batch index out of range [0, {len(self)}). "
                f"Received: index={index}"
            )
        start = index * self.batch_size
        return self.images[self.order[start : start + self.batch_size]]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.images))


def tf_data_pipeline(images, batch_size, seed=None):
    """Shuffled, batched, prefetched `tf.data.Dataset` of the images.

    Args:
        images: uint8 `[N, H, W, 3]` numpy array.
        batch_size: int, at least 2 and at most `N`.
        seed: int or None, shuffling seed.

    Returns:
        A `tf.data.Dataset` of uint8 `[batch_size, H, W, 3]` batches.
    """
    import tensorflow as tf

    _check_batch_size(batch_size, len(images))
    dataset = tf.data.Dataset.from_tensor_slices(images)
    dataset = dataset.shuffle(
        len(images), seed=seed, reshuffle_each_iteration=True
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def training_pipeline(images, batch_size, seed=None):
    """Shuffled batches of images for `DeepInfoMax.fit`.

    The last partial batch is dropped (every batch needs the same number of
    negatives). On the TensorFlow backend this is a prefetched `tf.data`
    pipeline, elsewhere an in-memory `ShuffledBatches`.

    Args:
        images: uint8 `[N, H, W, 3]` numpy array.
        batch_size: int, at least 2 and at most `N`.
        seed: int or None, shuffling seed.

    Returns:
        A `tf.data.Dataset` or a `ShuffledBatches` of uint8
        `[batch_size, H, W, 3]` batches.
    """
    if keras.backend.backend() == "tensorflow":
        return tf_data_pipeline(images, batch_size, seed=seed)
    return ShuffledBatches(images, batch_size, seed=seed)
