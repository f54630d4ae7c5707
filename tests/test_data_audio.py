"""Tests of the in-memory speech dataset: chunks and same-speaker pairs."""

import os
import subprocess
import sys

import numpy as np
import pytest

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
    assert data.default_encoder == "wave1d" and data.default_settings is None
    assert data.skipped == {}
    assert data.splits["train"][1].dtype == np.int64


def test_short_waveform_is_refused():
    with pytest.raises(ValueError, match="Received: shape=\\(10,\\)"):
        audio.AudioDataset("x", {"train": ([np.zeros(10)], [0])}, ["a"],
                           chunk_length=CHUNK)


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
