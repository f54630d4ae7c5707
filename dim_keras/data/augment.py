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


def training_transform(image_size, augmentation=NONE, seed=None):
    """Per-image training transform for `tf.data.Dataset.map`.

    Without augmentation, images not of `image_size` are resized to it.

    Args:
        image_size: int, output height and width.
        augmentation: an `Augmentation` (`NONE` for none).
        seed: int or None, op seed of the random crops and flips.

    Returns:
        A function of a uint8 `[H, W, 3]` tensor returning uint8
        `[image_size, image_size, 3]`.
    """
    import tensorflow as tf

    def transform(image):
        if augmentation.random_crop:
            pad = augmentation.crop_padding
            height = image.shape[0]
            if pad and height is not None and height <= image_size:
                image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
            elif pad and height is None:
                padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
                image = tf.cond(
                    tf.shape(image)[0] <= image_size,
                    lambda: padded,
                    lambda: image,
                )
            image = tf.image.random_crop(
                image, (image_size, image_size, 3), seed=seed
            )
        elif image.shape[0] != image_size or image.shape[1] != image_size:
            image = resize_uint8(image, image_size)
        if augmentation.flip:
            image = tf.image.random_flip_left_right(image, seed=seed)
        return tf.ensure_shape(image, (image_size, image_size, 3))

    return transform
