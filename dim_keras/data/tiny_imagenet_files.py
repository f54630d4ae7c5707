"""Where Tiny ImageNet's official archive comes from and how it is found.

Kept apart from the TFDS builder so that finding the data needs no
TensorFlow.
"""

import os

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
ARCHIVE_NAME = "tiny-imagenet-200.zip"
FOLDER_NAME = "tiny-imagenet-200"


def find_source(path):
    """Finds the Tiny ImageNet data at or inside `path`.

    Args:
        path: str or path-like; the zip, the `tiny-imagenet-200/` folder,
            or a folder holding either of them.

    Returns:
        str path of the extracted folder (holding `wnids.txt`) or of the
        zip; None if neither is there.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "wnids.txt")):
            return path
        for candidate in (FOLDER_NAME, ARCHIVE_NAME):
            found = find_source(os.path.join(path, candidate))
            if found is not None:
                return found
        return None
    if os.path.isfile(path) and path.endswith(".zip"):
        return path
    return None
