"""Log mel statistics: shapes, a pure tone's band worked by hand, silence."""

import numpy as np
import pytest

from dim_keras.evaluation.spectral import log_mel_statistics

RATE = 16000


def _tone(frequency, seconds=1.0, amplitude=0.5):
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype("float32")


def test_shape_dtype_and_channel_axis():
    rng = np.random.default_rng(0)
    waveforms = rng.normal(scale=0.1, size=(5, 8000)).astype("float32")
    features = log_mel_statistics(waveforms, num_mel_bins=40, batch_size=2)
    assert features.shape == (5, 80) and features.dtype == np.float32
    np.testing.assert_allclose(
        log_mel_statistics(waveforms[..., None], batch_size=2), features,
        rtol=1e-6)
    # Per waveform: the batch it is computed in does not matter (the layer's
    # own decibel scale would clip at the loudest value of the batch).
    alone = log_mel_statistics(waveforms[1:2] * 1e-3)
    beside_loud = log_mel_statistics(
        np.concatenate([waveforms[1:2] * 1e-3, waveforms[:1] * 10.0]))
    np.testing.assert_allclose(beside_loud[0], alone[0], rtol=1e-5,
                               atol=1e-5)


def test_pure_tone_peaks_in_the_mel_band_of_its_frequency():
    # HTK mel scale, mel(f) = 1127 ln(1 + f / 700). The 40 bands span
    # mel(20 Hz) = 31.75 to mel(8000 Hz) = 2840.04 cut into 41 equal steps of
    # 68.49 mel; band k (from 0) peaks at 31.75 + (k + 1) * 68.49 mel.
    # 1000 Hz: mel 999.99, (999.99 - 31.75) / 68.49 = 14.14 steps, nearest
    # the peak of band 13 (k + 1 = 14). 3000 Hz: mel 1876.46, 26.93 steps,
    # band 26. (Each frequency falls in two overlapping triangles; the
    # higher one is the band whose peak is nearer.)
    features = log_mel_statistics(np.stack([_tone(1000.0), _tone(3000.0)]))
    means = features[:, :40]
    assert int(np.argmax(means[0])) == 13
    assert int(np.argmax(means[1])) == 26
    # Two tones, two different feature vectors.
    assert np.max(np.abs(features[0] - features[1])) > 1.0
    # A steady tone: its strongest band hardly varies over time.
    assert features[0, 40 + 13] < 0.5


def test_silence_gives_finite_floor_features():
    features = log_mel_statistics(np.zeros((2, 4000), "float32"),
                                  floor=1e-10)
    assert np.all(np.isfinite(features))
    np.testing.assert_allclose(features[:, :40], np.log(1e-10), rtol=1e-6)
    # float32 rounding of a constant: JAX gives 4e-6.
    np.testing.assert_allclose(features[:, 40:], 0.0, atol=1e-4)


def test_refuses_wrong_shapes():
    with pytest.raises(ValueError, match=r"Received: waveforms.shape=\(4,\)"):
        log_mel_statistics(np.zeros(4, "float32"))
    with pytest.raises(ValueError, match="at least 512 samples"):
        log_mel_statistics(np.zeros((1, 300), "float32"))
