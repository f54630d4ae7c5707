"""A TFDS builder for Tiny ImageNet (the official `tiny-imagenet-200.zip`).

TFDS ships no Tiny ImageNet builder; importing this module registers
`tiny_imagenet`, so `tfds.builder("tiny_imagenet")` works once it is imported.

The official archive holds `tiny-imagenet-200/` with `wnids.txt` (the class
ids), `words.txt` (id -> names), `train/<wnid>/images/*.JPEG` (500 per class),
`val/images/*.JPEG` with `val/val_annotations.txt` (file, wnid, box) and an
unlabelled `test/`. Splits: `train` (100,000) and `validation` (10,000).
Counts other than the official ones (a subset, extra classes) are read as
they are. Every image is stored as a 3-channel 64x64 JPEG whatever its colour
mode or true format (the archive holds greyscale JPEGs, and a PNG saved
under a `.JPEG` name is read by its content, not its name).

The data comes from `source` (a zip, a folder holding the zip or the
extracted `tiny-imagenet-200/`, or that folder itself) when given, else it is
downloaded from the official address through TFDS's download manager. A zip
is extracted with `dim_keras.data.archives.safe_extract`.
"""

import io

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from dim_keras.data import archives
from dim_keras.data.tiny_imagenet_files import ARCHIVE_NAME
from dim_keras.data.tiny_imagenet_files import FOLDER_NAME
from dim_keras.data.tiny_imagenet_files import URL
from dim_keras.data.tiny_imagenet_files import find_source

IMAGE_SIZE = 64


def _extracted_root(source, extract_dir):
    """The folder holding `wnids.txt`, extracting `source` if it is a zip."""
    source = epath.Path(source)
    if source.is_dir():
        return source
    target = epath.Path(extract_dir) / f"{source.name}.extracted"
    if not target.exists():
        archives.safe_extract(str(source), str(target))
    root = find_source(target)
    if root is None or not epath.Path(root).is_dir():
        raise ValueError(
            f"{source} holds no tiny-imagenet-200/wnids.txt; is it the "
            f"official archive ({URL})?"
        )
    return root


def to_rgb64(data, path):
    """Decodes image bytes to what the builder stores.

    Args:
        data: bytes of a JPEG, PNG or any format Pillow reads.
        path: its path, named in errors.

    Returns:
        The bytes themselves for an RGB 64x64 JPEG, else a uint8
        `[64, 64, 3]` array (converted to RGB, resized if needed).

    Raises:
        ValueError: naming `path` when the file cannot be decoded.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if (
                image.format == "JPEG"
                and image.mode == "RGB"
                and image.size == (IMAGE_SIZE, IMAGE_SIZE)
            ):
                return data
            image = image.convert("RGB")
            if image.size != (IMAGE_SIZE, IMAGE_SIZE):
                image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"Cannot decode image {path}: {e}") from e


def read_class_names(root, wnids):
    """Class names of `wnids` from `words.txt` (the wnid when missing)."""
    words = {}
    words_path = root / "words.txt"
    if words_path.exists():
        for line in words_path.read_text().splitlines():
            wnid, _, names = line.partition("\t")
            words[wnid.strip()] = names.strip()
    return [words.get(wnid) or wnid for wnid in wnids]


def read_wnids(root):
    """Class ids in `wnids.txt` order."""
    lines = (root / "wnids.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip()]


class TinyImagenet(tfds.core.GeneratorBasedBuilder):
    """Tiny ImageNet: 200 classes of 64x64 images (CS231n)."""

    name = "tiny_imagenet"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Official tiny-imagenet-200.zip."}

    def __init__(self, *, source=None, **kwargs):
        """Args:
            source: str or None; the zip, the extracted folder or a folder
                holding one of them. None downloads the official zip.
            **kwargs: `tfds.core.GeneratorBasedBuilder` arguments.
        """
        self._source = source
        super().__init__(**kwargs)

    def _info(self):
        return self.dataset_info_from_configs(
            description=(
                "Tiny ImageNet: 64x64 images of 200 ImageNet classes, 500 "
                "training and 50 validation images per class."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(
                        shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                        encoding_format="jpeg",
                    ),
                    "label": tfds.features.ClassLabel(),
                    "id": tfds.features.Text(),
                }
            ),
            metadata=tfds.core.MetadataDict(),
            supervised_keys=("image", "label"),
            homepage="http://cs231n.stanford.edu/",
        )

    def _split_generators(self, dl_manager):
        if self._source is not None:
            source = find_source(self._source)
            if source is None:
                raise FileNotFoundError(
                    f"No {ARCHIVE_NAME} or {FOLDER_NAME}/ in {self._source}."
                )
        else:
            source = find_source(dl_manager.download(URL))
        root = epath.Path(_extracted_root(source, dl_manager.download_dir))
        wnids = read_wnids(root)
        self.info.features["label"].names = wnids
        self.info.metadata["class_names"] = read_class_names(root, wnids)
        return {
            "train": self._generate_examples(root, "train", set(wnids)),
            "validation": self._generate_examples(
                root, "validation", set(wnids)
            ),
        }

    def _generate_examples(self, root, split, wnids):
        """Yields `(file name, example)` of a split.

        Args:
            root: `epath.Path` of the `tiny-imagenet-200` folder.
            split: `"train"` or `"validation"`.
            wnids: set of the class ids to read (others are skipped).
        """
        if split == "train":
            yield from self._generate_train(root, wnids)
        else:
            yield from self._generate_validation(root, wnids)

    def _example(self, path, wnid):
        image = to_rgb64(path.read_bytes(), path)
        return path.name, {"image": image, "label": wnid, "id": path.stem}

    def _generate_train(self, root, wnids):
        train = root / "train"
        for class_dir in sorted(train.iterdir()):
            if class_dir.name not in wnids:
                continue
            images = class_dir / "images"
            for path in sorted(images.iterdir()):
                if path.is_file():
                    yield self._example(path, class_dir.name)

    def _generate_validation(self, root, wnids):
        val = root / "val"
        annotations = val / "val_annotations.txt"
        for line in annotations.read_text().splitlines():
            fields = line.split("\t")
            if len(fields) < 2 or fields[1].strip() not in wnids:
                continue
            yield self._example(val / "images" / fields[0].strip(),
                                fields[1].strip())
