"""Two views of each training image, for multi-view DIM.

Each view is drawn independently from the same image by the augmentation
of AMDIM and CMC (Bachman et al., 2019; Tian et al., 2019): a crop, a
horizontal flip, colour jitter and random greyscale (AMDIM flips the image
once, before drawing its two views: `shared_flip`). The crop is either
AMDIM's random resized crop (its STL-10 and ImageNet transform) or its
random translation by a few pixels with reflected borders (its CIFAR-10
transform, for small images). The transform is vectorized over a batch and
stateless (one seed per batch), so it runs in parallel on the `tf.data`
pipeline and is reproducible.

TensorFlow is imported only when the transform is built.
"""

import dataclasses

from dim_keras.choices import VIEW_CROPS
from dim_keras.choices import check_choice


@dataclasses.dataclass(frozen=True)
class ViewAugmentation:
    """How each view of an image is drawn.

    Defaults follow AMDIM's training transforms.

    Args:
        crop: `"resized"` (a random resized crop of `crop_scale` and
            `crop_ratio`: AMDIM's STL-10 and ImageNet transform) or
            `"translate"` (with probability `translate_probability`, the
            image shifted by whole pixels, up to `max_translation` along
            each axis, its borders reflected: AMDIM's CIFAR-10 transform).
        crop_scale: `(low, high)`, fraction of the image's area a resized
            crop covers, drawn uniformly.
        crop_ratio: `(low, high)`, aspect ratio (width / height) of a
            resized crop, drawn log-uniformly.
        max_translation: int, largest shift in pixels of the source image
            (`crop="translate"`); less than the image's side.
        translate_probability: float, probability that a view is shifted
            (`crop="translate"`).
        flip: float, probability of a left-right flip.
        shared_flip: bool; True flips an image (or not) once, before both
            of its views are drawn, as AMDIM does, so the two views face
            the same way; False draws each view's flip independently.
        jitter: float, probability of colour jitter.
        brightness: float, brightness factor drawn from `[1 - b, 1 + b]`.
        contrast: float, contrast factor drawn from `[1 - c, 1 + c]`.
        saturation: float, saturation factor drawn from `[1 - s, 1 + s]`.
        hue: float, hue shift drawn from `[-h, h]` (a full turn is 1).
        grayscale: float, probability of turning the view grey.
    """

    crop: str = "resized"
    crop_scale: tuple = (0.3, 1.0)
    crop_ratio: tuple = (0.7, 1.4)
    flip: float = 0.5
    shared_flip: bool = False
    jitter: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale: float = 0.25
    max_translation: int = 4
    translate_probability: float = 0.8

    def __post_init__(self):
        check_choice("crop", self.crop, VIEW_CROPS, what="view crop")
        if not (isinstance(self.max_translation, int)
                and self.max_translation >= 0):
            raise ValueError(
                "max_translation must be a whole number of pixels, at "
                f"least 0. Received: max_translation={self.max_translation!r}"
            )
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise ValueError(
                "crop_scale must satisfy 0 < low <= high <= 1. "
                f"Received: crop_scale={self.crop_scale}"
            )
        low, high = self.crop_ratio
        if not 0 < low <= high:
            raise ValueError(
                "crop_ratio must satisfy 0 < low <= high. "
                f"Received: crop_ratio={self.crop_ratio}"
            )
        for name in ("flip", "jitter", "grayscale",
                     "translate_probability"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(
                    f"{name} is a probability in [0, 1]. "
                    f"Received: {name}={value}"
                )

    def describe(self):
        """One line for the log and the docs."""
        if self.crop == "translate":
            crop = (f"random translation (up to {self.max_translation} px, "
                    f"reflected borders, p={self.translate_probability:g})")
        else:
            crop = (f"random resized crop (area {self.crop_scale[0]:g}-"
                    f"{self.crop_scale[1]:g}, aspect {self.crop_ratio[0]:g}-"
                    f"{self.crop_ratio[1]:g})")
        return (
            f"{crop}, flip p={self.flip:g}"
            f"{' (shared by both views)' if self.shared_flip else ''}, "
            f"colour jitter "
            f"p={self.jitter:g} (brightness {self.brightness:g}, contrast "
            f"{self.contrast:g}, saturation {self.saturation:g}, hue "
            f"{self.hue:g}), greyscale p={self.grayscale:g}"
        )


DEFAULT = ViewAugmentation()


def for_crop(crop):
    """The default augmentation with the given crop.

    The translation is AMDIM's whole CIFAR-10 transform, whose flip is
    shared by both views; the resized crop keeps independent flips (as
    measured in benchmarks/README.md).

    Args:
        crop: `"resized"` or `"translate"` (see `ViewAugmentation`).

    Returns:
        A `ViewAugmentation`.
    """
    return ViewAugmentation(crop=crop, shared_flip=crop == "translate")


def crop_boxes(shape, seed, scale, ratio):
    """Random resized-crop boxes, normalized `[y1, x1, y2, x2]`.

    Args:
        shape: `[2]` int tensor `(batch, ...)`: one box per image.
        seed: int `[2]` stateless seed.
        scale: `(low, high)` area fraction.
        ratio: `(low, high)` aspect ratio.

    Returns:
        float32 `[batch, 4]` boxes inside the unit square.
    """
    import tensorflow as tf

    batch = shape[0]
    draws = tf.random.stateless_uniform([4, batch], seed)
    area = scale[0] + (scale[1] - scale[0]) * draws[0]
    log_low, log_high = tf.math.log(ratio[0]), tf.math.log(ratio[1])
    aspect = tf.exp(log_low + (log_high - log_low) * draws[1])
    width = tf.minimum(tf.sqrt(area * aspect), 1.0)
    height = tf.minimum(tf.sqrt(area / aspect), 1.0)
    top = (1.0 - height) * draws[2]
    left = (1.0 - width) * draws[3]
    return tf.stack([top, left, top + height, left + width], axis=1)


def translation_boxes(shape, seed, max_translation, probability):
    """Boxes of random whole-pixel shifts of reflect-padded images.

    The images are padded by `max_translation` pixels on every side; a box
    covers an image-sized window of the padded image, moved by a whole
    number of pixels in `[-max_translation, max_translation]` along each
    axis (with probability `probability`; otherwise centred). Its
    coordinates are those `tf.image.crop_and_resize` reads at pixel
    centres, so a window of the image's own size is copied exactly.

    Args:
        shape: `[3]` int tensor `(batch, height, width)` of the unpadded
            images.
        seed: int `[2]` stateless seed.
        max_translation: int, the padding and largest shift in pixels.
        probability: float, probability that an image is shifted.

    Returns:
        float32 `[batch, 4]` normalized `[y1, x1, y2, x2]` boxes in the
        padded image.
    """
    import tensorflow as tf

    batch = shape[0]
    move_seed, apply_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 2)
    )
    offsets = tf.random.stateless_uniform(
        [2, batch], move_seed, minval=0, maxval=2 * max_translation + 1,
        dtype=tf.int32,
    )
    moved = tf.random.stateless_uniform([batch], apply_seed) < probability
    offsets = tf.where(moved[None, :], offsets, max_translation)
    offsets = tf.cast(offsets, tf.float32)
    size = tf.cast(shape[1:3], tf.float32)[:, None]  # [2, 1]
    last = size + 2.0 * max_translation - 1.0  # padded side minus one
    start = offsets / last
    end = (offsets + size - 1.0) / last
    return tf.stack([start[0], start[1], end[0], end[1]], axis=1)


