"""The `tf.data` input pipeline of unsupervised training."""

import tensorflow as tf


def training_pipeline(images, batch_size, seed=None, repeat=False):
    """Shuffled, batched, prefetched images for `DeepInfoMax.fit`.

    The last partial batch is dropped (every batch needs the same number of
    negatives); batches are prefetched so the step never waits on input.

    Args:
        images: uint8 `[N, H, W, 3]` numpy array.
        batch_size: int, at least 2 and at most `N`.
        seed: int or None, shuffling seed.
        repeat: bool, repeat without end (reshuffled each pass), for
            training by a fixed number of steps per epoch.

    Returns:
        A `tf.data.Dataset` of uint8 `[batch_size, H, W, 3]` batches.
    """
    if batch_size < 2:
        raise ValueError(
            "batch_size must be at least 2 (negatives are the other images "
            f"of the batch). Received: batch_size={batch_size}"
        )
    if batch_size > len(images):
        raise ValueError(
            f"batch_size exceeds the {len(images)} training images. "
            f"Received: batch_size={batch_size}"
        )
    dataset = tf.data.Dataset.from_tensor_slices(images)
    dataset = dataset.shuffle(
        len(images), seed=seed, reshuffle_each_iteration=True
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset.prefetch(tf.data.AUTOTUNE)
