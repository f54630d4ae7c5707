"""The `tf.data` input pipeline of unsupervised training.

In memory (numpy) images are sliced; streamed TFDS datasets are decoded in
parallel by TFDS and cached in memory when they fit. Then: shuffle, batches
of a fixed size (the last partial batch dropped: every batch needs the same
number of negatives), the vectorized training transform of each batch
(augmentation, or resizing to the encoder's size) in parallel, and
prefetching, so the training step never waits on input.
"""

import numpy as np
import tensorflow as tf

from dim_keras.data import augment

# Decoded training images up to this size are cached in memory.
CACHE_LIMIT_BYTES = 3 * 2**30
# Shuffle buffer of streamed datasets (in-memory arrays shuffle fully).
SHUFFLE_BUFFER = 20000


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


def training_pipeline(
    images,
    batch_size,
    seed=None,
    image_size=None,
    augmentation=augment.NONE,
    num_images=None,
    cache=None,
):
    """Shuffled, batched, prefetched images for `DeepInfoMax.fit`.

    Args:
        images: uint8 `[N, H, W, 3]` numpy array, or a `tf.data.Dataset` of
            uint8 `[H, W, 3]` images (then give `num_images`).
        batch_size: int, at least 2 and at most the number of images.
        seed: int or None, shuffling and augmentation seed.
        image_size: int or None; output size (None: the images' size).
        augmentation: `augment.Augmentation` applied to each image.
        num_images: int, number of images of a `tf.data.Dataset`.
        cache: bool or None; cache a streamed dataset in memory (None: when
            its decoded images take at most `CACHE_LIMIT_BYTES`).

    Returns:
        A `tf.data.Dataset` of uint8 `[batch_size, size, size, 3]` batches.
    """
    if isinstance(images, np.ndarray):
        num_images = len(images)
        _check_batch_size(batch_size, num_images)
        source_size = images.shape[1]
        dataset = tf.data.Dataset.from_tensor_slices(images)
        dataset = dataset.shuffle(
            num_images, seed=seed, reshuffle_each_iteration=True
        )
    else:
        if num_images is None:
            raise ValueError(
                "num_images is needed with a tf.data.Dataset. "
                "Received: num_images=None"
            )
        _check_batch_size(batch_size, num_images)
        source_size = images.element_spec.shape[0]
        dataset = images
        if cache is None:
            pixels = (source_size or image_size or 64) ** 2 * 3
            cache = num_images * pixels <= CACHE_LIMIT_BYTES
        if cache:
            dataset = dataset.cache()
        dataset = dataset.shuffle(
            min(num_images, SHUFFLE_BUFFER),
            seed=seed,
            reshuffle_each_iteration=True,
        )
    image_size = image_size or source_size
    if source_size is None:  # images of varying sizes: resize each first
        dataset = dataset.map(
            lambda x: augment.resize_uint8(x, image_size),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        source_size = image_size
    dataset = dataset.batch(batch_size, drop_remainder=True)
    if augmentation.active or source_size != image_size:
        # One stateless seed per batch: reproducible, new every epoch.
        seeds = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        ).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            augment.batch_transform(image_size, augmentation),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def dataset_pipeline(dataset, batch_size, seed=None, augment_images=True):
    """`training_pipeline` of an `ImageDataset`'s training images.

    In-memory datasets are sliced from their arrays; streamed ones are read
    with `dataset.training_dataset()`.

    Args:
        dataset: an `ImageDataset`.
        batch_size: int.
        seed: int or None.
        augment_images: bool; False turns the dataset's augmentation off.

    Returns:
        The batched `tf.data.Dataset`.
    """
    augmentation = dataset.augmentation if augment_images else augment.NONE
    if dataset.in_memory:
        source = dataset.training_images()
        num_images = len(source)
    else:
        source = dataset.training_dataset(seed=seed)
        num_images = dataset.num_training_images
    return training_pipeline(
        source,
        batch_size,
        seed=seed,
        image_size=dataset.image_size,
        augmentation=augmentation,
        num_images=num_images,
    )
