"""Training on streamed TFDS data, and the new settings in run configs."""

import json

import h5py
import tensorflow_datasets as tfds

from dim_keras import runs
from dim_keras.data import tfds_data
from dim_keras.config import TrainConfig
from dim_keras.runs import read_run_state
from dim_keras.training import train


def test_train_streams_a_tfds_dataset_with_augmentation(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_data, "reachable", lambda *a, **k: True)
    config = TrainConfig(
        dataset="cifar10", data_dir=str(tmp_path / "data"), epochs=1,
        batch_size=4, critic_units=16, jit_compile=False, occlusion=True,
        augment=True,  # CIFAR's recipe trains without it
    )
    messages = []
    with tfds.testing.mock_data(num_examples=8):
        result = train(config, str(tmp_path / "run"), verbose=0,
                       log=messages.append)
    assert result["trained"] and result["epochs_done"] == 1
    assert any("random crop (pad 4) + horizontal flip, occlusion" in m
               for m in messages)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["augment"] is True and saved["encoder"] == "basic32x32"


def test_a_streamed_dataset_gets_the_online_monitors(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_data, "reachable", lambda *a, **k: True)
    config = TrainConfig(
        dataset="cifar10", data_dir=str(tmp_path / "data"), epochs=1,
        batch_size=32, critic_units=16, jit_compile=False, knn_every=1,
    )
    with tfds.testing.mock_data(num_examples=128):
        result = train(config, str(tmp_path / "run"), verbose=0,
                       log=lambda _: None)
    row = result["history"][0]
    for key in ("online_probe_y_acc", "online_probe_conv_acc", "knn_y_acc",
                "knn_conv_acc"):
        assert 0.0 <= row[key] <= 1.0, key
    assert row["online_probe_loss"] > 0


def test_runs_saved_before_these_settings_still_resume(tmp_path):
    config = TrainConfig(encoder="basic32x32", epochs=3)
    old = config.to_dict()
    del old["augment"], old["occlusion"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    # The checkpoint commits the state (its attribute); weights are not read.
    with h5py.File(tmp_path / runs.CHECKPOINT_FILE, "w") as f:
        f.attrs[runs.STATE_ATTR] = json.dumps(
            {"epochs_done": 1, "history": [{"epoch": 1}]})
    assert read_run_state(str(tmp_path), config) == (1, [{"epoch": 1}])
