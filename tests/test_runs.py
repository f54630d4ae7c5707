"""The run directory: paths, history, run state, and loading its encoder."""

import json
import os

import pytest

from dim_keras import runs
from dim_keras.config import TrainConfig
from dim_keras.encoder_file import save_encoder
from dim_keras.networks import basic32x32


def test_run_paths_name_every_file(tmp_path):
    paths = runs.run_paths(str(tmp_path))
    assert paths["encoder"] == os.path.join(str(tmp_path), "encoder.keras")
    assert paths["checkpoint"].endswith("checkpoint.weights.h5")
    assert runs.ENCODER_METADATA_FILE == "encoder.json"


def test_history_csv_puts_the_epoch_first():
    text = runs.history_csv([{"loss": 1.5, "epoch": 1, "global_mi": 0.0}])
    assert text == "epoch,global_mi,loss\n1,0.0,1.5\n"
    assert runs.history_csv([]) == ""


def test_an_empty_directory_is_a_new_run(tmp_path):
    assert runs.read_run_state(str(tmp_path), TrainConfig()) == (0, [])


def test_other_settings_are_refused_and_an_unset_encoder_is_the_runs(
        tmp_path):
    run_dir = str(tmp_path)
    runs.write_config(run_dir, TrainConfig(encoder="basic32x32", epochs=2))
    # No checkpoint yet: nothing to resume, but the settings are compared.
    assert runs.read_run_state(run_dir, TrainConfig()) == (0, [])
    assert runs.read_run_state(
        run_dir, TrainConfig(encoder="basic32x32", epochs=9)) == (0, [])
    with pytest.raises(runs.RunError, match=r"other settings \(encoder\)"):
        runs.read_run_state(run_dir, TrainConfig(encoder="alex64x64"))
    with pytest.raises(runs.RunError, match=r"other settings \(lr\)"):
        runs.read_run_state(run_dir, TrainConfig(lr=1.0))


def test_read_run_config_needs_a_trained_encoder(tmp_path):
    with pytest.raises(runs.RunError, match="No run directory"):
        runs.read_run_config(str(tmp_path / "missing"))
    runs.write_config(str(tmp_path), TrainConfig())
    with pytest.raises(runs.RunError, match="needs config.json and encoder"):
        runs.read_run_config(str(tmp_path))


def test_load_encoder_takes_a_run_directory_or_a_file(tmp_path):
    encoder = basic32x32(image_size=16, representation_dim=8)
    path = os.path.join(str(tmp_path), runs.ENCODER_FILE)
    save_encoder(encoder, path, info={"dataset": "digits", "epochs_done": 3,
                                      "other": 1})
    for source in (str(tmp_path), path):
        loaded = runs.load_encoder(source)
        assert set(loaded.output) == {"local", "conv", "fc", "y"}
    assert runs.read_encoder_info(path) == {"dataset": "digits",
                                            "epochs_done": 3}
    with open(path + ".txt", "w") as f:
        json.dump({}, f)
    with pytest.raises(ValueError, match="Expected a .keras file"):
        runs.load_encoder(path + ".txt")
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ValueError, match="No encoder.keras in this"):
        runs.load_encoder(str(tmp_path / "empty"))
