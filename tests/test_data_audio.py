"""Tests of the in-memory speech dataset: chunks and same-speaker pairs."""

import os
import subprocess
import sys

import numpy as np
import pytest

from dim_keras import recipes
from dim_keras.data import audio
from dim_keras.data.image_dataset import ImageDataset

CHUNK = 40


def _utterance(speaker, utterance, length):
    """Samples of speaker s: s + 0.01 * u + 0.0001 * (position mod 100).

    Any chunk can be traced back to its speaker and utterance.
    """
    position = (np.arange(length) % 100) * 1e-4
    return (0.1 * speaker + 0.01 * utterance + position).astype(np.float32)


def _speaker_of(chunk):
    return int(np.floor(chunk[0, 0] * 10 + 1e-6))


def _utterance_of(chunk):
    return int(np.floor((chunk[0, 0] * 10 % 1) * 10 + 1e-4))


def _dataset(per_speaker=(3, 2, 1, 3), lengths=(90, 130)):
    waves, ids = [], []
    for s, n in enumerate(per_speaker):
        for u in range(n):
            waves.append(_utterance(s, u, lengths[u % len(lengths)]))
            ids.append(s)
    test = ([_utterance(0, 5, 100), _utterance(1, 5, 85)], [0, 1])
    return audio.AudioDataset(
        "tiny", {"train": (waves, ids), "test": test},
        [f"spk{s}" for s in range(len(per_speaker))], chunk_length=CHUNK)


def test_attributes():
    data = _dataset()
    assert data.modality == "audio" and ImageDataset.modality == "image"
    assert data.in_memory and data.sample_rate == 16000
    assert data.num_classes == 4 and data.class_names[0] == "spk0"
    assert data.num_examples("train") == 9 and data.num_examples("test") == 2
    assert data.default_encoder == "wave1d"
    assert data.default_settings == recipes.SPEECH
    assert data.skipped == {} and data.padded == {"train": 0, "test": 0}
    assert data.splits["train"][1].dtype == np.int64


def test_empty_or_2d_waveform_is_refused():
    for wave in (np.zeros(0), np.zeros((10, 2))):
        with pytest.raises(ValueError, match="Received: shape="):
            audio.AudioDataset("x", {"train": ([wave], [0])}, ["a"],
                               chunk_length=CHUNK)


def test_short_waveforms_are_padded_by_repeating_them():
    wave = np.arange(1, 11, dtype=np.float32)
    data = audio.AudioDataset("x", {"train": ([wave, np.ones(50)], [0, 1])},
                              ["a", "b"], chunk_length=25)
    padded = data.splits["train"][0][0]
    np.testing.assert_array_equal(padded, np.resize(wave, 25))
    assert padded[10] == 1 and len(data.splits["train"][0][1]) == 50
    assert data.padded == {"train": 1}
    x, labels, _ = data.chunks("train")
    assert x.shape == (3, 25, 1) and labels.tolist() == [0, 1, 1]
    # Pairs of a padded utterance are whole chunks too.
    batch = data.training_pairs(2, seed=0)[0]
    assert batch.shape == (2, 2, 25, 1)
    np.testing.assert_array_equal(audio.pad_to(wave, 5), wave)


def test_with_chunk_length_re_cuts_the_utterances():
    data = _dataset()
    shorter = data.with_chunk_length(20)
    assert data.with_chunk_length(CHUNK) is data
    assert shorter.chunk_length == 20 and data.chunk_length == CHUNK
    assert shorter.chunks("test")[0].shape == (9, 20, 1)  # 100 + 85 samples
    longer = data.with_chunk_seconds(90 / 16000)
    assert longer.chunk_length == 90 and longer.padded["test"] == 1
    assert longer.default_settings is data.default_settings
    for bad in (0, -0.5, "1", None, float("nan")):
        with pytest.raises(ValueError, match="Received: chunk_seconds="):
            data.with_chunk_seconds(bad)


def test_usage_says_files_seconds_padding_and_what_was_left_out():
    data = audio.AudioDataset(
        "x", {"train": ([np.ones(16000), np.ones(800)], [0, 1]),
              "test": ([np.ones(8000)], [1])}, ["a", "b"],
        chunk_length=4000, skipped={"silent": ["q.wav"],
                                    "unreadable": ["bad.wav"]},
        skipped_seconds=2.0, dropped_speakers=["c"])
    assert data.usage() == (
        "Used 3 of 5 audio files (1.6 s of speech, 2 speakers) in chunks of "
        "0.25 s; 1 shorter than a chunk, padded by repeating them; left out "
        "2 (2.0 s): 1 silent, 1 unreadable (first: bad.wav); dropped 1 "
        "speaker(s) with no usable file (c).")


