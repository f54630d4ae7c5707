"""Atomic writes: the final name holds the old or the new content, never half."""

import os

import pytest

from dim_keras import atomic


def test_write_text_replaces_the_whole_file(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")
    atomic.write_text(str(target), "new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["state.json"]


def test_atomic_save_leaves_no_partial_file_on_failure(tmp_path):
    target = tmp_path / "encoder.keras"
    target.write_text("old")

    def broken_save(path):
        with open(path, "w") as f:
            f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic.save(str(target), broken_save)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["encoder.keras"]


def test_a_failed_export_keeps_the_previous_one(tmp_path):
    out = tmp_path / "saved_model"
    out.mkdir()
    (out / "previous").write_text("kept")

    def fail_halfway(tmp):
        os.makedirs(tmp)
        with open(os.path.join(tmp, "half"), "w") as f:
            f.write("written")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_directory(str(out), fail_halfway, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["saved_model"]
    assert os.listdir(out) == ["previous"]

    atomic.write_directory(
        str(out), lambda tmp: os.makedirs(os.path.join(tmp, "new")),
        overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["saved_model"]
    assert os.listdir(out) == ["new"]


def test_an_existing_directory_needs_overwrite(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    with pytest.raises(ValueError, match="Received: out="):
        atomic.write_directory(str(out), os.makedirs, overwrite=False)
