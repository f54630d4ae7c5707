"""`dim-keras tune`: searches, reruns that continue or extend, failures, CLI."""

import csv
import json
import math
import os
import re
import socket
import subprocess

import keras_tuner as kt
import numpy as np
import pytest
from click.testing import CliRunner

from dim_keras.apps.cli import main
from dim_keras.runs import RunError
from dim_keras.config import TrainConfig
from tests import tuning_helpers
from dim_keras.tuning.search import SearchSettings
from dim_keras.tuning.search import run_search
from dim_keras.tuning.tuner import DIMTuner



@pytest.fixture(autouse=True)
def tiny_dataset(monkeypatch):
    """`--dataset digits_tiny` in this process, for these tests only."""
    from dim_keras.data import registry

    monkeypatch.setitem(registry.DATASETS, tuning_helpers.TINY,
                        tuning_helpers.tiny_spec())


def read_table(out):
    with open(os.path.join(out, "trials.csv")) as f:
        return list(csv.DictReader(f))


def settings(**kwargs):
    values = dict(
        base=TrainConfig(dataset=tuning_helpers.TINY, batch_size=32,
                         critic_units=16, jit_compile=False),
        max_trials=3, epochs_per_trial=1, val_fraction=0.25,
    )
    values.update(kwargs)
    return SearchSettings(**values)


def fake_score(config):
    """A known function of the trial's values, peaked at lr = 1e-4."""
    return 1.0 - abs(math.log10(config.lr) + 4.0) / 2.0


@pytest.fixture
def fake_trials(monkeypatch):
    """Replaces training by `fake_score`; records the trials run."""
    ran = []

    def run_trial(self, trial, *args, **kwargs):
        ran.append(trial.trial_id)
        config = self.trial_config(trial)
        return {"val_probe_acc": fake_score(config), "loss": 0.0}

    monkeypatch.setattr(DIMTuner, "run_trial", run_trial)
    return ran


@pytest.mark.parametrize("tuner", ["random", "bayesian", "hyperband"])
def test_rerun_with_more_trials_extends_the_search(tmp_path, fake_trials,
                                                   tuner):
    out = str(tmp_path / "search")
    epochs = 3 if tuner == "hyperband" else 1
    first = run_search(settings(tuner=tuner, epochs_per_trial=epochs), out,
                       log=lambda _: None)
    assert len(fake_trials) == 3 and len(first["rows"]) == 3
    again = run_search(settings(tuner=tuner, epochs_per_trial=epochs), out,
                       log=lambda _: None)
    assert len(fake_trials) == 3  # nothing run twice
    assert len(again["rows"]) == 3
    extended = run_search(
        settings(tuner=tuner, epochs_per_trial=epochs, max_trials=5), out,
        log=lambda _: None,
    )
    assert len(fake_trials) == 5 and len(set(fake_trials)) == 5
    table = read_table(out)
    assert len(table) == 5 and {r["status"] for r in table} == {"COMPLETED"}
    scores = [float(r["val_probe_acc"]) for r in table]
    assert scores == sorted(scores, reverse=True)
    for row in table:  # the table's metric is the trial's own score
        config = TrainConfig(lr=float(row["lr"]))
        assert float(row["val_probe_acc"]) == pytest.approx(fake_score(config))
    with open(os.path.join(out, "best.json")) as f:
        best = TrainConfig.from_dict(json.load(f))
    assert fake_score(best) == pytest.approx(max(scores))
    assert extended["best"]["trial"] == table[0]["trial"]
    if tuner == "hyperband":
        # Epoch budgets 1 then 3 (factor 3); the 4th trial continues one.
        assert {r["epochs"] for r in table} == {"1", "3"}
        continued = [r for r in table if r.get("tuner/trial_id")]
        assert continued and all(r["epochs"] == "3" for r in continued)


