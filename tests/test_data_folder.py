"""Tests of `folder:PATH` datasets."""

import os

import numpy as np
import pytest
from PIL import Image

from dim_keras.data import DatasetError
from dim_keras.data import folder
from dim_keras.data import get_dataset


def _image(path, colour, size=(40, 30), mode="RGB", fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.new("RGB", size, colour)
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, format=fmt)


def _classes(root, per_class=5):
    colours = {"cat": (200, 30, 30), "dog": (30, 200, 30)}
    for name, colour in colours.items():
        for i in range(per_class):
            ext = [".png", ".jpg", ".bmp", ".gif", ".tiff"][i % 5]
            mode = ["RGB", "L", "RGBA", "P", "RGB"][i % 5]
            _image(os.path.join(root, name, f"{i}{ext}"), colour, mode=mode)
    return colours


def test_labelled_folder_with_held_out_fraction(tmp_path):
    _classes(str(tmp_path), per_class=10)
    ds = get_dataset(f"folder:{tmp_path}")
    assert ds.in_memory and ds.num_classes == 2
    assert ds.class_names == ["cat", "dog"]
    assert ds.image_size == 32 and ds.default_encoder == "basic32x32"
    x_train, y_train = ds.arrays("train")
    x_test, y_test = ds.arrays("test")
    assert len(x_train) == 16 and len(x_test) == 4  # 20% held out
    assert x_train.shape[1:] == (32, 32, 3) and x_train.dtype == np.uint8
    # Labels follow the folders: cats are red, dogs are green, whatever the
    # file's format or colour mode (greyscale ones are equal channels).
    for x, y in ((x_train, y_train), (x_test, y_test)):
        for image, label in zip(x, y):
            r, g, b = image.reshape(-1, 3).mean(axis=0)
            if abs(r - g) < 2:  # was saved greyscale
                continue
            assert label == (0 if r > g else 1)
    again = get_dataset(f"folder:{tmp_path}")  # the split is seeded
    np.testing.assert_array_equal(again.arrays("test")[0], x_test)


def test_train_and_val_folders_are_the_splits(tmp_path):
    _classes(str(tmp_path / "train"), per_class=3)
    _classes(str(tmp_path / "val"), per_class=2)
    ds = get_dataset(f"folder:{tmp_path}", image_size=64)
    assert ds.image_size == 64 and ds.default_encoder == "alex64x64"
    assert ds.num_examples("train") == 6 and ds.num_examples("test") == 4
    assert ds.arrays("test")[0].shape == (4, 64, 64, 3)


def test_unlabelled_folder_and_size_from_images(tmp_path):
    for i in range(5):
        _image(str(tmp_path / f"img{i}.png"), (i * 40, 0, 0), size=(100, 80))
    ds = get_dataset(f"folder:{tmp_path}")
    assert ds.num_classes is None
    assert ds.image_size == 64  # typical side 80 >= 64
    assert set(ds.arrays("train")[1]) == {-1}
    assert ds.num_examples("train") + ds.num_examples("test") == 5


def test_corrupt_file_is_reported_by_path(tmp_path):
    _classes(str(tmp_path), per_class=3)
    bad = tmp_path / "dog" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(DatasetError) as info:
        get_dataset(f"folder:{tmp_path}")
    message = str(info.value)
    assert str(bad) in message and "\n" not in message


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DatasetError, match="No such folder"):
        get_dataset(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="No images"):
        get_dataset(f"folder:{tmp_path}")


def test_scan_ignores_hidden_and_non_images(tmp_path):
    _image(str(tmp_path / "a" / "x.png"), (1, 2, 3))
    _image(str(tmp_path / "a" / "sub" / "y.JPG"), (1, 2, 3), fmt="JPEG")
    (tmp_path / "a" / "readme.md").write_text("x")
    (tmp_path / ".cache").mkdir()
    paths, names, classes = folder.scan(str(tmp_path))
    assert classes == ["a"] and names == ["a", "a"]
    assert [os.path.basename(p) for p in paths] == ["x.png", "y.JPG"]
