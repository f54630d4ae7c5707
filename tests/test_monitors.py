"""Training monitors: throughput in the logs, TensorBoard event files."""

import glob
import os

import numpy as np
import pytest

from dim_keras import monitors
from dim_keras.config import TrainConfig
from dim_keras.training import train


def test_example_grid_puts_views_side_by_side():
    views = np.zeros((6, 2, 3, 4, 3), dtype="float32")
    views[:, 1] = 255.0
    grid = monitors.example_grid(views, count=4)
    assert grid.shape == (4, 3, 8, 3) and grid.dtype == np.uint8
    assert (grid[:, :, :4] == 0).all() and (grid[:, :, 4:] == 255).all()
    single = monitors.example_grid(np.full((2, 3, 4, 3), 300.0))
    assert single.shape == (2, 3, 4, 3) and (single == 255).all()
    with pytest.raises(ValueError, match="Received: shape=\\(3, 4\\)"):
        monitors.example_grid(np.zeros((3, 4)))


def test_throughput_is_steps_times_batch_over_the_epoch_time(monkeypatch):
    clock = iter([10.0, 12.5])
    monkeypatch.setattr(monitors.time, "perf_counter", lambda: next(clock))
    callback = monitors.Throughput(batch_size=64)
    callback.set_params({"steps": 10, "epochs": 1, "verbose": 0})
    logs = {"loss": 1.0}
    callback.on_epoch_begin(0)
    callback.on_epoch_end(0, logs)
    assert logs["images_per_second"] == pytest.approx(640 / 2.5)


def _scalars(directory):
    from tensorflow.core.util import event_pb2
    import tensorflow as tf

    found = {}
    for path in glob.glob(os.path.join(directory, "**", "events.*"),
                          recursive=True):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                found.setdefault(value.tag, []).append(event.step)
    return found


def test_a_run_writes_tensorboard_scalars_and_example_inputs(tmp_path):
    run = str(tmp_path / "run")
    config = TrainConfig(epochs=2, steps_per_epoch=2, batch_size=8,
                         critic_units=8, seed=0)
    train(config, run, verbose=0, log=lambda _: None)
    tags = _scalars(os.path.join(run, "tensorboard"))
    for key in ("epoch_loss", "epoch_local_mi", "epoch_global_mi",
                "epoch_prior_loss", "epoch_discriminator_loss",
                "epoch_gradient_penalty", "epoch_learning_rate",
                "epoch_images_per_second", "epoch_online_probe_y_acc",
                "epoch_online_probe_conv_acc", "epoch_online_probe_loss"):
        assert tags.get(key) == [0, 1], key
    assert tags.get("epoch_knn_y_acc", [])[:1] == [0]
    assert "training_inputs" in tags
    with open(os.path.join(run, "history.csv")) as f:
        header = f.readline().strip().split(",")
    assert "images_per_second" in header


def test_tensorboard_takes_the_shape_1_logs_of_tf_strategies(tmp_path):
    import tensorflow as tf

    board = monitors.ScalarTensorBoard(log_dir=str(tmp_path),
                                       write_graph=False)
    board.set_model(_tiny_model())
    board.on_train_begin()
    board.on_train_batch_begin(0)
    board.on_train_batch_end(0, {"loss": tf.constant([2.0])})
    board.on_epoch_end(0, {"loss": tf.constant([2.0])})
    board.on_train_end()
    assert _scalars(str(tmp_path))["epoch_loss"] == [0]


def _tiny_model():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _estimate_after(steps, seconds_per_step, threshold):
    from dim_keras import monitors

    lines = []
    now = [0.0]
    estimate = monitors.EpochEstimate(32, "one device", lines.append,
                                      threshold_seconds=threshold)
    estimate.set_params({"steps": steps})
    original = monitors.time.perf_counter
    monitors.time.perf_counter = lambda: now[0]
    try:
        for batch in range(6):
            now[0] = batch * seconds_per_step  # the host clock at its end
            estimate.on_train_batch_end(batch)
    finally:
        monitors.time.perf_counter = original
    return estimate.estimate, lines


def test_a_long_epoch_is_announced_once_from_its_first_steps():
    # 2 s a step (16 images/s), 1000 steps: 2000 s, over the 600 s line.
    seconds, lines = _estimate_after(1000, 2.0, 600.0)
    assert seconds == 2000.0
    assert len(lines) == 1
    assert "about 33 min on one device (16.0 images/s" in lines[0]
    assert "--steps-per-epoch" in lines[0] and "GPU" in lines[0]


def test_a_short_epoch_says_nothing():
    seconds, lines = _estimate_after(100, 2.0, 600.0)
    assert seconds == 200.0 and lines == []
