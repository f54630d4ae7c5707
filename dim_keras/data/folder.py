"""`folder:PATH` datasets: the user's own images, one sub-folder per class.

Layouts read:

- `PATH/<class>/**/<image>`: labelled, classes in sorted folder-name order;
- `PATH/<image>` only: unlabelled (labels are -1);
- `PATH/train/...` with `PATH/test/...` (or `PATH/val/...`): those folders
  are the splits (each in one of the layouts above); otherwise a fixed,
  seeded fraction of the images is held out as `test`.

Images of any format Pillow reads (JPEG, PNG, BMP, GIF, TIFF, WebP, ...),
any size and colour mode are decoded up front, in parallel, to RGB uint8
resized to the encoder's input size, so a broken file is reported by its path
before training starts, never in the middle of an epoch.
"""

import concurrent.futures
import os

import numpy as np

IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp",
    ".ppm", ".pgm", ".pbm",
)
TEST_FOLDERS = ("test", "val", "validation")


class FolderError(ValueError):
    """An image folder that cannot be read; the message says which file."""


def _is_image(name):
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _files_under(folder):
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(parent, f) for f in sorted(files) if _is_image(f)]
    return found


def scan(folder):
    """Lists the images of one split folder with their class names.

    Args:
        folder: str.

    Returns:
        `(paths, class_of_path, classes)`: class names sorted, or `[]` when
        images lie directly in `folder` (unlabelled).
    """
    entries = sorted(os.listdir(folder))
    classes = [
        e for e in entries
        if not e.startswith(".") and os.path.isdir(os.path.join(folder, e))
    ]
    loose = [e for e in entries if _is_image(e)]
    if loose or not classes:
        paths = _files_under(folder)
        return paths, [None] * len(paths), []
    paths, names = [], []
    for name in classes:
        files = _files_under(os.path.join(folder, name))
        paths += files
        names += [name] * len(files)
    return paths, names, [c for c in classes if c in set(names)]


def decode(path, image_size):
    """Decodes one image file to RGB uint8 `[image_size, image_size, 3]`.

    Raises:
        FolderError: naming `path` when the file cannot be decoded.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.seek(0)
            image = image.convert("RGB")
            if image.size != (image_size, image_size):
                image = image.resize((image_size, image_size), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as e:
        raise FolderError(
            f"Cannot read image {path} ({type(e).__name__}: {e}); "
            "fix or remove it."
        ) from None


def decode_all(paths, image_size, workers=None,
               description="Decoding images"):
    """Decodes `paths` in parallel threads (Pillow releases the GIL).

    A progress line with an ETA shows on a terminal (nothing elsewhere).
    """
    from dim_keras.progress import Progress

    out = np.empty((len(paths), image_size, image_size, 3), dtype=np.uint8)
    workers = workers or min(8, (os.cpu_count() or 1) + 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool, Progress(
            description, len(paths), "images", log=False) as progress:
        for i, image in enumerate(
            pool.map(lambda p: decode(p, image_size), paths)
        ):
            out[i] = image
            progress.update(i + 1)
    return out


def typical_size(paths, sample=32):
    """Median of the shorter sides of up to `sample` images (header only)."""
    from PIL import Image

    sides = []
    for path in paths[:: max(1, len(paths) // sample)][:sample]:
        try:
            with Image.open(path) as image:
                sides.append(min(image.size))
        except (OSError, SyntaxError, ValueError):
            continue
    return int(np.median(sides)) if sides else 0


def split_layout(root):
    """`(train_folder, test_folder_or_None)` of a dataset folder."""
    train = os.path.join(root, "train")
    if os.path.isdir(train):
        for name in TEST_FOLDERS:
            test = os.path.join(root, name)
            if os.path.isdir(test):
                return train, test
    return root, None


def load_folder(root, image_size=None, test_fraction=0.2, seed=0):
    """Loads `folder:PATH` as an in-memory `ImageDataset`.

    Args:
        root: str, the dataset folder.
        image_size: int or None; None picks 64 when the images' typical
            shorter side is at least 64, else 32.
        test_fraction: float, held out as `test` when there is no
            train/test layout.
        seed: int, seed of that hold-out.

    Returns:
        An `ImageDataset` with splits `train` and `test`.

    Raises:
        FolderError: for a missing or empty folder or an unreadable image.
    """
    from dim_keras import recipes
    from dim_keras.data import augment
    from dim_keras.data.image_dataset import ImageDataset

    if not os.path.isdir(root):
        raise FolderError(f"No such folder. Received: dataset=folder:{root}")
    train_dir, test_dir = split_layout(root)
    paths, names, classes = scan(train_dir)
    if test_dir is not None:
        test_paths, test_names, test_classes = scan(test_dir)
        if test_classes and classes and set(test_classes) - set(classes):
            raise FolderError(
                f"{test_dir} has classes missing from {train_dir}: "
                f"{sorted(set(test_classes) - set(classes))}"
            )
    if not paths:
        raise FolderError(
            f"No images ({', '.join(IMAGE_EXTENSIONS)}) found in {train_dir}."
        )
    if image_size is None:
        image_size = 64 if typical_size(paths) >= 64 else 32
    index = {c: k for k, c in enumerate(classes)}

    def labels_of(names_):
        return np.array(
            [index[n] if n is not None else -1 for n in names_], dtype=np.int64
        )

    images = decode_all(paths, image_size,
                        description=f"Decoding {train_dir} (train)")
    labels = labels_of(names)
    if test_dir is not None:
        splits = {
            "train": (images, labels),
            "test": (decode_all(test_paths, image_size,
                                description=f"Decoding {test_dir} (test)"),
                     labels_of(test_names)),
        }
    else:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(paths))
        n_test = int(round(test_fraction * len(paths)))
        test_idx, train_idx = np.sort(order[:n_test]), np.sort(order[n_test:])
        splits = {
            "train": (images[train_idx], labels[train_idx]),
            "test": (images[test_idx], labels[test_idx]),
        }
    encoder = "alex64x64" if image_size >= 64 else "basic32x32"
    return ImageDataset(
        f"folder:{root}",
        image_size=image_size,
        num_classes=len(classes) or None,
        splits=splits,
        default_encoder=encoder,
        default_epochs=20,
        augmentation=augment.Augmentation(
            random_crop=True, crop_padding=image_size // 8, flip=True
        ),
        class_names=classes or None,
        default_settings=(recipes.CIFAR_LIKE if image_size == 32
                          else recipes.SIXTY_FOUR if image_size >= 64
                          else None),
    )
