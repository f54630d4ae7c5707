"""Tests of the Tiny ImageNet builder on archives in the official layout."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from dim_keras.data import tiny_imagenet
from tests import tiny_imagenet_layout as layout

FAKE_EXAMPLES = os.path.join(
    os.path.dirname(__file__), "fake_examples", "tiny_imagenet"
)


class TinyImagenetHarnessTest(tfds.testing.DatasetBuilderTestCase):
    """TFDS's own builder test harness on fake examples."""

    DATASET_CLASS = tiny_imagenet.TinyImagenet
    EXAMPLE_DIR = FAKE_EXAMPLES
    SPLITS = {"train": 6, "validation": 3}
    DL_DOWNLOAD_RESULT = ""
    SKIP_CHECKSUMS = True  # the official zip has no published checksum


def _prepare(tmp_path, source, **kwargs):
    builder = tiny_imagenet.TinyImagenet(
        data_dir=str(tmp_path / "tfds"), source=str(source), **kwargs
    )
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            compute_stats=tfds.download.ComputeStatsMode.SKIP
        )
    )
    return builder


def _arrays(builder, split):
    data = tfds.as_numpy(
        builder.as_dataset(split=split, batch_size=-1, as_supervised=True)
    )
    return data


def test_zip_labels_shapes_dtype_and_sizes(tmp_path):
    zip_path = layout.make_zip(
        str(tmp_path / "tiny-imagenet-200.zip"), train_per_class=3,
        val_per_class=2,
    )
    builder = _prepare(tmp_path, zip_path)
    assert builder.info.splits["train"].num_examples == 9
    assert builder.info.splits["validation"].num_examples == 6
    wnids = ["n01443537", "n01629819", "n01641577"]
    assert builder.info.features["label"].names == wnids
    assert builder.info.metadata["class_names"] == [
        "thing 0, object 0", "thing 1, object 1", "thing 2, object 2"
    ]
    for split in ("train", "validation"):
        images, labels = _arrays(builder, split)
        assert images.dtype == np.uint8 and images.shape[1:] == (64, 64, 3)
        # Class k was drawn with flat grey level 40 * (k + 1): the label of
        # every image must match its pixels (greyscale and PNG included).
        expected = np.round(images.mean(axis=(1, 2, 3)) / 40.0) - 1
        np.testing.assert_array_equal(labels, expected.astype(np.int64))
        # Greyscale-origin images are 3 equal channels, not 1 channel.
        assert images.shape[-1] == 3


def test_extracted_folder_and_parent_folder(tmp_path):
    base = layout.make_tree(str(tmp_path / "src"), train_per_class=1)
    assert tiny_imagenet.find_source(base) == tiny_imagenet.find_source(
        tmp_path / "src"
    )
    builder = _prepare(tmp_path, tmp_path / "src")
    assert builder.info.splits["train"].num_examples == 3
    assert builder.info.splits["validation"].num_examples == 3


def test_subset_of_classes_is_read_as_is(tmp_path):
    layout.make_zip(
        str(tmp_path / "tiny-imagenet-200.zip"),
        wnids=("n01443537", "n01629819"), train_per_class=2,
    )
    builder = _prepare(tmp_path, tmp_path)
    assert builder.info.features["label"].num_classes == 2
    assert builder.info.splits["train"].num_examples == 4


def test_png_named_jpeg_and_greyscale_decode_to_rgb():
    from PIL import Image
    import io

    grey = io.BytesIO()
    Image.new("L", (64, 64), 90).save(grey, format="JPEG")
    out = tiny_imagenet.to_rgb64(grey.getvalue(), "grey.JPEG")
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert abs(int(out[0, 0, 0]) - 90) <= 2
    png = io.BytesIO()
    Image.new("RGB", (32, 48), (10, 20, 30)).save(png, format="PNG")
    out = tiny_imagenet.to_rgb64(png.getvalue(), "png.JPEG")
    assert out.shape == (64, 64, 3)
    np.testing.assert_array_equal(out[10, 10], [10, 20, 30])


def test_corrupt_image_names_its_path():
    with pytest.raises(ValueError, match="broken.JPEG"):
        tiny_imagenet.to_rgb64(b"not an image", "train/x/broken.JPEG")


def test_find_source_none_when_absent(tmp_path):
    assert tiny_imagenet.find_source(tmp_path) is None  # empty folder
    assert tiny_imagenet.find_source(tmp_path / "missing") is None


def test_zip_slip_in_archive_is_refused(tmp_path):
    import zipfile

    from dim_keras.data import archives

    zip_path = layout.make_zip(str(tmp_path / "tiny-imagenet-200.zip"))
    with zipfile.ZipFile(zip_path, "a") as archive:
        archive.writestr("../../escaped.txt", "evil")
    with pytest.raises(archives.UnsafeArchiveError, match="outside"):
        _prepare(tmp_path, zip_path)
    assert not list(tmp_path.rglob("escaped.txt"))