def test_an_ended_trial_left_ongoing_in_the_oracle_is_not_run_again(
        tmp_path, fake_trials):
    # A chief's oracle is saved last while its final trial still counts as
    # ongoing (KerasTuner saves before it drops it); reloading queues such
    # trials for a retry.
    out = str(tmp_path / "search")
    run_search(settings(max_trials=2), out, log=lambda _: None)
    path = os.path.join(out, "kt", "oracle.json")
    with open(path) as f:
        state = json.load(f)
    state["ongoing_trials"] = {"tuner0": "1"}
    with open(path, "w") as f:
        json.dump(state, f)
    summary = run_search(settings(max_trials=2), out, log=lambda _: None)
    assert fake_trials == ["0", "1"]
    assert len(summary["rows"]) == 2


def test_failed_trials_are_recorded_and_the_search_goes_on(
        tmp_path, fake_trials, monkeypatch):
    out = str(tmp_path / "search")

    def failing(self, trial, *args, **kwargs):
        fake_trials.append(trial.trial_id)
        if trial.trial_id == "1":
            raise kt.errors.FailedTrialError("Training stopped: NaN loss")
        return {"val_probe_acc": 0.5}

    monkeypatch.setattr(DIMTuner, "run_trial", failing)
    summary = run_search(settings(), out, log=lambda _: None)
    assert fake_trials == ["0", "1", "2"]
    table = read_table(out)
    assert [r["status"] for r in table] == ["COMPLETED", "COMPLETED", "FAILED"]
    assert table[2]["trial"] == "1"
    assert table[2]["message"] == "Training stopped: NaN loss"
    assert summary["best"]["trial"] == "0"


def test_too_many_failures_in_a_row_stop_the_search(tmp_path, fake_trials,
                                                    monkeypatch):
    out = str(tmp_path / "search")
    messages = []

    def failing(self, trial, *args, **kwargs):
        fake_trials.append(trial.trial_id)
        raise kt.errors.FailedTrialError("Training stopped: NaN loss")

    monkeypatch.setattr(DIMTuner, "run_trial", failing)
    with pytest.raises(RunError, match="Search stopped"):
        run_search(settings(max_failed=2, max_trials=5), out,
                   log=messages.append)
    assert len(fake_trials) == 2
    assert [r["status"] for r in read_table(out)] == ["FAILED", "FAILED"]
    assert not os.path.exists(os.path.join(out, "best.json"))
    assert "Trial 0 failed" in messages[2] and "NaN" in messages[2]


