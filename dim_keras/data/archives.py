"""Safe extraction of downloaded archives.

An archive entry whose path would land outside the target folder (`../`
parts, absolute paths, drive letters) or that is a link of any kind is
refused before anything is written. Extraction goes to a temporary folder
beside the target that is renamed into place at the end, so an interrupted
or refused extraction never leaves a half-extracted target behind.
"""

import os
import shutil
import stat
import tarfile
import uuid
import zipfile


class UnsafeArchiveError(ValueError):
    """An archive entry would be written outside the target folder."""


def _check_member_name(archive, name):
    """Refuses a member name that is absolute or escapes the target."""
    normalized = name.replace("\\", "/")
    if (
        normalized.startswith("/")
        or (len(normalized) > 1 and normalized[1] == ":")
        or ".." in normalized.split("/")
    ):
        raise UnsafeArchiveError(
            f"Refusing to extract {archive}: entry {name!r} would be written "
            "outside the target folder."
        )


def _zip_is_link(info):
    mode = info.external_attr >> 16
    return stat.S_ISLNK(mode)


def check_archive(path):
    """Checks every entry of a zip or tar archive without extracting.

    Args:
        path: str, a `.zip` or tar (optionally compressed) archive.

    Returns:
        List of the member names.

    Raises:
        UnsafeArchiveError: on an entry escaping the target or a link.
        ValueError: if `path` is not a zip or tar archive.
    """
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            for info in infos:
                _check_member_name(path, info.filename)
                if _zip_is_link(info):
                    raise UnsafeArchiveError(
                        f"Refusing to extract {path}: entry "
                        f"{info.filename!r} is a symbolic link."
                    )
            return [info.filename for info in infos]
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            members = archive.getmembers()
            for member in members:
                _check_member_name(path, member.name)
                if not (member.isfile() or member.isdir()):
                    raise UnsafeArchiveError(
                        f"Refusing to extract {path}: entry {member.name!r} "
                        "is a link or a special file."
                    )
            return [member.name for member in members]
    raise ValueError(
        f"Not a zip or tar archive. Received: path={path!r}"
    )


def safe_extract(path, target):
    """Extracts an archive into `target`, refusing unsafe entries.

    Every entry is checked before anything is written; files are written
    to a temporary sibling folder that is renamed to `target` at the end.

    Args:
        path: str, a zip or tar archive.
        target: str, folder to create; must not exist yet.

    Returns:
        `target`.

    Raises:
        UnsafeArchiveError: on an entry escaping the target or a link.
        FileExistsError: if `target` exists.
    """
    if os.path.exists(target):
        raise FileExistsError(
            f"Extraction target exists already. Received: target={target!r}"
        )
    check_archive(path)
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(
        parent, f".partial-{uuid.uuid4().hex[:8]}-{os.path.basename(target)}"
    )
    os.makedirs(tmp)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                archive.extractall(tmp)
        else:
            with tarfile.open(path) as archive:
                archive.extractall(tmp, filter="data")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return target