def test_chunks_are_fixed_and_indexed_by_utterance():
    data = _dataset()
    x, labels, owners = data.chunks("test")
    # 100 samples -> 2 chunks of 40; 85 -> 2.
    assert x.shape == (4, CHUNK, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    np.testing.assert_array_equal(owners, [0, 0, 1, 1])
    np.testing.assert_allclose(x[1, :, 0], data.splits["test"][0][0][40:80])
    x2, _, owners2 = data.chunks("test", hop=20, max_per_utterance=3)
    assert len(x2) == 6 and owners2.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(x2[1, :, 0], data.splits["test"][0][0][20:60])
    with pytest.raises(ValueError, match="Received: hop=0"):
        data.chunks("test", hop=0)
    with pytest.raises(ValueError, match="Received: split='val'"):
        data.chunks("val")


def _check_pairs(batch, data, batch_size):
    assert batch.shape == (batch_size, 2, CHUNK, 1)
    assert batch.dtype == np.float32
    counts = np.bincount(data.splits["train"][1])
    speakers = []
    for element in batch:
        a, b = _speaker_of(element[0]), _speaker_of(element[1])
        assert a == b
        ua, ub = _utterance_of(element[0]), _utterance_of(element[1])
        assert (ua != ub) == (counts[a] > 1)
        speakers.append(a)
    return speakers


def test_training_pairs_same_speaker_distinct_negatives_seeded():
    data = _dataset()
    pairs = data.training_pairs(3, seed=1)
    total = sum(len(w) for w in data.splits["train"][0])
    assert len(pairs) == int(np.ceil(total / (3 * CHUNK)))
    first = [pairs[i] for i in range(len(pairs))]
    for batch in first:
        speakers = _check_pairs(batch, data, 3)
        assert len(set(speakers)) == 3  # negatives are other speakers
    again = data.training_pairs(3, seed=1)
    np.testing.assert_array_equal(again[1], first[1])
    pairs.on_epoch_end()
    assert not np.array_equal(pairs[0], first[0])
    with pytest.raises(IndexError):
        pairs[len(pairs)]


def test_training_pairs_with_more_elements_than_speakers():
    data = _dataset()
    pairs = data.training_pairs(10, seed=0, steps_per_epoch=2)
    assert len(pairs) == 2
    speakers = _check_pairs(pairs[0], data, 10)
    assert len(set(speakers)) <= 4
    with pytest.raises(ValueError, match="Received: batch_size=1"):
        data.training_pairs(1)


def test_training_pairs_need_no_tensorflow(tmp_path):
    # Keras's numpy backend imports JAX (for its FFT): run on JAX itself.
    pytest.importorskip("jax")
    code = (
        "import sys, numpy as np\n"
        "from dim_keras.data import audio\n"
        "d = audio.AudioDataset('x', {'train': ([np.ones(50, np.float32)] * 2,"
        " [0, 1])}, ['a', 'b'], chunk_length=20)\n"
        "b = d.training_pairs(2, seed=0)[0]\n"
        "assert b.shape == (2, 2, 20, 1)\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run([sys.executable, "-c", code], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_tf_training_pairs_same_speaker_and_shape():
    data = _dataset()
    batches = list(data.tf_training_pairs(3, seed=4).take(4))
    for batch in batches:
        speakers = _check_pairs(batch.numpy(), data, 3)
        assert len(set(speakers)) == 3
    again = next(iter(data.tf_training_pairs(3, seed=4)))
    np.testing.assert_array_equal(again.numpy(), batches[0].numpy())
    assert not np.array_equal(batches[0].numpy(), batches[1].numpy())
    big = next(iter(data.tf_training_pairs(7, seed=0)))
    _check_pairs(big.numpy(), data, 7)


def test_labelled_pairs_carry_the_first_chunks_utterance_label():
    data = _dataset()
    speakers = data.splits["train"][1]
    # Every utterance labelled by its index (an odd label, to trace it).
    labels = np.arange(len(speakers), dtype=np.int64)
    pairs, got = data.training_pairs(3, seed=2, labels=labels)[0]
    assert pairs.shape == (3, 2, CHUNK, 1) and got.shape == (3,)
    waves = data.splits["train"][0]
    for chunk, u in zip(pairs[:, 0], got):
        assert _utterance_of(chunk) == _utterance_of(waves[u][:, None])
        assert _speaker_of(chunk) == speakers[u]
    tf_pairs, tf_got = next(iter(data.tf_training_pairs(3, seed=2,
                                                        labels=labels)))
    for chunk, u in zip(tf_pairs.numpy()[:, 0], tf_got.numpy()):
        assert _speaker_of(chunk) == speakers[u]
    with pytest.raises(ValueError, match="Received: 2 labels for 9"):
        data.training_pairs(3, labels=[0, 1])


def test_middle_chunks():
    data = _dataset()
    x = data.middle_chunks("train", [1, 0])
    waves = data.splits["train"][0]
    np.testing.assert_array_equal(x[0, :, 0], waves[1][45:85])  # 130 samples
    np.testing.assert_array_equal(x[1, :, 0], waves[0][25:65])  # 90 samples