def _factor(seed, batch, spread):
    import tensorflow as tf

    return tf.random.stateless_uniform(
        [batch], seed, minval=1.0 - spread, maxval=1.0 + spread
    )


def random_flip(images, seed, probability):
    """Flips each image of a batch left-right with the given probability.

    Args:
        images: `[B, H, W, C]` tensor, any dtype.
        seed: int `[2]` stateless seed.
        probability: float, probability of a flip.

    Returns:
        The batch, each image flipped or not.
    """
    import tensorflow as tf

    flips = tf.random.stateless_uniform([tf.shape(images)[0]],
                                        seed) < probability
    return tf.where(flips[:, None, None, None], tf.reverse(images, axis=[2]),
                    images)


def view_transform(image_size, augmentation=DEFAULT):
    """The transform drawing one view of every image of a batch.

    Args:
        image_size: int, output height and width.
        augmentation: a `ViewAugmentation`.

    Returns:
        A function `(images, seed)` of uint8 `[B, H, W, 3]` and an int
        `[2]` seed, returning float32 `[B, image_size, image_size, 3]` in
        0-255.
    """
    import tensorflow as tf

    a = augmentation

    def transform(images, seed):
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 9))
        batch = tf.shape(images)[0]
        x = tf.cast(images, tf.float32) / 255.0
        if a.crop == "translate":
            pad = a.max_translation
            sides = [s for s in images.shape[1:3] if s is not None]
            if sides and pad >= min(sides):
                raise ValueError(
                    "max_translation must be less than the image's side "
                    "(its borders are reflected). Received: "
                    f"max_translation={pad}, images of "
                    f"{images.shape[1]}x{images.shape[2]}"
                )
            boxes = translation_boxes(tf.shape(images)[:3], seeds[0], pad,
                                      a.translate_probability)
            x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]],
                       mode="REFLECT")
        else:
            boxes = crop_boxes(tf.shape(images), seeds[0], a.crop_scale,
                               a.crop_ratio)
        x = tf.image.crop_and_resize(
            x, boxes, tf.range(batch), (image_size, image_size)
        )
        x = random_flip(x, seeds[1], a.flip)

        jittered = x + (_factor(seeds[2], batch, a.brightness)[:, None, None,
                                                              None] - 1.0)
        mean = tf.reduce_mean(
            tf.image.rgb_to_grayscale(jittered), axis=[1, 2, 3],
            keepdims=True,
        )
        contrast = _factor(seeds[3], batch, a.contrast)[:, None, None, None]
        jittered = tf.clip_by_value((jittered - mean) * contrast + mean,
                                    0.0, 1.0)
        hsv = tf.image.rgb_to_hsv(jittered)
        shift = tf.random.stateless_uniform(
            [batch], seeds[4], minval=-a.hue, maxval=a.hue
        )[:, None, None]
        saturation = _factor(seeds[5], batch, a.saturation)[:, None, None]
        hsv = tf.stack(
            [
                tf.math.floormod(hsv[..., 0] + shift, 1.0),
                tf.clip_by_value(hsv[..., 1] * saturation, 0.0, 1.0),
                hsv[..., 2],
            ],
            axis=-1,
        )
        jittered = tf.image.hsv_to_rgb(hsv)
        apply = tf.random.stateless_uniform([batch], seeds[6]) < a.jitter
        x = tf.where(apply[:, None, None, None], jittered, x)

        grey = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(x))
        greys = tf.random.stateless_uniform([batch], seeds[7]) < a.grayscale
        x = tf.where(greys[:, None, None, None], grey, x)
        x = tf.clip_by_value(x, 0.0, 1.0) * 255.0
        return tf.ensure_shape(x, (None, image_size, image_size, 3))

    return transform


