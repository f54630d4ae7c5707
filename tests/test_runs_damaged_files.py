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

from dim_keras import checkpointing
from dim_keras import runs
from dim_keras import training
from dim_keras.apps.cli import main
from dim_keras.config import TrainConfig
from tests.helpers import TRAINED_RUN_CLI as CLI_SETTINGS
from tests.helpers import replace_file
from tests.helpers import trained_run_config


# Each damage replaces the file instead of writing into it: a run copy's
# large files are hard links to the session's run (see `run_copy`).


def truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    replace_file(path, data[: max(1, len(data) // 2)])


def empty(path):
    replace_file(path, b"")


def random_bytes(path):
    replace_file(path, np.random.default_rng(0).bytes(4096))


def wrong_json_type(path):
    replace_file(path, json.dumps([1, 2, 3]).encode())


def another_programs(path):
    if path.endswith(".h5"):
        os.remove(path)
        with h5py.File(path, "w") as f:
            f["table"] = np.arange(10)
    elif path.endswith(".keras"):
        shutil.make_archive(path[: -len(".keras")] + "-zip", "zip",
                            os.path.dirname(__file__), "fake_examples")
        os.replace(path[: -len(".keras")] + "-zip.zip", path)
    elif path.endswith(".csv"):
        replace_file(path, b"name,colour\napple,red\n")
    else:
        replace_file(path, json.dumps({"name": "my-app", "version": 3})
                     .encode())


DAMAGES = [truncate, empty, random_bytes, wrong_json_type, another_programs]


def snapshot(directory):
    """Every file under `directory`, as a fingerprint of its content.

    Files up to 1 MiB are hashed. Larger ones (the checkpoints, the
    encoder) are fingerprinted by inode, size and modification time in
    nanoseconds, which any write in place or atomic replacement changes,
    instead of hashing 140 MB for every test.
    """
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            info = os.stat(path)
            if info.st_size > 2 ** 20:
                digest = (info.st_ino, info.st_size, info.st_mtime_ns)
            else:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            files[os.path.relpath(path, directory)] = digest
    return files


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
def test_damaged_newest_checkpoint_falls_back_to_the_previous(run_copy,
                                                              damage):
    # What a resumed run restores, without the training after it: the
    # checkpoints are read (`runs.resume_points`) and the newest whose
    # weights load is restored (`checkpointing.restore`).
    newest = os.path.join(run_copy, runs.CHECKPOINT_FILE)
    damage(newest)
    messages = []
    points = runs.resume_points(run_copy, trained_run_config(epochs=3),
                                warn=messages.append)
    recorded = TrainConfig.from_dict(
        runs.read_config(os.path.join(run_copy, runs.CONFIG_FILE)))
    model = training.build_model(recorded, 32, num_classes=10)
    epochs_done, history = checkpointing.restore(model, points,
                                                 messages.append)
    warnings = [m for m in messages if m.startswith("Warning:")]
    assert len(warnings) == 1 and newest in warnings[0]
    assert epochs_done == 1 and [row["epoch"] for row in history] == [1]


def test_damaged_newest_checkpoint_resumes_from_the_previous(run_copy):
    newest = os.path.join(run_copy, runs.CHECKPOINT_FILE)
    truncate(newest)
    messages = []
    config = trained_run_config(epochs=3)
    result = training.train(config, run_copy, verbose=0, log=messages.append)
    warnings = [m for m in messages if m.startswith("Warning:")]
    assert len(warnings) == 1 and newest in warnings[0]
    assert "from epoch 2" in " ".join(messages)
    assert [row["epoch"] for row in result["history"]] == [1, 2, 3]
    assert runs.read_run_state(run_copy, config)[0] == 3
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