def test_other_settings_in_the_same_directory_are_refused(tmp_path,
                                                          fake_trials):
    out = str(tmp_path / "search")
    run_search(settings(max_trials=1), out, log=lambda _: None)
    with pytest.raises(RunError, match=r"other settings \(pins\)"):
        run_search(settings(pins={"estimator": "nce"}), out,
                   log=lambda _: None)
    with pytest.raises(RunError, match=r"other settings \(tuner\)"):
        run_search(settings(tuner="bayesian"), out, log=lambda _: None)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tuner", "grid"], "Received: tuner='grid'"),
        (["--max-trials", "0"], "Received: max_trials=0"),
        (["--probe", "svm"], "Received: probe='svm'"),
        (["--layer", "local"], "Received: layer='local'"),
        (["--alpha", "0", "--beta", "0"], "alpha=0.0, beta=0.0"),
        (["--estimator", "mine"], "Received: estimator='mine'"),
        (["--dataset", "mnist"], "Received: dataset='mnist'"),
        (["--val-fraction", "1"], "Received: val_fraction=1.0"),
        (["--batch-size", "1"], "Received: batch_size=1"),
        (["--score", "few"], "Received: --score=few"),
        (["--score", "0"], "Received: labels_per_class=0"),
        (["--score", "5", "--probe", "mlp"],
         "probe='mlp', labels_per_class=5"),
    ],
)
def test_bad_options_fail_with_one_line(tmp_path, args, message):
    out = tmp_path / "search"
    result = CliRunner().invoke(main, ["tune", "--out", str(out)] + args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert message in lines[0]
    assert not out.exists()


@pytest.mark.slow  # a search of two trials, then a CLI run
def test_tiny_search_then_train_the_best_config(tmp_path):
    """Three real trials; `train --config best.json` repeats the best."""
    out = str(tmp_path / "search")
    result = CliRunner().invoke(
        main, ["tune", "--max-trials", "3", "--out", out]
        + tuning_helpers.TINY_ARGS,
    )
    assert result.exit_code == 0, result.output
    for i in range(3):
        assert f"Trial {i} started" in result.output
        assert f"Trial {i} done" in result.output
    table = read_table(out)
    assert len(table) == 3
    assert {r["status"] for r in table} == {"COMPLETED"}
    scores = [float(r["val_probe_acc"]) for r in table]
    assert scores == sorted(scores, reverse=True)
    # 24 validation images: every score is a whole number of them.
    assert all(0 <= s <= 1 and abs(s * 24 - round(s * 24)) < 1e-9
               for s in scores)
    for row in table:
        assert float(row["alpha"]) + float(row["beta"]) > 0
        assert np.isfinite(float(row["loss"]))
    best_path = os.path.join(out, "best.json")
    with open(best_path) as f:
        best = json.load(f)
    best_trial = table[0]["trial"]
    trial_run = os.path.join(out, "kt", f"trial_{best_trial}", "run")
    with open(os.path.join(trial_run, "config.json")) as f:
        assert json.load(f) == best  # what the best trial trained
    for name in ("estimator", "alpha", "beta", "gamma", "lr"):
        assert str(best[name]) == table[0][name]

    run = str(tmp_path / "run")
    trained = CliRunner().invoke(
        main, ["train", "--config", best_path, "--out", run, "--no-evaluate"]
    )
    assert trained.exit_code == 0, trained.output
    with open(os.path.join(run, "config.json")) as f:
        assert json.load(f) == best
    with open(os.path.join(run, "history.csv")) as f:
        rerun_loss = float(list(csv.DictReader(f))[-1]["loss"])
    assert rerun_loss == pytest.approx(float(table[0]["loss"]), rel=1e-3)


def test_a_diverged_training_is_a_failed_trial(tmp_path, monkeypatch):
    import dim_keras.training

    def diverging(config, run_dir, **kwargs):
        raise RunError("Training stopped: a non-finite loss at epoch 1")

    monkeypatch.setattr(dim_keras.training, "train", diverging)
    out = str(tmp_path / "search")
    with pytest.raises(RunError, match="Search stopped"):
        run_search(settings(max_trials=2, max_failed=2), out,
                   log=lambda _: None)
    table = read_table(out)
    assert [r["status"] for r in table] == ["FAILED", "FAILED"]
    assert table[0]["message"] == (
        "Training stopped: a non-finite loss at epoch 1"
    )


def wait_for_line(process, prefix, lines):
    for line in process.stdout:
        lines.append(line)
        if line.startswith(prefix):
            return
    raise AssertionError(f"no line {prefix!r} in:\n{''.join(lines)}")


def snapshot(out, trial_id):
    """Bytes and modification times of a finished trial's files."""
    files = {}
    trial_dir = os.path.join(out, "kt", f"trial_{trial_id}")
    for root, _, names in os.walk(trial_dir):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[path] = (f.read(), os.stat(path).st_mtime_ns)
    return files


@pytest.mark.slow
def test_killed_search_continues_without_losing_or_repeating_trials(tmp_path):
    out = str(tmp_path / "search")
    command = tuning_helpers.cli_command(
        "tune", "--max-trials", "3", "--out", out, *tuning_helpers.TINY_ARGS
    )
    env = tuning_helpers.cli_env(PYTHONUNBUFFERED="1")
    first = subprocess.Popen(command, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env,
                             cwd=tuning_helpers.ROOT)
    lines = []
    try:
        wait_for_line(first, "Trial 2 started", lines)  # 0 and 1 are done
    finally:
        first.kill()  # SIGKILL, mid-trial
        first.wait()
    assert "Trial 1 done" in "".join(lines)
    finished = {**snapshot(out, "0"), **snapshot(out, "1")}

    second = subprocess.run(command, capture_output=True, text=True, env=env,
                            cwd=tuning_helpers.ROOT, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "2 of 3 trials done" in second.stdout
    assert "Trial 0 started" not in second.stdout
    assert "Trial 1 started" not in second.stdout
    assert "Trial 2 started" in second.stdout
    assert "Trial 2 done" in second.stdout
    assert {**snapshot(out, "0"), **snapshot(out, "1")} == finished
    table = read_table(out)
    assert sorted(r["trial"] for r in table) == ["0", "1", "2"]
    assert {r["status"] for r in table} == {"COMPLETED"}
    assert os.path.exists(os.path.join(out, "best.json"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers_share_one_search(tmp_path):
    out = str(tmp_path / "search")
    command = tuning_helpers.cli_command(
        "tune", "--max-trials", "4", "--out", out, *tuning_helpers.TINY_ARGS
    )
    cluster = {"KERASTUNER_ORACLE_IP": "127.0.0.1",
               "KERASTUNER_ORACLE_PORT": str(free_port())}
    processes = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = tuning_helpers.cli_env(KERASTUNER_TUNER_ID=tuner_id, **cluster)
        processes[tuner_id] = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=env, cwd=tuning_helpers.ROOT,
        )
    outputs = {}
    try:
        for tuner_id, process in processes.items():
            outputs[tuner_id] = process.communicate(timeout=900)[0]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    for tuner_id, process in processes.items():
        assert process.returncode == 0, outputs[tuner_id]

    ran = {}
    for worker in ("tuner0", "tuner1"):
        assert "Worker done" in outputs[worker]
        ran[worker] = set(re.findall(r"^Trial (\d+) done", outputs[worker],
                                     flags=re.M))
        assert ran[worker], outputs[worker]  # each worker ran trials
    assert not ran["tuner0"] & ran["tuner1"]  # and no trial twice
    table = read_table(out)
    assert sorted(r["trial"] for r in table) == sorted(
        ran["tuner0"] | ran["tuner1"]
    )
    assert len(table) == 4
    assert {r["status"] for r in table} == {"COMPLETED"}
    assert "Best: trial" in outputs["chief"]
    assert os.path.exists(os.path.join(out, "best.json"))

    # The same search, continued alone: nothing left to run.
    alone = subprocess.run(command, capture_output=True, text=True,
                           env=tuning_helpers.cli_env(),
                           cwd=tuning_helpers.ROOT, timeout=600)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert "4 of 4 trials done" in alone.stdout
    assert "started" not in alone.stdout


@pytest.mark.slow
def test_hyperband_trial_continues_the_run_it_was_promoted_from(tmp_path):
    # Budgets 1 and 3 epochs (factor 3): three 1-epoch trials, then the
    # best of them trains on to epoch 3 as trial 3.
    out = str(tmp_path / "search")
    summary = run_search(settings(tuner="hyperband", epochs_per_trial=3,
                                  max_trials=4), out, log=lambda _: None)
    promoted = [r for r in summary["rows"] if r.get("tuner/trial_id")]
    assert [r["trial"] for r in promoted] == ["3"]
    past = promoted[0]["tuner/trial_id"]
    first_round = {r["trial"]: r["val_probe_acc"] for r in summary["rows"]
                   if r["trial"] != "3"}
    assert first_round[past] == max(first_round.values())

    def history(trial_id):
        path = os.path.join(out, "kt", f"trial_{trial_id}", "run",
                            "history.csv")
        with open(path) as f:
            return list(csv.DictReader(f))

    assert [r["epoch"] for r in history("3")] == ["1", "2", "3"]
    assert history("3")[0] == history(past)[0]  # epoch 1 is the past run's
    assert promoted[0]["epochs"] == 3


def test_search_eta_counts_ended_trials_at_this_pace():
    from types import SimpleNamespace

    from dim_keras.tuning.tuner import search_eta

    trials = [SimpleNamespace(status=s) for s in
              ("COMPLETED", "FAILED", "RUNNING")]
    assert search_eta(trials, 5, [30.0, 90.0]) == (
        "; 2 of 5 trials ended, ETA 3 min 00 s")
    assert search_eta(trials, None, [30.0]) == ""
    assert search_eta(trials, 2, [30.0]) == "; 2 of 2 trials ended"
