"""The online monitors: the held-out part, the kNN period, the callback."""

import keras
import numpy as np
import pytest

from dim_keras import DeepInfoMax
from dim_keras import networks
from dim_keras import online_monitors
from dim_keras.online_monitors import OnlineMonitors
from dim_keras.online_monitors import automatic_knn_every
from dim_keras.online_monitors import held_out_part


def _images(n, size=4):
    return np.repeat(np.arange(n, dtype=np.uint8), size * size * 3).reshape(
        n, size, size, 3)


def test_held_out_part_hides_its_labels_from_the_probe():
    labels = np.array([0, 1, 2, -1] * 25, dtype=np.int64)
    part = held_out_part(_images(100), labels, seed=3, fraction=0.1)
    # 10% of the 75 labelled images, rounded: 8 held out.
    assert len(part.labels) == 8
    held = part.images[:, 0, 0, 0].astype(int)
    bank = part.bank_images[:, 0, 0, 0].astype(int)
    assert not set(held) & set(bank)
    assert len(bank) == 75 - 8
    assert (labels[held] >= 0).all() and (labels[bank] >= 0).all()
    np.testing.assert_array_equal(part.labels, labels[held])
    np.testing.assert_array_equal(part.bank_labels, labels[bank])
    expected = labels.copy()
    expected[held] = -1
    np.testing.assert_array_equal(part.probe_labels, expected)
    again = held_out_part(_images(100), labels, seed=3, fraction=0.1)
    np.testing.assert_array_equal(again.labels, part.labels)


def test_held_out_part_limits_and_unlabelled_data():
    labels = np.arange(50, dtype=np.int64) % 5
    part = held_out_part(_images(50), labels, limit=3, bank_limit=10)
    assert len(part.labels) == 3 and len(part.bank_labels) == 10
    assert held_out_part(_images(5), np.full(5, -1)) is None
    assert held_out_part(_images(5), np.zeros(5)) is None  # one class
    with pytest.raises(ValueError, match="4 images, 3 labels"):
        held_out_part(_images(4), np.zeros(3))


@pytest.mark.parametrize("monitor, epoch, expected", [
    (1.0, 100.0, 1),   # 1% of an epoch: every epoch
    (10.0, 100.0, 1),  # exactly 10%
    (10.5, 100.0, 2),
    (35.0, 10.0, 35),
    (1.0, 0.0, 1),
])
def test_automatic_knn_every_keeps_the_cost_under_a_tenth(monitor, epoch,
                                                          expected):
    assert automatic_knn_every(monitor, epoch) == expected


def _model(classes):
    keras.utils.set_random_seed(0)
    model = DeepInfoMax(networks.basic32x32(), alpha=0.0, beta=1.0,
                        gamma=0.0, local_critic_units=8, seed=0,
                        online_probe_classes=classes)
    model.compile(jit_compile=False)
    model.build((None, 32, 32, 3))
    model.build_optimizers()
    return model


def test_callback_logs_probe_accuracy_every_epoch_and_knn_every_k():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 32, 32, 3)).astype(np.uint8)
    labels = np.arange(40, dtype=np.int64) % 2
    part = held_out_part(images, labels, seed=0, fraction=0.25)
    model = _model(2)
    messages = []
    monitors = OnlineMonitors(part, model.online_probe_heads, knn_every=2,
                              batch_size=8, log=messages.append)
    history = model.fit(images, part.probe_labels, batch_size=8, epochs=4,
                        callbacks=[monitors], verbose=0, shuffle=False)
    logs = history.history
    for layer in ("y", "conv"):
        accuracy = logs[f"online_probe_{layer}_acc"]
        assert len(accuracy) == 4 and all(0 <= a <= 1 for a in accuracy)
    # kNN at epochs 2 and 4 only: History keeps the keys of every epoch it
    # saw, so the 2nd and 4th epoch rows are the ones with kNN.
    assert len(logs["knn_y_acc"]) == 2 and len(logs["knn_conv_acc"]) == 2
    assert all(s >= 0 for s in logs["monitor_seconds"])
    assert messages == []


def test_callback_with_automatic_period_says_what_it_chose():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
    part = held_out_part(images, np.arange(24) % 3, fraction=0.25)
    model = _model(0)
    messages = []
    monitors = OnlineMonitors(part, {}, knn_every=None, batch_size=8,
                              log=messages.append)
    history = model.fit(images, batch_size=8, epochs=1,
                        callbacks=[monitors], verbose=0)
    assert "online_probe_y_acc" not in history.history  # no probe
    assert len(history.history["knn_y_acc"]) == 1
    assert monitors.knn_every >= 1
    assert len(messages) == 1 and "kNN monitor:" in messages[0]
    assert f"every {monitors.knn_every} epoch" in messages[0]


def test_knn_off_with_zero():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 32, 32, 3)).astype(np.uint8)
    part = held_out_part(images, np.arange(16) % 2, fraction=0.25)
    model = _model(2)
    history = model.fit(images, part.probe_labels, batch_size=8, epochs=1,
                        callbacks=[OnlineMonitors(part,
                                                  model.online_probe_heads,
                                                  knn_every=0)],
                        verbose=0)
    assert "knn_y_acc" not in history.history
    assert "online_probe_y_acc" in history.history
    assert online_monitors.MONITOR_BUDGET == 0.1


