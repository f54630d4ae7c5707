"""TFDS-backed datasets: finding, preparing and streaming them.

A dataset is prepared (downloaded and converted) into the data directory on
first use. Without a network, the archive TFDS would download can be put in
the data directory by hand. When neither works the loader fails at once with
one line that says which file to get and where to put it, and removes what
the failed attempt created, so a second attempt starts clean.
"""

import os
import shutil
import socket
import urllib.parse


class DatasetUnavailable(RuntimeError):
    """A dataset's data is absent and cannot be fetched; says how to fix."""


def default_data_dir():
    """TFDS's data directory: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`."""
    return os.path.expanduser(
        os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
    )


def reachable(url, timeout=3.0):
    """Whether `url`'s host accepts a TCP connection within `timeout` s."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _entries(folder):
    if not os.path.isdir(folder):
        return set()
    return set(os.listdir(folder))


def prepare_clean(builder, data_dir, download_config=None):
    """`builder.download_and_prepare`, removing what a failure created.

    Entries of `data_dir` and `data_dir/downloads` that did not exist before
    the attempt are removed when it raises; existing data is never touched.

    Args:
        builder: a TFDS builder whose data directory is `data_dir`.
        data_dir: str.
        download_config: `tfds.download.DownloadConfig` or None.
    """
    downloads = os.path.join(data_dir, "downloads")
    existed = os.path.isdir(data_dir)
    before = _entries(data_dir)
    before_downloads = _entries(downloads)
    try:
        builder.download_and_prepare(download_config=download_config)
    except BaseException:
        for name in _entries(downloads) - before_downloads:
            _remove(os.path.join(downloads, name))
        for name in _entries(data_dir) - before:
            _remove(os.path.join(data_dir, name))
        if not existed:
            _remove(data_dir)
        raise


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def _prepare_or_explain(builder, data_dir, download_config, what, hint):
    """`prepare_clean`, turning a failed download into one clear line."""
    try:
        prepare_clean(builder, data_dir, download_config)
    except OSError as e:  # network errors (requests) are OSErrors too
        detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise DatasetUnavailable(
            f"Preparing {what} in {data_dir} failed ({detail}); {hint}"
        ) from None


def prepared_info(data_dir, tfds_name):
    """`(path, contents)` of a prepared dataset's `dataset_info.json`.

    Read from the files alone (no TensorFlow); None when not prepared.
    """
    import glob
    import json

    pattern = os.path.join(data_dir, tfds_name, "*", "dataset_info.json")
    for path in sorted(glob.glob(pattern), reverse=True):
        try:
            with open(path) as f:
                return path, json.load(f)
        except (OSError, ValueError):
            continue
    return None


def load_builder(name, data_dir, url, archive_name):
    """A prepared TFDS builder of a registered dataset.

    Args:
        name: TFDS name, e.g. `"cifar10"`.
        data_dir: str or None (TFDS's default).
        url: the archive TFDS downloads (named in the offline message).
        archive_name: its file name; a copy in `data_dir` is used offline.

    Returns:
        The builder, prepared.

    Raises:
        DatasetUnavailable: offline without the data or the archive.
    """
    import tensorflow_datasets as tfds

    data_dir = os.path.abspath(data_dir or default_data_dir())
    manual = os.path.join(data_dir, archive_name)
    hint = (
        f"download {archive_name} from {url} into {data_dir} (or into the "
        "folder you pass as --data-dir) and run again."
    )
    if (
        prepared_info(data_dir, name) is None
        and not os.path.exists(manual)
        and not reachable(url)
    ):
        raise DatasetUnavailable(
            f"{name} is not in {data_dir} and {url} cannot be reached: {hint}"
        )
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    _prepare_or_explain(
        builder,
        data_dir,
        tfds.download.DownloadConfig(manual_dir=data_dir),
        name,
        hint,
    )
    return builder


def tiny_imagenet_locations(data_dir):
    """`(tfds_data_dir, source_or_None)` for a `--data-dir` value.

    `data_dir` may be the zip, the extracted `tiny-imagenet-200/` folder, or
    a folder holding either; prepared data goes into the folder holding the
    zip or the extracted folder.
    """
    from dim_keras.data import tiny_imagenet_files as tiny_imagenet

    if data_dir is None:
        data_dir = default_data_dir()
    data_dir = os.path.abspath(os.path.expanduser(data_dir))
    source = tiny_imagenet.find_source(data_dir)
    if source is None:
        return data_dir, None
    if os.path.isfile(data_dir) or source == data_dir:
        return os.path.dirname(data_dir), source
    return data_dir, source


def load_tiny_imagenet(data_dir):
    """A prepared `TinyImagenet` builder (see `tiny_imagenet_locations`).

    Raises:
        DatasetUnavailable: offline without the archive.
    """
    from dim_keras.data import tiny_imagenet_files as files

    tfds_dir, source = tiny_imagenet_locations(data_dir)
    hint = (
        f"download {files.ARCHIVE_NAME} from {files.URL} into {tfds_dir}, "
        "or pass --data-dir FOLDER holding it (or the extracted "
        f"{files.FOLDER_NAME}/)."
    )
    if (
        source is None
        and prepared_info(tfds_dir, "tiny_imagenet") is None
        and not reachable(files.URL)
    ):
        raise DatasetUnavailable(
            f"tiny_imagenet is not in {tfds_dir} and {files.URL} cannot be "
            f"reached: {hint}"
        )
    import tensorflow_datasets as tfds

    from dim_keras.data import tiny_imagenet

    builder = tiny_imagenet.TinyImagenet(data_dir=tfds_dir, source=source)
    if builder.is_prepared():
        return builder
    downloads = os.path.join(tfds_dir, "downloads")
    before = _entries(downloads)
    _prepare_or_explain(
        builder,
        tfds_dir,
        tfds.download.DownloadConfig(
            compute_stats=tfds.download.ComputeStatsMode.SKIP
        ),
        "tiny_imagenet",
        hint,
    )
    # The extracted copy of a zip is not needed once the data is prepared.
    for name in _entries(downloads) - before:
        if name.endswith(".extracted"):
            _remove(os.path.join(downloads, name))
    return builder
