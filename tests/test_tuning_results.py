"""The trials table and the best configuration, from hand-made trials."""

import csv
import io
import json

import keras_tuner as kt
import pytest

from dim_keras.config import TrainConfig
from dim_keras.tuning import results
from dim_keras.tuning.tuner import DIMHyperModel

BASE = TrainConfig(batch_size=32, critic_units=16, encoder="basic32x32")


def make_trial(trial_id, status, values, score=None, message=None):
    hp = kt.HyperParameters()
    hp.values = dict(values)
    trial = kt.engine.trial.Trial(hp, trial_id=trial_id, status=status)
    if score is not None:
        trial.metrics.register("val_probe_acc", direction="max")
        trial.metrics.update("val_probe_acc", score)
        trial.metrics.register("loss", direction="min")
        trial.metrics.update("loss", 1.5)
        trial.score = score
    trial.message = message
    return trial


LOCAL = {"estimator": "jsd", "mi_terms": "local", "beta": 0.5,
         "gamma": 0.1, "lr": 1e-4}
BOTH = {"estimator": "nce", "mi_terms": "both", "alpha": 0.3, "beta": 1.2,
        "gamma": 0.02, "lr": 3e-4}
GLOBAL = {"estimator": "dv", "mi_terms": "global", "alpha": 1.5,
          "gamma": 0.5, "lr": 1e-5}


@pytest.fixture
def trials():
    failure = ("Traceback (most recent call last):\n  File ...\n"
               "keras_tuner.src.errors.FailedTrialError: Training stopped: "
               "a non-finite loss at epoch 1\n")
    return [
        make_trial("0", "COMPLETED", LOCAL, score=0.61),
        make_trial("1", "FAILED", GLOBAL, message=failure),
        make_trial("2", "COMPLETED", BOTH, score=0.83),
        make_trial("3", "RUNNING", GLOBAL),
        make_trial("10", "COMPLETED", GLOBAL, score=0.61),
    ]


def trial_config(trial):
    return DIMHyperModel(BASE, {}, epochs_per_trial=3).build(
        trial.hyperparameters.copy()
    )


def test_rows_best_first_then_unfinished(trials):
    rows = [row for row, _ in results.trial_rows(trials, trial_config)]
    assert [r["trial"] for r in rows] == ["2", "0", "10", "1", "3"]
    assert [r["val_probe_acc"] for r in rows] == [0.83, 0.61, 0.61, None, None]
    # Every searched value, as trained: an inactive weight is 0.
    assert rows[0]["alpha"] == 0.3 and rows[0]["beta"] == 1.2
    assert rows[1]["alpha"] == 0.0 and rows[1]["beta"] == 0.5
    assert rows[2]["beta"] == 0.0 and rows[2]["estimator"] == "dv"
    assert all(r["epochs"] == 3 for r in rows)
    assert rows[0]["loss"] == 1.5
    assert rows[3]["message"] == (
        "Training stopped: a non-finite loss at epoch 1"
    )


def test_written_files(tmp_path, trials):
    summary = results.write_results(str(tmp_path), trials, trial_config)
    with open(tmp_path / "trials.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["trial"] for r in table] == ["2", "0", "10", "1", "3"]
    assert list(table[0])[:10] == list(results.LEADING)
    assert float(table[0]["lr"]) == 3e-4  # full precision in the CSV
    assert table[3]["status"] == "FAILED" and table[3]["val_probe_acc"] == ""
    markdown = (tmp_path / "trials.md").read_text().splitlines()
    assert markdown[0].startswith("| trial | status | val_probe_acc |")
    assert markdown[2].startswith("| 2 | COMPLETED | 0.83 | nce | both |")
    assert len(markdown) == 2 + len(trials)
    with open(tmp_path / "best.json") as f:
        best = json.load(f)
    expected = TrainConfig(
        batch_size=32, critic_units=16, encoder="basic32x32",
        estimator="nce", alpha=0.3, beta=1.2, gamma=0.02, lr=3e-4, epochs=3,
        views=1, score_temperature=1.0, score_clip=0.0, scales="y-local",
    )  # a trial sets every searched setting (its defaults: one view)
    assert TrainConfig.from_dict(best) == expected
    assert summary["best"]["trial"] == "2"


def test_no_best_without_a_completed_trial(tmp_path):
    failed = [make_trial("0", "FAILED", LOCAL, message="boom")]
    summary = results.write_results(str(tmp_path), failed, trial_config)
    assert summary["best"] is None
    assert not (tmp_path / "best.json").exists()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "trials.csv")
                                           .read_text())))
    assert rows[0]["message"] == "boom"
