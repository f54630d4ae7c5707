"""Damaged run and search files: one line naming the file, exit code 2,
nothing else changed; a damaged newest checkpoint falls back a epoch."""

import hashlib
import json
import os
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from dim_keras import runs
from dim_keras import training
from dim_keras.apps.cli import main
from dim_keras.config import TrainConfig

SETTINGS = dict(dataset="digits", encoder="basic32x32", batch_size=16,
                critic_units=16, steps_per_epoch=2, jit_compile=False)
CLI_SETTINGS = ["--dataset", "digits", "--encoder", "basic32x32",
                "--batch-size", "16", "--critic-units", "16",
                "--steps-per-epoch", "2", "--no-jit"]


def truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: max(1, len(data) // 2)])


def empty(path):
    open(path, "wb").close()


def random_bytes(path):
    with open(path, "wb") as f:
        f.write(np.random.default_rng(0).bytes(4096))


def wrong_json_type(path):
    with open(path, "w") as f:
        json.dump([1, 2, 3], f)


def another_programs(path):
    if path.endswith(".h5"):
        with h5py.File(path, "w") as f:
            f["table"] = np.arange(10)
    elif path.endswith(".keras"):
        shutil.make_archive(path[: -len(".keras")] + "-zip", "zip",
                            os.path.dirname(__file__), "fake_examples")
        os.replace(path[: -len(".keras")] + "-zip.zip", path)
    elif path.endswith(".csv"):
        with open(path, "w") as f:
            f.write("name,colour\napple,red\n")
    else:
        with open(path, "w") as f:
            json.dump({"name": "my-app", "version": 3}, f)


DAMAGES = [truncate, empty, random_bytes, wrong_json_type, another_programs]


def snapshot(directory):
    """Every file under `directory` with a hash of its content."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            files[os.path.relpath(path, directory)] = digest
    return files


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("trained") / "run")
    training.train(TrainConfig(epochs=2, **SETTINGS), run_dir, verbose=0,
                   log=lambda message: None)
    return run_dir


@pytest.fixture
def run_copy(trained_run, tmp_path):
    copy = str(tmp_path / "run")
    shutil.copytree(trained_run, copy)
    return copy


def assert_one_line_error(result, damaged):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and damaged in lines[0]
    assert "Traceback" not in result.output


def test_a_run_keeps_its_previous_checkpoint(trained_run):
    names = sorted(os.listdir(trained_run))
    assert runs.CHECKPOINT_FILE in names
    assert runs.PREVIOUS_CHECKPOINT_FILE in names
    assert not [n for n in names if "partial" in n]
    newest = runs.read_checkpoint_state(
        os.path.join(trained_run, runs.CHECKPOINT_FILE))
    previous = runs.read_checkpoint_state(
        os.path.join(trained_run, runs.PREVIOUS_CHECKPOINT_FILE))
    assert (newest["epochs_done"], previous["epochs_done"]) == (2, 1)


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_resume_with_a_damaged_config_changes_nothing(run_copy, damage):
    damage(os.path.join(run_copy, runs.CONFIG_FILE))
    before = snapshot(run_copy)
    result = CliRunner().invoke(
        main, ["train", "--out", run_copy, "--epochs", "3", "--no-evaluate"]
        + CLI_SETTINGS)
    assert_one_line_error(result, runs.CONFIG_FILE)
    assert "--out" in result.output
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_damaged_newest_checkpoint_resumes_from_the_previous(run_copy,
                                                             damage):
    newest = os.path.join(run_copy, runs.CHECKPOINT_FILE)
    damage(newest)
    messages = []
    result = training.train(TrainConfig(epochs=3, **SETTINGS), run_copy,
                            verbose=0, log=messages.append)
    warnings = [m for m in messages if m.startswith("Warning:")]
    assert len(warnings) == 1 and newest in warnings[0]
    assert "from epoch 2" in " ".join(messages)
    assert [row["epoch"] for row in result["history"]] == [1, 2, 3]
    assert runs.read_run_state(run_copy, TrainConfig(epochs=3, **SETTINGS))[
        0] == 3
    with open(os.path.join(run_copy, runs.HISTORY_FILE)) as f:
        assert [line.split(",")[0] for line in f.read().split()[1:]] == [
            "1", "2", "3"]


@pytest.mark.parametrize("damage", [truncate, random_bytes, another_programs],
                         ids=lambda d: d.__name__)
def test_no_readable_checkpoint_stops_with_the_way_forward(run_copy, damage):
    for name in (runs.CHECKPOINT_FILE, runs.PREVIOUS_CHECKPOINT_FILE):
        damage(os.path.join(run_copy, name))
    before = snapshot(run_copy)
    result = CliRunner().invoke(
        main, ["train", "--out", run_copy, "--epochs", "3", "--no-evaluate"]
        + CLI_SETTINGS)
    assert_one_line_error(result, "checkpoint")
    assert "another --out" in result.output
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("name", [runs.CONFIG_FILE, runs.ENCODER_FILE,
                                  runs.HISTORY_FILE])
@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_evaluate_names_the_damaged_file(run_copy, name, damage):
    if name.endswith(".csv") and damage is wrong_json_type:
        pytest.skip("a JSON list is a valid one-column CSV table")
    damage(os.path.join(run_copy, name))
    before = snapshot(run_copy)
    result = CliRunner().invoke(main, ["evaluate", run_copy])
    assert_one_line_error(result, name)
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("name", [runs.ENCODER_FILE,
                                  runs.ENCODER_METADATA_FILE])
@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_export_names_the_damaged_file(run_copy, name, damage):
    damage(os.path.join(run_copy, name))
    before = snapshot(run_copy)
    result = CliRunner().invoke(main, ["export", run_copy, "--format",
                                       "keras"])
    assert_one_line_error(result, name)
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("relative", ["search.json", "kt/oracle.json",
                                      "kt/trial_0/trial.json"])
@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_tune_names_the_damaged_file(tmp_path, relative, damage):
    out = tmp_path / "search"
    path = out / relative
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    damage(str(path))
    if damage is another_programs and relative != "search.json":
        pytest.skip("KerasTuner's own files are checked as JSON objects")
    before = snapshot(str(out))
    result = CliRunner().invoke(main, ["tune", "--out", str(out),
                                       "--max-trials", "1"])
    if damage is another_programs:
        # A JSON object of other keys: the search's settings differ.
        assert result.exit_code == 1 and "other settings" in result.output
    else:
        assert_one_line_error(result, relative.split("/")[-1])
    assert snapshot(str(out)) == before


def test_a_damaged_config_file_option_is_one_line(tmp_path):
    path = tmp_path / "best.json"
    wrong_json_type(str(path))
    result = CliRunner().invoke(main, ["train", "--config", str(path),
                                       "--out", str(tmp_path / "run")])
    assert_one_line_error(result, "best.json")
    assert not (tmp_path / "run").exists()
