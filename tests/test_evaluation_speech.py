"""The speech evaluation: speaker identification, verification, report."""

import json
import os

import numpy as np
import pytest

from dim_keras.data.audio import AudioDataset
from dim_keras.evaluation import EvaluationConfig
from dim_keras.evaluation import evaluate_run
from dim_keras.evaluation import speech
from dim_keras.networks import wave1d
from dim_keras.runs import RunError
from tests.helpers import speakers_folder
from tests.helpers import tiny_config

CHUNK = 640  # one 512-point FFT fits: log-mel statistics are defined


def _tones(speakers=3, per_speaker=(4, 2), seconds_of_chunks=3, seed=0):
    """Speaker k hums at 500 * (k + 1) Hz with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(seconds_of_chunks * CHUNK) / 16000
    splits = {}
    for split, count in zip(("train", "test"), per_speaker):
        waves, ids = [], []
        for k in range(speakers):
            for _ in range(count):
                phase = rng.uniform(0, 2 * np.pi)
                wave = 0.3 * np.sin(2 * np.pi * 500 * (k + 1) * t + phase)
                waves.append(wave + 0.01 * rng.normal(size=len(t)))
                ids.append(k)
        splits[split] = (waves, ids)
    return AudioDataset("tones", splits, [f"s{k}" for k in range(speakers)],
                        chunk_length=CHUNK)


def test_every_representation_is_scored_on_whole_chunks():
    data = _tones()
    results = speech.evaluate_speech(
        "run", wave1d(chunk_length=CHUNK), data, "tones", {},
        EvaluationConfig(), log=lambda _: None)
    # 3 speakers x 4 train (2 test) utterances x 3 chunks each.
    assert results["splits"] == {"train": 36, "test": 18}
    assert results["num_classes"] == 3 and results["chance_accuracy"] == 1 / 3
    assert [r["representation"] for r in results["probes"]] == [
        "dim", "random", "log_mel"]
    widths = [r["feature_dim"] for r in results["probes"]]
    assert widths == [64, 64, 80]  # Y; 40 mel means and 40 deviations
    # Tones of three pitches: their mel energies tell them apart.
    assert results["probes"][2]["accuracy"] == 1.0
    for row in results["verification"]:
        assert 0.0 <= row["eer"] <= 1.0 and row["items"] == 18
    text = speech.markdown(dict(results, run_dir="run"))
    assert "| Log-mel statistics | 80 | 100.00 |" in text
    assert "18 test chunks (3 speakers" in text


def test_baselines_can_be_left_out_and_the_encoder_sets_the_chunks():
    data = _tones(per_speaker=(2, 1))
    results = speech.evaluate_speech(
        "run", wave1d(chunk_length=CHUNK), data, "tones", {},
        EvaluationConfig(baselines=False), log=lambda _: None)
    assert [r["representation"] for r in results["probes"]] == ["dim"]
    # An encoder of half the dataset's chunks reads twice as many.
    halves = speech.evaluate_speech(
        "run", wave1d(chunk_length=CHUNK // 2), data, "tones", {},
        EvaluationConfig(baselines=False), log=lambda _: None)
    assert halves["chunk_length"] == CHUNK // 2
    assert halves["splits"]["test"] == 2 * results["splits"]["test"]
    one_chunk = _tones(per_speaker=(2, 1), seconds_of_chunks=1)
    with pytest.raises(RunError, match="Received: 3 test chunks of 3"):
        speech.evaluate_speech("run", wave1d(chunk_length=CHUNK), one_chunk,
                               "tones", {}, EvaluationConfig(),
                               log=lambda _: None)


def test_a_speech_run_is_evaluated_and_reported(tmp_path):
    from dim_keras.training import train

    # One test file per speaker, of 2 chunks: 3 same-speaker pairs.
    dataset = speakers_folder(str(tmp_path / "speech"), per_speaker=5,
                               seconds=2.1)
    run = str(tmp_path / "run")
    train(tiny_config(dataset=dataset, batch_size=4, steps_per_epoch=1,
                      estimator="nce"), run, verbose=0, log=lambda _: None)
    results = evaluate_run(run, log=lambda _: None)
    assert results["modality"] == "audio"
    assert {"json", "markdown"} <= set(results["paths"])
    assert "probes_plot" not in results["paths"]  # images only
    with open(os.path.join(run, "evaluation.json")) as f:
        written = json.load(f)
    assert len(written["verification"]) == 3
    with open(os.path.join(run, "evaluation.md")) as f:
        assert "Speaker ID accuracy (%)" in f.read()
