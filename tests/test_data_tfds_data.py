"""Tests of TFDS preparation: cleanup after failures, data locations."""

import os

import pytest

from dim_keras.data import tfds_data
from tests import tiny_imagenet_layout as layout


class _FailingBuilder:
    """Writes like a download, then fails like a lost connection."""

    def __init__(self, data_dir):
        self.data_dir = data_dir

    def download_and_prepare(self, download_config=None):
        downloads = os.path.join(self.data_dir, "downloads")
        os.makedirs(os.path.join(downloads, "x.tmp.123"), exist_ok=True)
        with open(os.path.join(downloads, "x.tmp.123", "part"), "w") as f:
            f.write("half")
        os.makedirs(os.path.join(self.data_dir, "cifar10", "3.0.2.incomplete"))
        raise ConnectionError("connection reset")


def test_failed_prepare_leaves_nothing_new_behind(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "mine.txt").write_text("keep")
    (data_dir / "downloads").mkdir()
    (data_dir / "downloads" / "old.zip").write_text("keep")
    with pytest.raises(ConnectionError):
        tfds_data.prepare_clean(_FailingBuilder(str(data_dir)), str(data_dir))
    assert sorted(os.listdir(data_dir)) == ["downloads", "mine.txt"]
    assert os.listdir(data_dir / "downloads") == ["old.zip"]


def test_failed_prepare_removes_a_data_dir_it_created(tmp_path):
    data_dir = tmp_path / "new"
    with pytest.raises(ConnectionError):
        tfds_data.prepare_clean(_FailingBuilder(str(data_dir)), str(data_dir))
    assert not data_dir.exists()


def test_network_error_becomes_one_line(tmp_path, monkeypatch):
    class Builder(_FailingBuilder):
        def download_and_prepare(self, download_config=None):
            raise OSError("Max retries exceeded\nwith url: /x.tar.gz")

    with pytest.raises(tfds_data.DatasetUnavailable) as info:
        tfds_data._prepare_or_explain(
            Builder(str(tmp_path)), str(tmp_path), None, "cifar10",
            "download x.tar.gz into D."
        )
    assert "\n" not in str(info.value) and "x.tar.gz into D" in str(info.value)


def test_tiny_imagenet_locations(tmp_path):
    zip_path = layout.make_zip(str(tmp_path / "tiny-imagenet-200.zip"))
    assert tfds_data.tiny_imagenet_locations(str(tmp_path)) == (
        str(tmp_path), zip_path)
    assert tfds_data.tiny_imagenet_locations(zip_path) == (
        str(tmp_path), zip_path)
    base = layout.make_tree(str(tmp_path / "tree"))
    assert tfds_data.tiny_imagenet_locations(base) == (
        str(tmp_path / "tree"), base)
    assert tfds_data.tiny_imagenet_locations(str(tmp_path / "tree")) == (
        str(tmp_path / "tree"), base)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert tfds_data.tiny_imagenet_locations(str(empty)) == (str(empty), None)


def test_reachable_is_false_for_a_closed_port():
    assert not tfds_data.reachable("http://127.0.0.1:9/x", timeout=1)
