"""Tests of safe archive extraction."""

import io
import os
import stat
import tarfile
import zipfile

import pytest

from dim_keras.data import archives


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return str(path)


def test_extracts_a_plain_zip(tmp_path):
    source = _zip(tmp_path / "a.zip", [("top/x.txt", "x"), ("top/d/y.txt", "y")])
    target = archives.safe_extract(source, str(tmp_path / "out"))
    assert open(os.path.join(target, "top", "d", "y.txt")).read() == "y"
    assert sorted(os.listdir(tmp_path)) == ["a.zip", "out"]


@pytest.mark.parametrize(
    "name", ["../evil.txt", "top/../../evil.txt", "/abs/evil.txt",
             "C:/evil.txt", "top\\..\\..\\evil.txt"],
)
def test_refuses_zip_slip_and_writes_nothing(tmp_path, name):
    source = _zip(tmp_path / "bad.zip", [("top/ok.txt", "ok"), (name, "evil")])
    target = tmp_path / "sub" / "out"
    with pytest.raises(archives.UnsafeArchiveError, match="outside"):
        archives.safe_extract(source, str(target))
    assert not target.exists()
    assert not (tmp_path / "evil.txt").exists()
    leftovers = [p for p in os.listdir(tmp_path / "sub")] if (
        tmp_path / "sub").exists() else []
    assert leftovers == []


def test_refuses_zip_symlink(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("top/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(archives.UnsafeArchiveError, match="link"):
        archives.safe_extract(str(path), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_refuses_tar_symlink_and_slip(tmp_path):
    for kind in ("link", "slip"):
        path = tmp_path / f"{kind}.tar"
        with tarfile.open(path, "w") as archive:
            if kind == "link":
                info = tarfile.TarInfo("top/link")
                info.type = tarfile.SYMTYPE
                info.linkname = "../../etc"
                archive.addfile(info)
            else:
                info = tarfile.TarInfo("../evil.txt")
                info.size = 4
                archive.addfile(info, io.BytesIO(b"evil"))
        with pytest.raises(archives.UnsafeArchiveError):
            archives.safe_extract(str(path), str(tmp_path / f"out-{kind}"))
        assert not (tmp_path / f"out-{kind}").exists()


def test_refuses_existing_target_and_non_archives(tmp_path):
    source = _zip(tmp_path / "a.zip", [("x.txt", "x")])
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError):
        archives.safe_extract(source, str(tmp_path / "out"))
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(ValueError, match="Not a zip or tar"):
        archives.check_archive(str(tmp_path / "plain.txt"))
