"""Builds small Tiny ImageNet trees and zips in the official layout."""

import os
import zipfile

import numpy as np
from PIL import Image


def _save(path, pixels, fmt="JPEG", mode="RGB"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(pixels)
    if mode == "L":
        image = image.convert("L")
    image.save(path, format=fmt)


def make_tree(root, wnids=("n01443537", "n01629819", "n01641577"),
              train_per_class=2, val_per_class=1, seed=0):
    """Writes `root/tiny-imagenet-200/` in the official layout.

    Class k's images are filled with the flat colour `40 * (k + 1)` (plus
    small noise), so a test can tell labels from pixels. The first class's
    first training image is a greyscale JPEG, the second class's first
    training image is a PNG saved under a `.JPEG` name.

    Returns:
        Path of the `tiny-imagenet-200` folder.
    """
    rng = np.random.default_rng(seed)
    base = os.path.join(root, "tiny-imagenet-200")
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, "wnids.txt"), "w") as f:
        f.write("".join(f"{w}\n" for w in wnids))
    with open(os.path.join(base, "words.txt"), "w") as f:
        for k, w in enumerate(wnids):
            f.write(f"{w}\tthing {k}, object {k}\n")
        f.write("n99999999\tunused class\n")

    def pixels(k):
        noise = rng.integers(-3, 4, size=(64, 64, 3))
        return np.clip(40 * (k + 1) + noise, 0, 255).astype(np.uint8)

    for k, w in enumerate(wnids):
        folder = os.path.join(base, "train", w, "images")
        boxes = []
        for i in range(train_per_class):
            name = f"{w}_{i}.JPEG"
            if k == 0 and i == 0:
                _save(os.path.join(folder, name), pixels(k), mode="L")
            elif k == 1 and i == 0:
                _save(os.path.join(folder, name), pixels(k), fmt="PNG")
            else:
                _save(os.path.join(folder, name), pixels(k))
            boxes.append(f"{name}\t0\t0\t63\t63\n")
        with open(os.path.join(base, "train", w, f"{w}_boxes.txt"), "w") as f:
            f.writelines(boxes)
    lines = []
    n = 0
    for k, w in enumerate(wnids):
        for _ in range(val_per_class):
            name = f"val_{n}.JPEG"
            _save(os.path.join(base, "val", "images", name), pixels(k))
            lines.append(f"{name}\t{w}\t0\t0\t63\t63\n")
            n += 1
    with open(os.path.join(base, "val", "val_annotations.txt"), "w") as f:
        f.writelines(lines)
    _save(os.path.join(base, "test", "images", "test_0.JPEG"), pixels(0))
    return base


def make_zip(zip_path, **kwargs):
    """Zips a `make_tree` tree as `tiny-imagenet-200/...` entries."""
    tree_root = zip_path + ".tree"
    base = make_tree(tree_root, **kwargs)
    with zipfile.ZipFile(zip_path, "w") as archive:
        for folder, _, files in os.walk(base):
            for name in files:
                path = os.path.join(folder, name)
                archive.write(path, os.path.relpath(path, tree_root))
    return zip_path
