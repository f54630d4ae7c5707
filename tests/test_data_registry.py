"""Tests of the dataset registry: names, interfaces, TFDS datasets."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from dim_keras.data import DatasetError
from dim_keras.data import get_dataset
from dim_keras.data import registry
from dim_keras.data import tfds_data
from tests import tiny_imagenet_layout as layout


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setattr(tfds_data, "reachable", lambda *a, **k: True)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(tfds_data, "reachable", lambda *a, **k: False)


def test_digits_keeps_its_in_memory_interface():
    ds = get_dataset("digits")
    x, y = ds.arrays("test")
    assert ds.in_memory and ds.image_size == 32 and ds.num_classes == 10
    assert x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3)
    assert y.dtype == np.int64 and len(x) == len(y) == 360
    assert len(ds.training_images()) == ds.num_training_images == 1437
    assert ds.default_encoder == "basic32x32" and ds.default_epochs == 5
    assert not ds.augmentation.active


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="Received: dataset='imagenet'"):
        get_dataset("imagenet")
    with pytest.raises(ValueError, match="folder:PATH"):
        registry.check_name("folder:")
    registry.check_name("folder:some/where")


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_from_tfds(tmp_path, online, name, classes):
    with tfds.testing.mock_data(num_examples=12):
        ds = get_dataset(name, data_dir=str(tmp_path))
        assert not ds.in_memory
        assert ds.image_size == 32 and ds.num_classes == classes
        assert ds.default_encoder == "basic32x32"
        aug = ds.augmentation
        assert aug.random_crop and aug.crop_padding == 4 and aug.flip
        x, y = ds.arrays("test")
        assert x.shape == (12, 32, 32, 3) and x.dtype == np.uint8
        assert y.dtype == np.int64 and 0 <= y.min() and y.max() < classes
        images = list(ds.training_dataset().as_numpy_iterator())
        assert images[0].shape == (32, 32, 3) and images[0].dtype == np.uint8


def test_streamed_held_out_examples_are_the_ones_whose_labels_are_hidden(
    tmp_path, online
):
    with tfds.testing.mock_data(num_examples=200):
        ds = get_dataset("cifar10", data_dir=str(tmp_path))
        stream = list(ds.training_dataset(
            held_out_fraction=0.2).as_numpy_iterator())
        plain = list(ds.training_dataset(
            shuffle_files=False).as_numpy_iterator())
        images, labels, bank, bank_labels = ds.held_out_examples(
            0.2, limit=1000, bank_limit=1000)
        first, *_ = ds.held_out_examples(0.2, limit=5, bank_limit=0)
    assert len(stream) == len(plain) == 200
    hidden = [label for _, label in stream if label == -1]
    # Every held-out example read, and the others in the bank: the two
    # parts cover the split, and as many labels are hidden as held out.
    assert len(images) + len(bank) == 200
    assert len(hidden) == len(images) and 10 < len(images) < 70
    assert images.shape[1:] == (32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and bank_labels.dtype == np.int64
    np.testing.assert_array_equal(first, images[:5])  # the same each time
    with pytest.raises(ValueError, match="held_out_fraction=1.5"):
        ds.held_out_examples(1.5, 1, 1)


def test_stl10_trains_on_unlabelled_plus_train_and_evaluates_at_64(
    tmp_path, online
):
    with tfds.testing.mock_data(num_examples=6):
        ds = get_dataset("stl10", data_dir=str(tmp_path))
        assert ds.train_splits == ["unlabelled", "train"]
        assert ds.image_size == 64 and ds.source_size == 96
        assert ds.default_encoder == "alex64x64"
        first = next(ds.training_dataset().as_numpy_iterator())
        assert first.shape == (96, 96, 3)  # cropped by the pipeline
        x, y = ds.arrays("test")
        assert x.shape == (6, 64, 64, 3) and x.dtype == np.uint8
        assert set(ds.split_names) == {"train", "test"}


def test_offline_tfds_dataset_fails_at_once_in_one_line(tmp_path, offline):
    data_dir = tmp_path / "data"
    with pytest.raises(DatasetError) as info:
        get_dataset("cifar10", data_dir=str(data_dir))
    message = str(info.value)
    assert "\n" not in message
    assert "cifar-10-binary.tar.gz" in message and str(data_dir) in message
    assert "--data-dir" in message
    assert not data_dir.exists()


def test_offline_tiny_imagenet_fails_at_once_in_one_line(tmp_path, offline):
    with pytest.raises(DatasetError) as info:
        get_dataset("tiny_imagenet", data_dir=str(tmp_path))
    message = str(info.value)
    assert "\n" not in message
    assert "tiny-imagenet-200.zip" in message and "--data-dir" in message
    assert "http://cs231n.stanford.edu/tiny-imagenet-200.zip" in message
    assert os.listdir(tmp_path) == []


def test_tiny_imagenet_from_a_zip_in_data_dir(tmp_path, offline):
    layout.make_zip(str(tmp_path / "tiny-imagenet-200.zip"),
                    train_per_class=3, val_per_class=2)
    ds = get_dataset("tiny_imagenet", data_dir=str(tmp_path))
    assert ds.image_size == 64 and ds.num_classes == 3
    assert ds.num_training_images == 9 and ds.num_examples("test") == 6
    x, y = ds.arrays("test")
    assert x.shape == (6, 64, 64, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(np.sort(y), [0, 0, 1, 1, 2, 2])
    # Class k's images have grey level 40 * (k + 1) (see the layout).
    np.testing.assert_array_equal(
        np.round(x.mean(axis=(1, 2, 3)) / 40.0) - 1, y)
    # The extracted copy is removed once the data is prepared.
    downloads = tmp_path / "downloads"
    assert not downloads.exists() or not [
        p for p in os.listdir(downloads) if p.endswith(".extracted")
    ]
    # Prepared data is found again straight from the zip's path.
    again = get_dataset("tiny_imagenet",
                        data_dir=str(tmp_path / "tiny-imagenet-200.zip"))
    assert again.num_training_images == 9


def test_tiny_imagenet_corrupt_image_then_clean_second_attempt(
    tmp_path, offline
):
    base = layout.make_tree(str(tmp_path / "src"))
    broken = os.path.join(base, "train", "n01629819", "images",
                          "n01629819_1.JPEG")
    with open(broken, "wb") as f:
        f.write(b"\xff\xd8 truncated")
    with pytest.raises(DatasetError, match="n01629819_1.JPEG") as info:
        get_dataset("tiny_imagenet", data_dir=str(tmp_path / "src"))
    assert "\n" not in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["src"]
    assert sorted(os.listdir(tmp_path / "src")) == ["tiny-imagenet-200"]
    layout.make_tree(str(tmp_path / "src"))  # the user fixes the file
    ds = get_dataset("tiny_imagenet", data_dir=str(tmp_path / "src"))
    assert ds.num_training_images == 6
