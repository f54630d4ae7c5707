"""Training-time augmentation: random crops, horizontal flips, resizing.

TensorFlow is imported only when a transform is built, so this module (and
the dataset registry that names each dataset's augmentation) loads without
it.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """How training images of a dataset are augmented.

    Args:
        random_crop: bool; crop a random `image_size` window. Images larger
            than `image_size` are cropped as they are (STL-10's 96x96 ->
            64x64); images of `image_size` are first zero-padded by
            `crop_padding` on each side (CIFAR's pad-4 crop).
        crop_padding: int, padding before cropping same-size images.
        flip: bool; flip left-right with probability 1/2.
    """

    random_crop: bool = False
    crop_padding: int = 0
    flip: bool = False

    @property
    def active(self):
        return self.random_crop or self.flip

    def describe(self):
        parts = []
        if self.random_crop:
            parts.append(
                f"random crop (pad {self.crop_padding})"
                if self.crop_padding
                else "random crop"
            )
        if self.flip:
            parts.append("horizontal flip")
        return " + ".join(parts) or "none"


NONE = Augmentation()


def resize_uint8(image, image_size):
    """Bilinear (antialiased) resize of uint8 images to `image_size`."""
    import tensorflow as tf

    resized = tf.image.resize(
        image, (image_size, image_size), method="bilinear", antialias=True
    )
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def batch_transform(image_size, augmentation=NONE):
    """Vectorized training transform of whole batches.

    Each image of a batch gets its own random crop offset and flip, drawn
    by stateless ops from the `seed` argument, so a pipeline that feeds a
    new seed per batch (`tf.data.Dataset.random`) is reproducible and still
    augments differently every epoch. Without augmentation, images not of
    `image_size` are resized to it.

    Args:
        image_size: int, output height and width.
        augmentation: an `Augmentation` (`NONE` for none).

    Returns:
        A function `(images, seed)` of a uint8 `[B, H, W, 3]` batch (static
        `H` and `W`) and an int64 `[2]` seed, returning uint8
        `[B, image_size, image_size, 3]`.
    """
    import tensorflow as tf

    size = image_size

    def transform(images, seed):
        crop_seed, flip_seed = tf.unstack(
            tf.random.experimental.stateless_split(seed, 2)
        )
        batch = tf.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        if augmentation.random_crop:
            pad = augmentation.crop_padding
            if pad and height <= size:
                images = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
                height, width = height + 2 * pad, width + 2 * pad
            corners = tf.random.stateless_uniform(
                [2, batch], crop_seed, minval=0,
                maxval=tf.int32.max, dtype=tf.int32,
            )
            tops = corners[0] % (height - size + 1)
            lefts = corners[1] % (width - size + 1)
            offsets = tf.range(size)[None, :]
            images = tf.gather(images, tops[:, None] + offsets, axis=1,
                               batch_dims=1)
            images = tf.gather(images, lefts[:, None] + offsets, axis=2,
                               batch_dims=1)
        elif height != size or width != size:
            images = resize_uint8(images, size)
        if augmentation.flip:
            flips = tf.random.stateless_uniform([batch], flip_seed) < 0.5
            images = tf.where(
                flips[:, None, None, None], tf.reverse(images, axis=[2]),
                images,
            )
        return tf.ensure_shape(images, (None, size, size, 3))

    return transform
