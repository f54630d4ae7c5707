"""A spectral baseline for speech: statistics of log mel-filterbank energies.

Beside learned speaker representations, a speech researcher expects the
simple one: the mean and the standard deviation over time of each
waveform's log mel-filterbank energies (the "FBANK" features of speech
recognition, pooled over time). `log_mel_statistics` computes them with
Keras's own `keras.layers.MelSpectrogram` (on any backend) over 25 ms Hann
windows every 10 ms, by default 40 mel bands from 20 Hz to half the
sample rate.

The logarithm is taken here, per waveform, rather than by the layer's
`power_to_db`: the layer clips its decibels at the batch's loudest value
minus `top_db`, which would make a waveform's features depend on the other
waveforms of its batch.
"""

import math

import keras
import numpy as np
from keras import ops


def _check_waveforms(waveforms):
    waveforms = np.asarray(waveforms, dtype="float32")
    if waveforms.ndim == 3 and waveforms.shape[-1] == 1:
        waveforms = waveforms[..., 0]
    if waveforms.ndim != 2:
        raise ValueError(
            "Expected waveforms [N, L] or [N, L, 1]. "
            f"Received: waveforms.shape={waveforms.shape}"
        )
    return waveforms


def log_mel_statistics(waveforms, sample_rate=16000, num_mel_bins=40,
                       window_seconds=0.025, hop_seconds=0.010,
                       min_freq=20.0, max_freq=None, floor=1e-10,
                       batch_size=64):
    """Mean and std over time of each waveform's log mel energies.

    Each waveform is cut into Hann windows of `window_seconds` every
    `hop_seconds` (centred, the edges reflected; the FFT is the next power
    of 2 at or above the window: 400 samples every 160 with a 512-point FFT
    at 16 kHz); each window's power spectrum is summed by `num_mel_bins`
    triangular mel filters (HTK mel scale,
    `mel(f) = 1127 ln(1 + f / 700)`) from `min_freq` to `max_freq`; the
    natural logarithm of the energies (at least `floor`) is averaged over
    the windows, and its standard deviation taken.

    Args:
        waveforms: float array `[N, L]` or `[N, L, 1]`, samples in about
            `[-1, 1]`; `L` at least one FFT length.
        sample_rate: int, samples per second.
        num_mel_bins: int, mel bands.
        window_seconds: float, analysis window length.
        hop_seconds: float, step between windows.
        min_freq: float, lower edge of the lowest band, in Hz.
        max_freq: float or None, upper edge of the highest band, in Hz
            (None: `sample_rate / 2`).
        floor: float, smallest energy whose log is taken (silence's).
        batch_size: int, waveforms per call of the layer.

    Returns:
        float32 array `[N, 2 * num_mel_bins]`: the `num_mel_bins` means,
        then the `num_mel_bins` standard deviations.

    Raises:
        ValueError: for waveforms of another rank, or shorter than one FFT.
    """
    waveforms = _check_waveforms(waveforms)
    window = int(round(window_seconds * sample_rate))
    hop = int(round(hop_seconds * sample_rate))
    fft_length = 2 ** math.ceil(math.log2(window))
    if waveforms.shape[1] < fft_length:
        raise ValueError(
            f"Waveforms need at least {fft_length} samples (one FFT of a "
            f"{window_seconds * 1000:g} ms window at {sample_rate} Hz). "
            f"Received: waveforms.shape={waveforms.shape}"
        )
    layer = keras.layers.MelSpectrogram(
        fft_length=fft_length,
        sequence_stride=hop,
        sequence_length=window,
        window="hann",
        sampling_rate=sample_rate,
        num_mel_bins=num_mel_bins,
        min_freq=min_freq,
        max_freq=max_freq,
        power_to_db=False,
        mag_exp=2.0,
        dtype="float32",
    )
    features = []
    for start in range(0, len(waveforms), batch_size):
        energies = layer(waveforms[start:start + batch_size])  # [B, M, T]
        log_energies = ops.log(ops.maximum(energies, floor))
        statistics = ops.concatenate(
            [ops.mean(log_energies, axis=-1), ops.std(log_energies, axis=-1)],
            axis=-1,
        )
        features.append(ops.convert_to_numpy(statistics).astype("float32"))
    if not features:
        return np.zeros((0, 2 * num_mel_bins), "float32")
    return np.concatenate(features, axis=0)
