"""RunCheckpoint: finiteness checked once per epoch, no per-batch reads."""

import json
import os

import keras
import numpy as np

from dim_keras import checkpointing
from dim_keras import runs


def tiny_model():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_no_batch_hook_so_steps_never_wait_for_the_host():
    assert (
        checkpointing.RunCheckpoint.on_train_batch_end
        is keras.callbacks.Callback.on_train_batch_end
    )


def test_non_finite_epoch_stops_without_saving(tmp_path):
    model = tiny_model()
    history = []
    checkpoint = checkpointing.RunCheckpoint(
        str(tmp_path), model, history,
        save_encoder=lambda encoder, path, info: encoder.save(path),
    )
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"loss": 1.5})
    assert history == [{"epoch": 1, "loss": 1.5}]
    assert os.path.exists(tmp_path / runs.STATE_FILE)
    before = (tmp_path / runs.STATE_FILE).read_text()
    checkpoint.on_epoch_end(1, {"loss": np.float32("nan")})
    assert model.stop_training
    assert checkpoint.diverged_at[0] == 2
    assert len(history) == 1
    assert (tmp_path / runs.STATE_FILE).read_text() == before


def test_a_forced_spike_never_costs_the_best_encoder(tmp_path):
    model = tiny_model()
    saved = {}

    def save(encoder, path, info):
        encoder.save(path)
        with open(os.path.splitext(path)[0] + ".json", "w") as f:
            json.dump(info, f)
        saved[os.path.basename(path)] = encoder.get_weights()[0].copy()

    checkpoint = checkpointing.RunCheckpoint(str(tmp_path), model, [],
                                             save_encoder=save)
    checkpoint.set_model(model)
    # The monitor rises for two epochs, then a spike: the weights change
    # and the held-out accuracy falls.
    for epoch, accuracy in enumerate([0.5, 0.7, 0.2]):
        model.layers[-1].kernel.assign(np.full((2, 1), epoch, "float32"))
        checkpoint.on_epoch_end(epoch, {"loss": 1.0,
                                        "online_probe_y_acc": accuracy})
    best = tmp_path / checkpointing.BEST_ENCODER_FILE
    assert best.exists()
    np.testing.assert_array_equal(saved["encoder.best.keras"],
                                  np.full((2, 1), 1.0))  # epoch 2's
    np.testing.assert_array_equal(saved[runs.ENCODER_FILE],
                                  np.full((2, 1), 2.0))  # the last one
    assert checkpoint.best == {"monitor": "online_probe_y_acc",
                               "value": 0.7, "epoch": 2}
    # A resumed run reads its best back: only a better epoch replaces it.
    resumed = checkpointing.RunCheckpoint(str(tmp_path), model, [],
                                          save_encoder=save)
    resumed.set_model(model)
    assert resumed.best["epoch"] == 2
    resumed.on_epoch_end(3, {"loss": 1.0, "online_probe_y_acc": 0.65})
    assert resumed.best["epoch"] == 2
    resumed.on_epoch_end(4, {"loss": 1.0, "online_probe_y_acc": 0.9})
    assert resumed.best == {"monitor": "online_probe_y_acc", "value": 0.9,
                            "epoch": 5}


def test_without_a_monitor_no_best_encoder_is_kept(tmp_path):
    model = tiny_model()
    checkpoint = checkpointing.RunCheckpoint(
        str(tmp_path), model, [],
        save_encoder=lambda encoder, path, info: encoder.save(path))
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"loss": 1.0})
    assert not (tmp_path / checkpointing.BEST_ENCODER_FILE).exists()
    assert checkpoint.best is None


def test_a_resumed_run_keeps_its_recipe_and_encoder(tmp_path):
    import json

    from dim_keras.checkpointing import recorded_recipe
    from dim_keras.recipes import REFERENCE

    assert recorded_recipe(str(tmp_path)) is None
    (tmp_path / "config.json").write_text(json.dumps(
        {"dataset": "digits", "encoder": "basic64x64", "views": 2,
         "lr": 0.001}))
    recipe = recorded_recipe(str(tmp_path))
    assert (recipe["encoder"], recipe["views"], recipe["lr"]) == (
        "basic64x64", 2, 0.001)
    # What the run did not record is the reference's, which it then used:
    # a run from before learning-rate schedules kept its constant rate.
    assert recipe["critic_norm"] == REFERENCE["critic_norm"]
    assert recipe["lr_schedule"] == "constant"