def two_views_transform(image_size, augmentation=DEFAULT):
    """The batch transform of multi-view training: two views per image.

    Args:
        image_size: int, output height and width.
        augmentation: a `ViewAugmentation`, drawn independently per view
            (but for a shared flip).

    Returns:
        A function `(images, seed)` of uint8 `[B, H, W, 3]` and an int
        `[2]` seed, returning uint8 `[B, 2, image_size, image_size, 3]`:
        both views of an image side by side, so a split of the batch over
        replicas keeps them together.
    """
    import tensorflow as tf

    shared_flip = augmentation.shared_flip
    flip = augmentation.flip
    if shared_flip:
        # The image is flipped once, below; the views are not.
        augmentation = dataclasses.replace(augmentation, flip=0.0)
    one_view = view_transform(image_size, augmentation)

    def transform(images, seed):
        if not shared_flip:
            first, second = tf.unstack(
                tf.random.experimental.stateless_split(seed, 2)
            )
        else:
            first, second, third = tf.unstack(
                tf.random.experimental.stateless_split(seed, 3)
            )
            images = random_flip(images, third, flip)
        views = tf.stack(
            [one_view(images, first), one_view(images, second)], axis=1
        )
        views = tf.cast(tf.round(views), tf.uint8)
        return tf.ensure_shape(views, (None, 2, image_size, image_size, 3))

    return transform
