"""Dataset names accepted by `--dataset`, and how each one is loaded.

Speech datasets (`librispeech`, and `folder:PATH` when PATH holds audio
files and no images) are `dim_keras.data.audio.AudioDataset`s. Every other
dataset is an `ImageDataset`: images are uint8 `[H, W, 3]` with pixel
values 0-255 (the encoder scales them itself), labels are int64 class ids
(-1 where unlabelled). Small datasets (`digits`, `folder:PATH`) are held in
memory as numpy arrays and need no TensorFlow; TFDS datasets (`cifar10`,
`cifar100`, `stl10`, `tiny_imagenet`) are streamed with `tf.data`
(`training_dataset()`, `labelled_dataset(split)`), and `arrays(split)`
materializes a split when numpy arrays are wanted.
"""

import dataclasses
import os

import numpy as np

from dim_keras import recipes
from dim_keras.data import augment
from dim_keras.data.image_dataset import DatasetError
from dim_keras.data.image_dataset import ImageDataset
from dim_keras.data.image_dataset import TFDSImageDataset


def _resize_to_rgb(images, size):
    """Bilinear resize of greyscale float images in [0, 1] to uint8 RGB."""
    from PIL import Image

    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray((image * 255.0).round().astype(np.uint8))
        resized = np.asarray(pil.resize((size, size), Image.BILINEAR))
        out[i] = resized[..., None]
    return out


def load_digits(test_fraction=0.2, seed=0):
    """scikit-learn's bundled 8x8 handwritten digits, as 32x32x3 uint8.

    1,797 images of 10 classes, shipped with scikit-learn (works offline).
    A fixed, seeded, stratified fraction is held out as the test split.

    Args:
        test_fraction: float, fraction held out as `"test"`.
        seed: int, seed of the split.

    Returns:
        An `ImageDataset` with splits `"train"` and `"test"`.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = _resize_to_rgb(digits.images / 16.0, 32)
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images,
        labels,
        test_size=test_fraction,
        random_state=seed,
        stratify=labels,
    )
    return ImageDataset(
        "digits",
        image_size=32,
        num_classes=10,
        splits={"train": (x_train, y_train), "test": (x_test, y_test)},
        default_encoder="basic32x32",
        default_epochs=5,
        default_settings=recipes.DIGITS,
    )


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What `dim-keras datasets` tells about a dataset, and how to load it.

    Args:
        name: the `--dataset` name.
        image_size: int or None (chosen from the images).
        splits: dict of split name to official count (None: varies).
        num_classes: int or None.
        augmentation: default training augmentation.
        source: where the data comes from, in words.
        loader: callable `(data_dir, image_size) -> ImageDataset`.
        recipe: dict, the training recipe its runs default to
            (`dim_keras.recipes`; empty: the reference's).
        modality: `"image"` (an `ImageDataset`) or `"audio"` (an
            `dim_keras.data.audio.AudioDataset`; `image_size` is None).
    """

    name: str
    image_size: int
    splits: dict
    num_classes: int
    augmentation: augment.Augmentation
    source: str
    loader: object
    recipe: dict = dataclasses.field(default_factory=dict)
    modality: str = "image"


_CIFAR_AUGMENT = augment.Augmentation(random_crop=True, crop_padding=4, flip=True)
_TINY_AUGMENT = augment.Augmentation(random_crop=True, crop_padding=8, flip=True)
_STL_AUGMENT = augment.Augmentation(random_crop=True, flip=True)

TFDS_ARCHIVES = {
    "cifar10": (
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "cifar-10-binary.tar.gz",
    ),
    "cifar100": (
        "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        "cifar-100-binary.tar.gz",
    ),
    "stl10": (
        "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
        "stl10_binary.tar.gz",
    ),
}


def _load_tfds(name, data_dir, **kwargs):
    from dim_keras.data import tfds_data

    url, archive = TFDS_ARCHIVES[name]
    try:
        builder = tfds_data.load_builder(name, data_dir, url, archive)
    except tfds_data.DatasetUnavailable as e:
        raise DatasetError(str(e)) from None
    return TFDSImageDataset(name, builder, **kwargs)


def load_cifar(name, data_dir=None, image_size=None):
    """CIFAR-10 or CIFAR-100 (TFDS), 32x32, crop (pad 4) + flip."""
    del image_size
    return _load_tfds(
        name,
        data_dir,
        image_size=32,
        source_size=32,
        train_splits=["train"],
        eval_splits={"train": "train", "test": "test"},
        default_encoder="basic32x32",
        default_epochs=100,
        augmentation=_CIFAR_AUGMENT,
        default_settings=recipes.CIFAR_LIKE,
    )


def load_stl10(data_dir=None, image_size=None):
    """STL-10 (TFDS): trained on `unlabelled` + `train` with random 64x64
    crops and flips of the 96x96 images; evaluated on images resized to 64.
    """
    del image_size
    return _load_tfds(
        "stl10",
        data_dir,
        image_size=64,
        source_size=96,
        train_splits=["unlabelled", "train"],
        eval_splits={"train": "train", "test": "test"},
        default_encoder="alex64x64",
        default_epochs=100,
        augmentation=_STL_AUGMENT,
        default_settings=recipes.SIXTY_FOUR,
    )


def load_tiny_imagenet(data_dir=None, image_size=None):
    """Tiny ImageNet (our TFDS builder), 64x64, 200 classes."""
    from dim_keras.data import tfds_data

    del image_size
    try:
        builder = tfds_data.load_tiny_imagenet(data_dir)
    except (tfds_data.DatasetUnavailable, ValueError) as e:
        # ValueError: an unsafe archive or an undecodable image (named).
        raise DatasetError(str(e).splitlines()[0]) from None
    return TFDSImageDataset(
        "tiny_imagenet",
        builder,
        image_size=64,
        source_size=64,
        train_splits=["train"],
        eval_splits={"train": "train", "test": "validation"},
        default_encoder="alex64x64",
        default_epochs=100,
        augmentation=_TINY_AUGMENT,
        default_settings=recipes.SIXTY_FOUR,
    )


