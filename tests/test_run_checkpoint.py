"""RunCheckpoint: finiteness checked once per epoch, no per-batch reads."""

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