def test_scoring_the_probe_leaves_every_model_variable_alone():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
    part = held_out_part(images, np.arange(24) % 2, fraction=0.5)
    model = _model(2)
    model.fit(images, part.probe_labels, batch_size=8, epochs=1, verbose=0)
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.variables]
    monitors = OnlineMonitors(part, model.online_probe_heads, knn_every=1,
                              batch_size=8)
    monitors.set_model(model)
    logs = {}
    monitors.on_epoch_begin(0)
    monitors.on_epoch_end(0, logs)
    assert {"online_probe_y_acc", "knn_y_acc"} <= set(logs)
    after = [keras.ops.convert_to_numpy(v) for v in model.variables]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("loss, expected", [
    (1.3, False),                      # 2 heads, 2 classes: guess 1.39
    (3 * 2 * np.log(2) - 0.01, False),
    (3 * 2 * np.log(2) + 0.01, True),  # three times a uniform guess
    (float("nan"), True),
    (float("inf"), True),
])
def test_a_probe_diverged_above_three_uniform_guesses(loss, expected):
    assert online_monitors.probe_diverged(loss, num_classes=2) is expected


def test_a_diverging_probe_warns_once_and_training_goes_on():
    from dim_keras.networks.online_probe import OnlineProbeHead
    from dim_keras.training import RunCheckpoint

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
    part = held_out_part(images, np.arange(24) % 2, fraction=0.25)
    keras.utils.set_random_seed(0)
    model = DeepInfoMax(networks.basic32x32(), alpha=0.0, beta=1.0,
                        gamma=0.0, local_critic_units=8, seed=0,
                        online_probe_classes=2)
    assert isinstance(model.online_probe_y, OnlineProbeHead)
    # A learning rate of 1e20 throws the probe off at its first step.
    model.compile(jit_compile=False,
                  probe_optimizer=keras.optimizers.SGD(1e20))
    model.build((None, 32, 32, 3))
    model.build_optimizers()
    messages = []
    monitors = OnlineMonitors(part, model.online_probe_heads, knn_every=0,
                              log=messages.append)
    checkpoint = RunCheckpoint(None, model.encoder, [])
    history = model.fit(images, part.probe_labels, batch_size=8, epochs=3,
                        callbacks=[monitors, checkpoint], verbose=0)
    warnings = [m for m in messages if "online probe diverged" in m]
    assert len(warnings) == 1 and "in epoch 1" in warnings[0]
    assert monitors.diverged_at == 1
    # Every epoch ran and was kept; the encoder's loss stayed finite.
    assert checkpoint.diverged_at is None and len(checkpoint.history) == 3
    assert all(np.isfinite(history.history["loss"]))
    for row in checkpoint.history:
        loss = row.get("online_probe_loss", float("nan"))
        assert not np.isfinite(loss) or loss > 3 * 2 * np.log(2)


def test_held_out_images_are_encoded_in_a_seeded_random_order():
    order = online_monitors.shuffled_order(10)
    assert sorted(order) == list(range(10))
    assert list(order) != list(range(10))
    np.testing.assert_array_equal(order, online_monitors.shuffled_order(10))


def test_held_out_features_come_back_in_the_images_order():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 32, 32, 3)).astype(np.uint8)
    part = held_out_part(images, np.arange(12) % 2, fraction=0.5)
    model = _model(2)
    # One batch holds them all: batch statistics do not depend on the
    # order, so each row is the encoder's own row in training mode.
    monitors = OnlineMonitors(part, model.online_probe_heads, knn_every=0,
                              batch_size=12)
    monitors.set_model(model)
    features = monitors._features_as_in_training(images)
    with keras.StatelessScope():
        expected = model.encoder(images.astype("float32"), training=True)
    for layer in ("y", "conv"):
        np.testing.assert_allclose(
            features[layer],
            keras.ops.convert_to_numpy(expected[layer]).reshape(12, -1),
            rtol=1e-4, atol=1e-5)
    # In batches of 4, each batch is 4 rows of the seeded order.
    monitors.batch_size = 4
    features = monitors._features_as_in_training(images)
    rows = online_monitors.shuffled_order(12)[:4]
    with keras.StatelessScope():
        first = model.encoder(images[rows].astype("float32"), training=True)
    np.testing.assert_allclose(
        features["y"][rows], keras.ops.convert_to_numpy(first["y"]),
        rtol=1e-4, atol=1e-5)


def test_a_channel_split_is_scored_on_features_laid_out_as_in_training():
    """The held-out conv features of a channel split: the luminance
    encoder's flattened map, then the colour encoder's (as the probe
    learns them), not the combined map flattened with its channels
    interleaved."""
    from dim_keras.networks.encoders import build_encoder
    from dim_keras.networks.encoders import channel_group_encoders

    split = build_encoder("basic32x32", channel_split="luma-chroma")
    model = DeepInfoMax(split, channel_split="luma-chroma", alpha=0.0,
                        beta=1.0, gamma=0.0, local_critic_units=8, seed=0,
                        online_probe_classes=2)
    images = np.random.default_rng(1).integers(
        0, 256, (6, 32, 32, 3)).astype(np.uint8)
    part = held_out_part(images, np.arange(6) % 2, fraction=0.5)
    monitors = OnlineMonitors(part, model.online_probe_heads, knn_every=0,
                              batch_size=8)
    monitors.set_model(model)
    held = monitors._features_as_in_training(images)

    luma, chroma = channel_group_encoders(split)
    expected = np.concatenate([
        keras.ops.convert_to_numpy(
            part_encoder(images.astype("float32"), training=True)["conv"]
        ).reshape(6, -1)
        for part_encoder in (luma, chroma)], axis=-1)
    # One batch of all six (batch statistics do not depend on the order).
    np.testing.assert_allclose(held["conv"], expected, rtol=1e-4, atol=1e-4)
