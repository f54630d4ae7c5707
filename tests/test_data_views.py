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


def test_translation_copies_a_shifted_window_of_the_reflected_image():
    augmentation = views.ViewAugmentation(
        crop="translate", max_translation=3, translate_probability=1.0,
        flip=0.0, jitter=0.0, grayscale=0.0)
    images = _images(n=64, size=10)
    out = views.view_transform(10, augmentation)(images, SEED).numpy()
    padded = np.pad(images.numpy().astype(float),
                    [(0, 0), (3, 3), (3, 3), (0, 0)], mode="reflect")
    shifts = set()
    for k in range(len(out)):
        matches = [(dy, dx) for dy in range(7) for dx in range(7)
                   if np.allclose(out[k], padded[k, dy:dy + 10, dx:dx + 10],
                                  atol=1e-3)]
        assert matches, f"view {k} is no whole-pixel shift"
        shifts.add(matches[0])
    # Shifts are drawn along both axes, up to 3 pixels either way.
    assert len(shifts) > 15
    assert {dy for dy, _ in shifts} == set(range(7))


def test_translation_never_applied_keeps_the_image():
    augmentation = views.ViewAugmentation(
        crop="translate", translate_probability=0.0, flip=0.0, jitter=0.0,
        grayscale=0.0)
    images = _images()
    out = views.view_transform(16, augmentation)(images, SEED).numpy()
    np.testing.assert_allclose(out, images.numpy().astype(float), atol=1e-3)


def test_translation_wider_than_the_image_is_refused():
    augmentation = views.ViewAugmentation(crop="translate",
                                          max_translation=4)
    with pytest.raises(ValueError, match="max_translation=4, images of 4x4"):
        views.view_transform(4, augmentation)(_images(size=4), SEED)


def test_translation_boxes_are_shifts_by_whole_pixels():
    boxes = views.translation_boxes(tf.constant([400, 8, 12]), SEED, 2,
                                    0.5).numpy()
    # Padded image: 12 x 16; a box spans 8 x 12 pixels, whole-pixel starts.
    top, left = boxes[:, 0] * 11, boxes[:, 1] * 15
    np.testing.assert_allclose(top, np.round(top), atol=1e-4)
    np.testing.assert_allclose(left, np.round(left), atol=1e-4)
    np.testing.assert_allclose(boxes[:, 2] * 11 - top, 7, atol=1e-4)
    np.testing.assert_allclose(boxes[:, 3] * 15 - left, 11, atol=1e-4)
    assert set(np.round(top).astype(int)) == {0, 1, 2, 3, 4}
    centred = (np.round(top) == 2) & (np.round(left) == 2)
    # Half are not moved; a moved one lands at the centre 1 time in 25.
    assert 0.45 < centred.mean() < 0.6


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


@pytest.mark.parametrize("shared", [True, False])
def test_a_shared_flip_turns_both_views_alike(shared):
    # Nothing but the flip: each view is the image, mirrored or not.
    augmentation = views.ViewAugmentation(
        crop="translate", translate_probability=0.0, jitter=0.0,
        grayscale=0.0, flip=0.5, shared_flip=shared)
    images = _images(n=64, size=8)
    out = views.two_views_transform(8, augmentation)(images, SEED).numpy()
    mirrored = images.numpy()[:, :, ::-1]
    first_flipped = np.all(out[:, 0] == mirrored, axis=(1, 2, 3))
    second_flipped = np.all(out[:, 1] == mirrored, axis=(1, 2, 3))
    for view in (0, 1):
        flipped = np.all(out[:, view] == mirrored, axis=(1, 2, 3))
        kept = np.all(out[:, view] == images.numpy(), axis=(1, 2, 3))
        assert np.all(flipped ^ kept)
    assert 10 < first_flipped.sum() < 54  # p = 0.5 over 64 images
    # Shared: both views of every image face the same way. Independent:
    # about half of the 64 pairs disagree.
    disagree = np.sum(first_flipped != second_flipped)
    assert disagree == 0 if shared else disagree > 10


def test_amdim_translation_shares_its_flip_the_resized_crop_does_not():
    assert views.for_crop("translate").shared_flip
    assert not views.for_crop("resized").shared_flip
    assert "flip p=0.5 (shared by both views)" in views.for_crop(
        "translate").describe()
    assert "shared" not in views.for_crop("resized").describe()


def test_describe_names_the_crop():
    assert views.for_crop("translate").describe().startswith(
        "random translation (up to 4 px")
    assert views.for_crop("resized").describe().startswith(
        "random resized crop (area 0.3-1")


def test_pipeline_draws_views_with_the_asked_crop(monkeypatch):
    asked = []

    def for_crop(crop):
        asked.append(crop)
        return views.ViewAugmentation(crop=crop, translate_probability=1.0,
                                      flip=0.0, jitter=0.0, grayscale=0.0)

    monkeypatch.setattr(views, "for_crop", for_crop)
    images = np.random.default_rng(0).integers(0, 256, (8, 12, 12, 3))
    dataset = tf_data_pipeline(images.astype("uint8"), 8, seed=0, views=2,
                               view_crop="translate")
    batch = next(iter(dataset)).numpy()
    assert asked == ["translate"]
    assert batch.shape == (8, 2, 12, 12, 3)
    # Each view is a whole-pixel shift: its pixels are the image's own.
    padded = np.pad(images, [(0, 0), (4, 4), (4, 4), (0, 0)],
                    mode="reflect")
    view = batch[0, 0]
    assert any(
        np.array_equal(view, padded[k, dy:dy + 12, dx:dx + 12])
        for k in range(8) for dy in range(9) for dx in range(9)
    )


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
        (dict(crop="zoom"), "Received: crop='zoom'"),
        (dict(max_translation=-1), "Received: max_translation=-1"),
        (dict(max_translation=2.5), "Received: max_translation=2.5"),
        (dict(translate_probability=2.0),
         "Received: translate_probability=2.0"),
    ],
)
def test_bad_view_settings_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        views.ViewAugmentation(**settings)
