"""Two augmented views of each image: shapes, seeding, and each transform
checked where its result is known in closed form."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from dim_keras.data import views  # noqa: E402
from dim_keras.data.pipeline import tf_data_pipeline  # noqa: E402

SEED = tf.constant([3, 7], tf.int64)


def _images(n=6, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.integers(0, 256, (n, size, size, 3)), tf.uint8)


def test_crop_boxes_lie_inside_the_image_with_the_asked_area():
    boxes = views.crop_boxes(tf.constant([500, 0]), SEED, (0.3, 1.0),
                             (0.7, 1.4)).numpy()
    assert boxes.shape == (500, 4)
    assert np.all(boxes >= 0) and np.all(boxes <= 1 + 1e-6)
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    area = height * width
    assert area.max() <= 1.0 + 1e-6
    # Unclipped boxes have exactly the drawn area, within the scale range.
    inside = (height < 1) & (width < 1)
    assert area[inside].min() >= 0.3 - 1e-5
    ratio = width[inside] / height[inside]
    assert ratio.min() >= 0.7 - 1e-4 and ratio.max() <= 1.4 + 1e-4


def test_full_crop_and_certain_flip_mirror_the_image():
    augmentation = views.ViewAugmentation(
        crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=1.0, jitter=0.0,
        grayscale=0.0)
    images = _images()
    out = views.view_transform(16, augmentation)(images, SEED).numpy()
    np.testing.assert_allclose(out, images.numpy()[:, :, ::-1].astype(float),
                               atol=1e-3)


def test_certain_greyscale_gives_equal_channels():
    augmentation = views.ViewAugmentation(grayscale=1.0)
    out = views.view_transform(16, augmentation)(_images(), SEED).numpy()
    np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-3)
    np.testing.assert_allclose(out[..., 1], out[..., 2], atol=1e-3)


def test_brightness_jitter_shifts_every_pixel_of_an_image_alike():
    augmentation = views.ViewAugmentation(
        crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=0.0, jitter=1.0,
        contrast=0.0, saturation=0.0, hue=0.0, grayscale=0.0)
    images = tf.fill((4, 8, 8, 3), tf.constant(128, tf.uint8))
    out = views.view_transform(8, augmentation)(images, SEED).numpy()
    per_image = out.reshape(4, -1)
    # A flat image stays flat; its level moves by at most 0.4 * 255.
    assert np.ptp(per_image, axis=1).max() < 1e-3
    assert np.abs(per_image[:, 0] - 128).max() <= 0.4 * 255 + 1e-3
    assert np.ptp(per_image[:, 0]) > 1.0  # images get their own factor


def test_two_views_differ_are_uint8_and_are_seeded():
    transform = views.two_views_transform(12)
    images = _images()
    first = transform(images, SEED).numpy()
    assert first.shape == (6, 2, 12, 12, 3) and first.dtype == np.uint8
    assert not np.array_equal(first[:, 0], first[:, 1])
    np.testing.assert_array_equal(first, transform(images, SEED).numpy())
    other = transform(images, tf.constant([4, 7], tf.int64)).numpy()
    assert not np.array_equal(first, other)


def test_pipeline_yields_batches_of_two_views():
    images = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3))
    dataset = tf_data_pipeline(images.astype("uint8"), 4, seed=0, views=2)
    batches = list(dataset.as_numpy_iterator())
    assert len(batches) == 2
    assert batches[0].shape == (4, 2, 32, 32, 3)
    assert batches[0].dtype == np.uint8


@pytest.mark.parametrize(
    "settings, match",
    [
        (dict(crop_scale=(0.0, 1.0)), "crop_scale"),
        (dict(crop_scale=(0.8, 0.5)), "crop_scale"),
        (dict(crop_ratio=(2.0, 1.0)), "crop_ratio"),
        (dict(flip=1.5), "Received: flip=1.5"),
        (dict(grayscale=-0.1), "Received: grayscale=-0.1"),
    ],
)
def test_bad_view_settings_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        views.ViewAugmentation(**settings)
