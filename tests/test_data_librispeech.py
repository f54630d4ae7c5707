"""Tests of LibriSpeech loading on tiny archives in the official layout."""

import io
import os
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
import soundfile

from dim_keras.data import catalog
from dim_keras.data import get_dataset
from dim_keras.data import librispeech
from dim_keras.data import tfds_data
from dim_keras.data.image_dataset import DatasetError

SPEAKERS = {"dev-clean": (84, 174, 251), "test-clean": (61, 121)}


def _flac(frequency, seconds):
    t = np.arange(int(seconds * 16000)) / 16000
    buffer = io.BytesIO()
    soundfile.write(buffer, 0.3 * np.sin(2 * np.pi * frequency * t), 16000,
                    format="FLAC")
    return buffer.getvalue()


def _add(archive, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def make_archive(path, subset="dev-clean", per_speaker=3, seconds=0.3):
    """`<subset>.tar.gz` as OpenSLR ships it, with synthetic tones."""
    with tarfile.open(path, "w:gz") as archive:
        _add(archive, "LibriSpeech/SPEAKERS.TXT", b"; ID | SEX | SUBSET\n")
        for speaker in SPEAKERS[subset]:
            chapter = 1000 + speaker
            folder = f"LibriSpeech/{subset}/{speaker}/{chapter}"
            lines = []
            for u in range(per_speaker):
                key = f"{speaker}-{chapter}-{u:04d}"
                _add(archive, f"{folder}/{key}.flac",
                     _flac(100 + speaker + 7 * u, seconds))
                lines.append(f"{key} SOME WORDS")
            _add(archive, f"{folder}/{speaker}-{chapter}.trans.txt",
                 ("\n".join(lines) + "\n").encode())
    return str(path)


def test_archive_in_data_dir_is_extracted_once_and_read(tmp_path):
    make_archive(tmp_path / "dev-clean.tar.gz")
    data = librispeech.load_librispeech(str(tmp_path), chunk_seconds=0.25)
    assert data.name == "librispeech" and data.modality == "audio"
    assert data.class_names == ["174", "251", "84"]
    assert data.num_examples("train") == 6 and data.num_examples("test") == 3
    assert sorted(data.splits["test"][1].tolist()) == [0, 1, 2]
    extracted = tmp_path / "dev-clean.tar.gz.extracted"
    assert (extracted / "LibriSpeech" / "dev-clean" / "84").is_dir()
    assert librispeech.status(str(tmp_path))["present"]
    os.remove(tmp_path / "dev-clean.tar.gz")  # the extracted copy is enough
    again = librispeech.load_librispeech(str(tmp_path), chunk_seconds=0.25)
    np.testing.assert_array_equal(again.splits["test"][0][0],
                                  data.splits["test"][0][0])


def test_two_subsets_and_an_extracted_folder(tmp_path):
    make_archive(tmp_path / "a.tar.gz", "dev-clean", seconds=1.1)
    with tarfile.open(tmp_path / "a.tar.gz") as archive:
        archive.extractall(tmp_path / "data", filter="data")
    make_archive(tmp_path / "data" / "test-clean.tar.gz", "test-clean",
                 per_speaker=2, seconds=1.1)
    data = get_dataset("librispeech", data_dir=str(tmp_path / "data"))
    assert data.class_names == ["121", "174", "251", "61", "84"]
    assert data.chunk_length == 16000
    assert data.num_examples("train") + data.num_examples("test") == 13


def test_offline_without_data_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_data, "reachable", lambda *a, **k: False)
    with pytest.raises(DatasetError) as info:
        get_dataset("librispeech", data_dir=str(tmp_path))
    message = str(info.value)
    assert "\n" not in message and "--data-dir" in message
    assert "dev-clean.tar.gz" in message and str(tmp_path) in message
    assert os.listdir(tmp_path) == []
    state = catalog.status("librispeech", str(tmp_path))
    assert not state["present"] and "--data-dir" in state["where"]


