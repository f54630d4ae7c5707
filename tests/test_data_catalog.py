"""Tests of dataset presence and locations as `dim-keras datasets` shows."""

import pytest

from dim_keras.data import catalog
from dim_keras.data import get_dataset
from dim_keras.data import tfds_data
from tests import tiny_imagenet_layout as layout


def test_prepared_tiny_imagenet_shows_its_real_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_data, "reachable", lambda *a, **k: False)
    state = catalog.status("tiny_imagenet", str(tmp_path))
    assert not state["present"] and str(tmp_path) in state["where"]
    assert state["splits"] == {"train": 100000, "test": 10000}
    layout.make_zip(str(tmp_path / "tiny-imagenet-200.zip"),
                    train_per_class=2, val_per_class=1)
    assert catalog.status("tiny_imagenet", str(tmp_path))["present"]
    get_dataset("tiny_imagenet", data_dir=str(tmp_path))
    state = catalog.status("tiny_imagenet", str(tmp_path))
    assert state["present"] and "prepared in" in state["where"]
    assert state["splits"] == {"train": 6, "test": 3}


@pytest.mark.parametrize("name,archive", [
    ("cifar10", "cifar-10-binary.tar.gz"),
    ("cifar100", "cifar-100-binary.tar.gz"),
    ("stl10", "stl10_binary.tar.gz"),
])
def test_tfds_archive_in_data_dir_counts_as_present(tmp_path, name, archive):
    assert not catalog.status(name, str(tmp_path))["present"]
    (tmp_path / archive).write_bytes(b"")
    state = catalog.status(name, str(tmp_path))
    assert state["present"] and archive in state["where"]


def test_every_name_is_described():
    text = "\n".join(catalog.describe_all("/nonexistent"))
    for name in ("digits", "cifar10", "cifar100", "stl10", "tiny_imagenet",
                 "folder:PATH"):
        assert name in text
    assert "unlabelled 100,000" in text


def test_the_speech_recipe_is_listed_for_librispeech_and_speech_folders(
        tmp_path):
    from dim_keras import recipes

    lines = catalog.describe_all(str(tmp_path))
    text = "\n".join(lines)
    expected = (f"chunk_seconds={recipes.SPEECH['chunk_seconds']}, "
                f"lr={recipes.SPEECH['lr']}, critic_units=512")
    assert f"recipe: {expected}" in text  # librispeech's own line
    assert f"speech: {expected}" in text  # folder:PATH's
    assert "batch_size=one pair per speaker (at most 64)" in text
    assert "chunk_seconds" not in recipes.describe(recipes.CIFAR_LIKE)
