"""Tests of the CLI's dataset options and the `datasets` command."""

import json
import os

import pytest
from click.testing import CliRunner

from dim_keras.apps.cli import main
from dim_keras.data import tfds_data
from tests import tiny_imagenet_layout as layout
from tests.helpers import image_folder


def test_train_on_a_folder_with_no_augment_and_occlusion(tmp_path):
    image_folder(tmp_path / "imgs")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "train", "--dataset", f"folder:{tmp_path / 'imgs'}", "--epochs", "1",
        "--batch-size", "4", "--critic-units", "16", "--no-jit",
        "--no-augment", "--occlusion", "--no-evaluate", "--no-online-probe",
        "--knn-every", "0", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["augment"] is False and config["occlusion"] is True
    assert config["encoder"] == "basic32x32"
    assert (out / "encoder.keras").exists()


def test_train_offline_without_data_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_data, "reachable", lambda *a, **k: False)
    result = CliRunner().invoke(main, [
        "train", "--dataset", "tiny_imagenet", "--data-dir", str(tmp_path),
        "--out", str(tmp_path / "run"),
    ])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "tiny-imagenet-200.zip" in lines[0] and "--data-dir" in lines[0]
    assert sorted(os.listdir(tmp_path)) == []


def test_train_on_a_corrupt_folder_names_the_file(tmp_path):
    image_folder(tmp_path / "imgs", per_class=2)
    (tmp_path / "imgs" / "a" / "bad.png").write_bytes(b"\x89PNG broken")
    result = CliRunner().invoke(main, [
        "train", "--dataset", f"folder:{tmp_path / 'imgs'}",
        "--out", str(tmp_path / "run"),
    ])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "bad.png" in lines[0]


def test_unknown_dataset_is_one_line():
    result = CliRunner().invoke(main, ["train", "--dataset", "mnist"])
    assert result.exit_code == 2
    assert "Received: dataset='mnist'" in result.output


@pytest.mark.parametrize("where", ["dir", "zip"])
def test_datasets_lists_every_name_and_presence(tmp_path, where):
    zip_path = layout.make_zip(str(tmp_path / "tiny-imagenet-200.zip"))
    data_dir = str(tmp_path) if where == "dir" else zip_path
    result = CliRunner().invoke(main, ["datasets", "--data-dir", data_dir])
    assert result.exit_code == 0, result.output
    text = result.output
    for name in ("digits", "cifar10", "cifar100", "stl10", "tiny_imagenet",
                 "folder:PATH"):
        assert name in text
    lines = text.splitlines()
    # Three lines per dataset: what it is, where its data is, its recipe.
    state = {lines[i].split()[0]: lines[i + 1] for i in range(0, 15, 3)}
    recipe = {lines[i].split()[0]: lines[i + 2] for i in range(0, 15, 3)}
    assert "present" in state["digits"]
    assert "absent" in state["cifar10"] and "cifar-10-binary.tar.gz" in (
        state["cifar10"])
    assert "present" in state["tiny_imagenet"] and zip_path in (
        state["tiny_imagenet"])
    assert "64x64" in lines[12] and "200 classes" in lines[12]
    assert ("lr=0.001, lr_schedule=constant, augment=False, critic_units=512"
            in recipe["cifar10"])
    assert "encoder=basic64x64, views=2, lr=0.0005" in recipe["tiny_imagenet"]
    # The paper's single-view DIM is one named option away.
    assert "--recipe paper trains the paper's single-view DIM (views=1" in (
        text)
