"""Dataset names accepted by `--dataset`, and how each one is loaded.

Every dataset is an `ImageDataset`: images are uint8 `[H, W, 3]` with pixel
values 0-255 (the encoder scales them itself), labels are int64 class ids.
"""

import numpy as np


class ImageDataset:
    """A labelled image dataset held in memory.

    Args:
        name: str, the `--dataset` name.
        image_size: int, height and width of the images.
        num_classes: int or None when unlabelled.
        splits: dict of split name to `(images, labels)` numpy arrays;
            `images` uint8 `[N, H, W, 3]`, `labels` int64 `[N]`.
        default_encoder: str, encoder architecture suited to the size.
        default_epochs: int, epochs `dim-keras train` runs by default.
    """

    def __init__(
        self,
        name,
        image_size,
        num_classes,
        splits,
        default_encoder="basic32x32",
        default_epochs=100,
    ):
        self.name = name
        self.image_size = image_size
        self.num_classes = num_classes
        self.splits = splits
        self.default_encoder = default_encoder
        self.default_epochs = default_epochs

    def arrays(self, split):
        """Returns `(images, labels)` of a split as numpy arrays.

        Args:
            split: str, e.g. `"train"` or `"test"`.

        Returns:
            `(uint8 [N, H, W, 3], int64 [N])`.
        """
        if split not in self.splits:
            raise ValueError(
                f"Dataset {self.name!r} has splits {sorted(self.splits)}. "
                f"Received: split={split!r}"
            )
        return self.splits[split]

    def training_images(self):
        """Images used for unsupervised training (uint8 `[N, H, W, 3]`)."""
        return self.arrays("train")[0]


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
    )


DATASETS = {"digits": load_digits}


def get_dataset(name, data_dir=None):
    """Loads a dataset by its `--dataset` name.

    Args:
        name: str, a name of `DATASETS`.
        data_dir: str or None, where downloaded data lives.

    Returns:
        An `ImageDataset`.
    """
    if name not in DATASETS:
        raise ValueError(
            f"Unknown dataset; expected one of {', '.join(DATASETS)}. "
            f"Received: dataset={name!r}"
        )
    return DATASETS[name]()
