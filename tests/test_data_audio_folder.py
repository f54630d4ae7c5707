"""Tests of `folder:PATH` speech datasets on tiny synthesized audio."""

import os

import numpy as np
import pytest
import soundfile

from dim_keras.data import audio_folder
from dim_keras.data import get_dataset
from dim_keras.data.image_dataset import DatasetError


def tone(frequency, seconds=0.3, rate=16000, channels=1, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    wave = amplitude * np.sin(2 * np.pi * frequency * t)
    if channels > 1:
        wave = np.stack([wave] * channels, axis=1)
    return wave


def write(path, wave, rate=16000, subtype=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, wave, rate, subtype=subtype)
    return path


def make_speakers(root, speakers=("alice", "bob", "carol"), per_speaker=4,
                  ext="wav", seconds=0.3):
    for k, speaker in enumerate(speakers):
        for i in range(per_speaker):
            write(os.path.join(root, speaker, "session", f"u{i}.{ext}"),
                  tone(200 + 100 * k + 10 * i, seconds))


def test_decode_formats_channels_and_rates(tmp_path):
    cases = {
        "a.wav": dict(rate=16000, subtype="PCM_16"),
        "b.flac": dict(rate=16000),
        "c.ogg": dict(rate=16000),
        "d.WAV": dict(rate=44100, subtype="PCM_24"),
        "e.wav": dict(rate=8000, subtype="FLOAT"),
    }
    for name, kwargs in cases.items():
        rate = kwargs["rate"]
        path = write(str(tmp_path / name), tone(440, 0.5, rate, channels=2),
                     **kwargs)
        wave = audio_folder.decode(path)
        assert wave.dtype == np.float32 and wave.ndim == 1, name
        assert abs(len(wave) - 8000) <= 1, name
        assert 0.4 < np.abs(wave).max() <= 1.0, name
    assert audio_folder.decode(str(tmp_path / "missing.wav")) is None


def test_mp3_decodes(tmp_path):
    try:
        path = write(str(tmp_path / "a.mp3"), tone(440, 0.5, 16000))
    except (RuntimeError, TypeError, ValueError):
        pytest.skip("libsndfile here cannot write MP3")
    wave = audio_folder.decode(path)
    assert wave is not None and len(wave) > 7000


def test_int_samples_scale_to_unit_range():
    data = np.array([[-32768, 32767], [0, 0]], dtype=np.int16)
    wave = audio_folder.to_mono(data, 16000)
    np.testing.assert_allclose(wave, [0.0, 0.0], atol=1e-4)  # channel mean
    wave = audio_folder.to_mono(np.array([-32768, 16384], np.int16), 16000)
    np.testing.assert_allclose(wave, [-1.0, 0.5])


def test_split_by_utterance_holds_out_per_speaker():
    speakers = ["a"] * 5 + ["b"] * 2 + ["c"]
    train, test = audio_folder.split_by_utterance(speakers, 0.2, seed=0)
    assert sorted(train.tolist() + test.tolist()) == list(range(8))
    held = [speakers[i] for i in test]
    assert held.count("a") == 1 and held.count("b") == 1 and "c" not in held
    again = audio_folder.split_by_utterance(speakers, 0.2, seed=0)
    np.testing.assert_array_equal(again[1], test)


def test_load_speaker_folders_split_by_utterance(tmp_path):
    make_speakers(tmp_path / "spk", per_speaker=4, seconds=0.3)
    (tmp_path / "spk" / "alice" / ".hidden.wav").write_bytes(b"x")
    (tmp_path / "spk" / "alice" / "notes.txt").write_text("x")
    data = audio_folder.load_audio_folder(str(tmp_path / "spk"),
                                          chunk_seconds=0.25)
    assert data.class_names == ["alice", "bob", "carol"]
    assert data.chunk_length == 4000 and data.sample_rate == 16000
    assert data.num_examples("train") == 9 and data.num_examples("test") == 3
    assert sorted(data.splits["test"][1].tolist()) == [0, 1, 2]
    wave = data.splits["train"][0][0]
    assert wave.dtype == np.float32 and len(wave) == 4800
    x, labels, owners = data.chunks("test")
    assert x.shape == (3, 4000, 1)
    assert data.skipped == {}


def test_explicit_train_and_test_folders(tmp_path):
    make_speakers(tmp_path / "d" / "train", ("a", "b"), per_speaker=2)
    make_speakers(tmp_path / "d" / "test", ("b",), per_speaker=1)
    data = audio_folder.load_audio_folder(str(tmp_path / "d"),
                                          chunk_seconds=0.25)
    assert data.class_names == ["a", "b"]
    assert data.num_examples("train") == 4
    assert data.splits["test"][1].tolist() == [1]


def test_damaged_files_are_left_out_and_said_in_one_line(tmp_path, capsys):
    root = tmp_path / "spk"
    make_speakers(root, ("a", "b"), per_speaker=3)
    (root / "a" / "text.wav").write_text("not audio at all")
    write(str(root / "a" / "cut.flac"), tone(300)[:1000])  # under 0.1 s
    write(str(root / "b" / "quiet.wav"), np.zeros(8000))  # silent
    write(str(root / "b" / "whisper.wav"), tone(300, amplitude=5e-5))
    write(str(root / "c" / "only.wav"), np.zeros(8000))  # speaker dropped
    write(str(root / "a" / "hifi.wav"), tone(300, 0.3, 48000), 48000)
    data = audio_folder.load_audio_folder(str(root), chunk_seconds=0.25)
    assert capsys.readouterr().out == ""  # the run logs `usage()`
    assert data.usage() == (
        "Used 7 of 12 audio files (2.1 s of speech, 2 speakers) in chunks "
        "of 0.25 s; left out 5 (1.4 s): 1 shorter than 0.1 s, 3 silent, 1 "
        f"unreadable (first: {root / 'a' / 'text.wav'}); dropped 1 "
        "speaker(s) with no usable file (c)."
    )
    assert data.class_names == ["a", "b"]
    assert data.num_examples("train") + data.num_examples("test") == 7
    assert len(data.skipped["silent"]) == 3


def test_short_8khz_clips_are_resampled_and_padded_not_dropped(tmp_path):
    root = tmp_path / "clips"
    lengths = (0.14, 0.2, 0.3, 0.45)
    for k, speaker in enumerate(("p1", "p2", "p3")):
        for i, seconds in enumerate(lengths):
            write(str(root / speaker / f"{i}.wav"),
                  tone(150 + 120 * k, seconds, rate=8000), rate=8000,
                  subtype="PCM_16")
    data = audio_folder.load_audio_folder(str(root), chunk_seconds=0.25)
    assert data.skipped == {} and data.sample_rate == 16000
    waves = data.utterances["train"][0] + data.utterances["test"][0]
    assert sorted(len(w) for w in waves) == sorted(
        int(s * 16000) for s in lengths for _ in range(3))
    # The 0.14 s and 0.2 s clips (6 of them) are padded to one 4000-sample
    # chunk; the 8 kHz tone at 150 Hz is still 150 Hz at 16 kHz.
    assert sum(data.padded.values()) == 6
    assert all(len(w) >= 4000 for w, _ in [data.splits["train"]]
               for w in w)
    spectrum = np.abs(np.fft.rfft(waves[0][:2240]))
    assert abs(np.argmax(spectrum) * 16000 / 2240 - 150) < 10
    assert "Used 12 of 12 audio files" in data.usage()
    assert "6 shorter than a chunk, padded" in data.usage()
    again = data.with_chunk_seconds(0.1)
    assert again.padded == {"train": 0, "test": 0}


@pytest.mark.parametrize("case", ["empty", "one_speaker", "all_broken",
                                  "missing"])
def test_unusable_folders_fail_with_one_line(tmp_path, case):
    root = tmp_path / "spk"
    root.mkdir()
    if case == "one_speaker":
        make_speakers(root, ("a",), per_speaker=3)
    elif case == "all_broken":
        for s in ("a", "b"):
            (root / s).mkdir()
            (root / s / "x.wav").write_bytes(b"RIFF....WAVEjunk")
    elif case == "missing":
        root = tmp_path / "nope"
    with pytest.raises(DatasetError) as info:
        audio_folder.load_audio_folder(str(root), chunk_seconds=0.25)
    message = str(info.value)
    assert "\n" not in message and message.endswith(f"Received: path={str(root)!r}")


def test_registry_detects_audio_folders_and_keeps_image_folders(tmp_path):
    from PIL import Image

    make_speakers(tmp_path / "speech", ("a", "b"), per_speaker=3, seconds=1.2)
    data = get_dataset(f"folder:{tmp_path / 'speech'}")
    assert data.modality == "audio" and data.chunk_length == 16000
    make_speakers(tmp_path / "split" / "train", ("a", "b"), per_speaker=2,
                  seconds=1.2)
    make_speakers(tmp_path / "split" / "test", ("a",), per_speaker=1,
                  seconds=1.2)
    assert get_dataset(f"folder:{tmp_path / 'split'}").modality == "audio"
    for k, name in enumerate(["cat", "dog"]):
        os.makedirs(tmp_path / "images" / name)
        for i in range(3):
            Image.new("RGB", (8, 8), (k * 100, i, 0)).save(
                tmp_path / "images" / name / f"{i}.png")
    # A stray sound beside images leaves an image folder an image folder.
    write(str(tmp_path / "images" / "cat" / "meow.wav"), tone(500))
    images = get_dataset(f"folder:{tmp_path / 'images'}")
    assert images.modality == "image" and images.num_classes == 2
    assert not audio_folder.holds_audio(str(tmp_path / "images"))
    assert not audio_folder.holds_audio(str(tmp_path / "missing"))