def load_image_folder(path, data_dir=None, image_size=None):
    """`folder:PATH` (see `dim_keras.data.folder`)."""
    from dim_keras.data import folder

    del data_dir
    try:
        return folder.load_folder(os.path.expanduser(path), image_size)
    except folder.FolderError as e:
        raise DatasetError(str(e)) from None


def load_folder(path, data_dir=None, image_size=None):
    """`folder:PATH`: speech (`dim_keras.data.audio_folder`) when PATH holds
    audio files and no images, else images (`dim_keras.data.folder`)."""
    from dim_keras.data import audio_folder

    root = os.path.expanduser(path)
    if audio_folder.holds_audio(root):
        return audio_folder.load_audio_folder(root)
    return load_image_folder(path, data_dir, image_size)


def load_librispeech(data_dir=None, image_size=None):
    """LibriSpeech speakers (see `dim_keras.data.librispeech`)."""
    from dim_keras.data import librispeech

    del image_size
    return librispeech.load_librispeech(data_dir)


DATASETS = {
    "digits": DatasetSpec(
        "digits", 32, {"train": 1437, "test": 360}, 10, augment.NONE,
        "scikit-learn (bundled, offline)",
        lambda data_dir=None, image_size=None: load_digits(),
        recipes.DIGITS,
    ),
    "cifar10": DatasetSpec(
        "cifar10", 32, {"train": 50000, "test": 10000}, 10, _CIFAR_AUGMENT,
        "TFDS cifar10 (" + TFDS_ARCHIVES["cifar10"][0] + ")",
        lambda data_dir=None, image_size=None: load_cifar(
            "cifar10", data_dir),
        recipes.CIFAR_LIKE,
    ),
    "cifar100": DatasetSpec(
        "cifar100", 32, {"train": 50000, "test": 10000}, 100, _CIFAR_AUGMENT,
        "TFDS cifar100 (" + TFDS_ARCHIVES["cifar100"][0] + ")",
        lambda data_dir=None, image_size=None: load_cifar(
            "cifar100", data_dir),
        recipes.CIFAR_LIKE,
    ),
    "stl10": DatasetSpec(
        "stl10", 64,
        {"unlabelled": 100000, "train": 5000, "test": 8000}, 10, _STL_AUGMENT,
        "TFDS stl10 (" + TFDS_ARCHIVES["stl10"][0] + ")",
        load_stl10,
        recipes.SIXTY_FOUR,
    ),
    "tiny_imagenet": DatasetSpec(
        "tiny_imagenet", 64, {"train": 100000, "test": 10000}, 200,
        _TINY_AUGMENT,
        "tiny-imagenet-200.zip (http://cs231n.stanford.edu/"
        "tiny-imagenet-200.zip), validation used as test",
        load_tiny_imagenet,
        recipes.SIXTY_FOUR,
    ),
    "librispeech": DatasetSpec(
        "librispeech", None, {"train": None, "test": None}, None,
        augment.NONE,
        "OpenSLR LibriSpeech (https://www.openslr.org/12): train-clean-100, "
        "dev-clean, test-clean found in --data-dir (or prepared by TFDS), "
        "else dev-clean downloaded",
        load_librispeech,
        modality="audio",
    ),
}

FOLDER_PREFIX = "folder:"


def is_known(name):
    """Whether `name` is a `DATASETS` name or `folder:PATH`."""
    return name in DATASETS or (
        name.startswith(FOLDER_PREFIX) and len(name) > len(FOLDER_PREFIX)
    )


def check_name(name):
    """Raises `ValueError` unless `name` is a known dataset name."""
    if not is_known(name):
        raise ValueError(
            "Unknown dataset; expected one of "
            f"{', '.join(DATASETS)} or folder:PATH. Received: dataset={name!r}"
        )


def dataset_modality(name):
    """`"audio"` or `"image"`: what a dataset name holds, without loading it.

    Args:
        name: str, a name of `DATASETS` or `folder:PATH` (a folder of audio
            files and no images is speech).

    Returns:
        str.

    Raises:
        ValueError: for an unknown name.
    """
    check_name(name)
    if name.startswith(FOLDER_PREFIX):
        from dim_keras.data import audio_folder

        root = os.path.expanduser(name[len(FOLDER_PREFIX):])
        return "audio" if audio_folder.holds_audio(root) else "image"
    return DATASETS[name].modality


def get_dataset(name, data_dir=None, image_size=None):
    """Loads a dataset by its `--dataset` name.

    Args:
        name: str, a name of `DATASETS` or `folder:PATH`.
        data_dir: str or None, where downloaded data lives (TFDS's default
            data directory when None).
        image_size: int or None; the encoder's input size for `folder:`
            datasets (None: chosen from the images). Other datasets have
            their own size.

    Returns:
        An `ImageDataset`, or an `AudioDataset` for speech (its
        `modality` says which).

    Raises:
        ValueError: for an unknown name.
        DatasetError: when the data is absent and cannot be fetched, or a
            file cannot be read; its one-line message says what to do.
    """
    check_name(name)
    if name.startswith(FOLDER_PREFIX):
        return load_folder(name[len(FOLDER_PREFIX):], data_dir, image_size)
    return DATASETS[name].loader(data_dir=data_dir, image_size=image_size)