def test_failed_download_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_data, "reachable", lambda *a, **k: True)

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("Connection reset\nby peer")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(DatasetError) as info:
        librispeech.load_librispeech(str(tmp_path))
    assert "\n" not in str(info.value) and "--data-dir" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_download_of_dev_clean(tmp_path, monkeypatch):
    payload = open(make_archive(tmp_path / "src.tar.gz"), "rb").read()
    data_dir = tmp_path / "data"
    seen = []
    monkeypatch.setattr(tfds_data, "reachable", lambda *a, **k: True)
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, **k: seen.append(url) or io.BytesIO(payload))
    data = librispeech.load_librispeech(str(data_dir), chunk_seconds=0.25)
    assert seen == [librispeech.URL] and data.num_classes == 3
    assert (data_dir / "dev-clean.tar.gz").is_file()


def test_unsafe_archive_is_refused_in_one_line(tmp_path):
    with tarfile.open(tmp_path / "dev-clean.tar.gz", "w:gz") as archive:
        _add(archive, "../evil.flac", b"x")
    with pytest.raises(DatasetError) as info:
        librispeech.load_librispeech(str(tmp_path))
    assert "\n" not in str(info.value) and "outside" in str(info.value)
    assert not (tmp_path.parent / "evil.flac").exists()


def test_tfds_examples_int16_and_encoded(capsys):
    tone = (0.3 * np.sin(np.arange(6000) / 5.0) * 32767).astype(np.int16)
    examples = []
    for speaker in (19, 26):
        for u in range(3):
            examples.append({"speech": tone, "speaker_id": np.int64(speaker),
                             "id": f"{speaker}-1-{u}".encode()})
    examples.append({"speech": _flac(300, 0.5), "speaker_id": 26,
                     "id": "26-1-9"})
    examples.append({"speech": np.zeros(6000, np.int16), "speaker_id": 19,
                     "id": "19-1-9"})
    data = librispeech.from_examples(examples, "tfds", chunk_seconds=0.25)
    assert data.class_names == ["19", "26"]
    assert data.num_examples("train") + data.num_examples("test") == 7
    assert data.skipped == {"silent": ["19-1-9"]}
    assert "Used 7 of 8 audio files" in data.usage()
    assert "left out 1 (0.4 s): 1 silent." in data.usage()
    waves = data.splits["train"][0] + data.splits["test"][0]
    assert max(np.abs(w).max() for w in waves) <= 0.31


def test_datasets_listing_names_librispeech(tmp_path):
    text = "\n".join(catalog.describe_all(str(tmp_path)))
    assert "librispeech" in text and "speech, 16 kHz" in text
    make_archive(tmp_path / "dev-clean.tar.gz")
    assert catalog.status("librispeech", str(tmp_path))["present"]


def test_prepared_tfds_is_read_first(tmp_path, monkeypatch):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    version_dir = tmp_path / "librispeech" / "default" / "2.1.1"
    version_dir.mkdir(parents=True)
    (version_dir / "dataset_info.json").write_text("{}")
    make_archive(tmp_path / "dev-clean.tar.gz")  # not used: TFDS comes first
    tone = (0.3 * np.sin(np.arange(5000) / 3.0) * 32767).astype(np.int16)
    asked = {}

    class Builder:
        class info:
            splits = {"dev_clean": None, "test_clean": None,
                      "dev_other": None}

        def as_dataset(self, split):
            asked["split"] = split
            return tf.data.Dataset.from_tensor_slices({
                "speech": np.stack([tone] * 4),
                "speaker_id": np.array([5, 5, 7, 7], np.int64),
                "id": np.array([b"5-1-0", b"5-1-1", b"7-1-0", b"7-1-1"]),
            })

    def builder(name, data_dir):
        asked["name"], asked["data_dir"] = name, data_dir
        return Builder()

    monkeypatch.setattr(tfds, "builder", builder)
    data = librispeech.load_librispeech(str(tmp_path), chunk_seconds=0.25)
    assert asked == {"name": "librispeech/default:2.1.1",
                     "data_dir": str(tmp_path),
                     "split": "dev_clean+test_clean"}
    assert data.class_names == ["5", "7"] and data.num_examples("test") == 2
    assert not (tmp_path / "dev-clean.tar.gz.extracted").exists()
    assert "prepared in" in catalog.status("librispeech", str(tmp_path))[
        "where"]
