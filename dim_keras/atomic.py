"""Atomic file writes: a file or directory is never seen half-written.

Each writer writes to a temporary name in the same directory, then renames
it over the final name (`os.replace`, atomic on POSIX file systems), so a
reader sees either the previous version or the new one, whatever happens in
between (a crash, a kill, a full disk).
"""

import os
import shutil


def write_text(path, text):
    """Writes `text` to `path` atomically.

    Args:
        path: str, the final file path.
        text: str, the whole content.
    """
    tmp = f"{path}.partial-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save(path, save_fn):
    """Calls `save_fn(tmp_path)` then renames the result to `path`.

    The temporary name keeps `path`'s suffix (Keras checks suffixes such as
    `.keras` and `.weights.h5`).

    Args:
        path: str, the final file path.
        save_fn: callable writing a file at the path it is given.
    """
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, f".partial-{os.getpid()}-{base}")
    try:
        save_fn(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_directory(out, write_fn, overwrite):
    """Calls `write_fn(tmp_dir)` and renames the result to `out`.

    An existing `out` is replaced only when `overwrite` is set, and is put
    back if the final rename fails.

    Args:
        out: str, the directory to create.
        write_fn: callable writing a directory at the path it is given.
        overwrite: bool, replace an existing `out`.

    Returns:
        The absolute path of `out`.

    Raises:
        ValueError: if `out` exists and `overwrite` is not set.
    """
    out = os.path.abspath(out)
    if os.path.exists(out) and not overwrite:
        raise ValueError(
            f"The output exists; pass --overwrite (overwrite=True) to replace "
            f"it. Received: out={out}"
        )
    parent, base = os.path.split(out)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".partial-{os.getpid()}-{base}")
    old = os.path.join(parent, f".old-{os.getpid()}-{base}")
    try:
        write_fn(tmp)
        replacing = os.path.exists(out)
        if replacing:
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except OSError:
            if replacing:
                os.replace(old, out)  # put the previous version back
            raise
        if replacing:
            _remove(old)
    finally:
        _remove(tmp)
    return out


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)
