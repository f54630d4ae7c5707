"""Tests of training augmentation: crops, flips, resizing."""

import numpy as np
import pytest
import tensorflow as tf

from dim_keras.data import augment


def _coded(size):
    """An image whose pixels are all distinct (so windows are identifiable)."""
    rng = np.random.default_rng(0)
    return rng.integers(1, 256, size=(size, size, 3)).astype(np.uint8)


def _find_window(big, window):
    """`(top, left, flipped)` of `window` inside `big`, or None."""
    n = window.shape[0]
    for flipped in (False, True):
        target = window[:, ::-1] if flipped else window
        for top in range(big.shape[0] - n + 1):
            for left in range(big.shape[1] - n + 1):
                if np.array_equal(big[top:top + n, left:left + n], target):
                    return top, left, flipped
    return None


def _run(transform, image, times, seed=(1, 2)):
    batch = tf.constant(np.stack([image] * times))
    return transform(batch, tf.constant(seed, tf.int64)).numpy()


def test_cifar_pad4_crop_and_flip():
    image = _coded(32)
    padded = np.pad(image, [(4, 4), (4, 4), (0, 0)])
    aug = augment.Augmentation(random_crop=True, crop_padding=4, flip=True)
    outputs = _run(augment.batch_transform(32, aug), image, 40)
    found = [_find_window(padded, out) for out in outputs]
    assert all(f is not None for f in found)
    assert all(out.shape == (32, 32, 3) and out.dtype == np.uint8
               for out in outputs)
    offsets = {(t, l) for t, l, _ in found}
    assert len(offsets) > 5 and all(0 <= t <= 8 and 0 <= l <= 8
                                    for t, l in offsets)
    flips = [f for _, _, f in found]
    assert 0 < sum(flips) < len(flips)


def test_seeds_decide_the_draws():
    image = _coded(32)
    aug = augment.Augmentation(random_crop=True, crop_padding=4, flip=True)
    transform = augment.batch_transform(32, aug)
    first = _run(transform, image, 8, seed=(1, 2))
    np.testing.assert_array_equal(first, _run(transform, image, 8, (1, 2)))
    assert not np.array_equal(first, _run(transform, image, 8, (3, 4)))


def test_stl_random_64_crops_of_96():
    image = _coded(96)
    aug = augment.Augmentation(random_crop=True, flip=False)
    outputs = _run(augment.batch_transform(64, aug), image, 10)
    for out in outputs:
        assert out.shape == (64, 64, 3)
        top, left, flipped = _find_window(image, out)
        assert not flipped and 0 <= top <= 32 and 0 <= left <= 32


def test_without_augmentation_images_are_only_resized():
    image = np.full((96, 96, 3), 77, dtype=np.uint8)
    out = _run(augment.batch_transform(64, augment.NONE), image, 1)[0]
    assert out.shape == (64, 64, 3)
    np.testing.assert_array_equal(out, 77)
    same = _coded(32)
    out = _run(augment.batch_transform(32, augment.NONE), same, 1)[0]
    np.testing.assert_array_equal(out, same)


@pytest.mark.parametrize(
    "aug,text",
    [(augment.NONE, "none"),
     (augment.Augmentation(True, 4, True),
      "random crop (pad 4) + horizontal flip")],
)
def test_describe(aug, text):
    assert aug.describe() == text
