"""A training run's directory: files, resuming, and a portable encoder."""

import csv
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dim_keras import recipes
from dim_keras.config import TrainConfig
from dim_keras.runs import RunError
from dim_keras.training import train
from tests.helpers import quiet
from tests.helpers import speakers_folder
from tests.helpers import tiny_config
from tests.helpers import trained_run_config


def test_run_directory_holds_every_file(trained_run):
    run_dir = trained_run
    for name in (
        "config.json",
        "encoder.keras",
        "checkpoint.weights.h5",
        "state.json",
        "history.csv",
    ):
        assert os.path.exists(os.path.join(run_dir, name)), name
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    assert config["encoder"] == "basic32x32" and config["epochs"] == 2
    # Unset recipe and scheme settings are recorded as digits' recipe and
    # the single view filled them in.
    assert TrainConfig.from_dict(config) == trained_run_config(
        encoder="basic32x32").with_recipe(recipes.DIGITS).with_scheme()
    with open(os.path.join(run_dir, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for key in ("loss", "local_mi", "prior_loss", "discriminator_loss",
                "online_probe_loss", "monitor_seconds"):
        assert np.isfinite(float(rows[0][key]))
    # The online monitors, on digits' held-out part (the kNN period is
    # measured on the first epoch, so that one has kNN).
    for key in ("online_probe_y_acc", "online_probe_conv_acc", "knn_y_acc",
                "knn_conv_acc"):
        assert 0.0 <= float(rows[0][key]) <= 1.0, key
    assert not [n for n in os.listdir(run_dir) if "partial" in n]


def test_monitors_off(tmp_path):
    result = train(tiny_config(online_probe=False, knn_every=0),
                   str(tmp_path), verbose=0, log=quiet)
    assert result["model"].online_probe_heads == {}
    row = result["history"][0]
    assert not [k for k in row if "probe" in k or "knn" in k]
    assert "monitor_seconds" not in row


@pytest.mark.parametrize("schedule, last_rate", [("cosine", 0.0),
                                                  ("constant", 1e-3)])
def test_the_learning_rate_runs_over_the_planned_steps(tmp_path, schedule,
                                                        last_rate):
    # 2 epochs of 2 steps: the cosine schedule reaches 0 at step 4.
    result = train(tiny_config(epochs=2, lr=1e-3, lr_schedule=schedule),
                   str(tmp_path), verbose=0, log=quiet)
    optimizer = result["model"].optimizer
    assert int(optimizer.iterations) == 4
    np.testing.assert_allclose(float(optimizer.learning_rate), last_rate,
                               atol=1e-9)


def test_the_steps_of_a_run_from_its_pipeline():
    import keras
    import tensorflow as tf

    from dim_keras.training import _total_steps

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 7

    assert _total_steps(Batches(), None, 3) == 21
    assert _total_steps(Batches(), 5, 3) == 15  # steps_per_epoch given
    finite = tf.data.Dataset.range(10).batch(4)
    assert _total_steps(finite, None, 2) == 6
    # Infinite or unknown: no length, a constant rate.
    assert _total_steps(finite.repeat(), None, 2) is None
    assert _total_steps(finite.filter(lambda x: True), None, 2) is None


def test_a_run_recorded_before_the_online_probe_resumes_without_it(
        trained_run, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    with open(os.path.join(trained_run, "config.json")) as f:
        config = json.load(f)
    del config["online_probe"], config["knn_every"]
    (old / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match="other settings \\(online_probe\\)"):
        train(trained_run_config(), str(old), verbose=0)


def test_finished_run_does_nothing(run_copy):
    messages = []
    result = train(trained_run_config(), run_copy, verbose=0,
                   log=messages.append)
    assert not result["trained"]
    assert "already finished 2 epochs" in messages[0]


def test_other_settings_in_the_same_directory_are_refused(run_copy):
    with pytest.raises(RunError, match="other settings \\(estimator\\)"):
        train(trained_run_config(estimator="nce"), run_copy, verbose=0)


def test_raising_epochs_continues_the_run(run_copy):
    messages = []
    result = train(trained_run_config(epochs=3), run_copy, verbose=0,
                   log=messages.append)
    assert "from epoch 3" in messages[0]
    assert [row["epoch"] for row in result["history"]] == [1, 2, 3]


RELOAD = textwrap.dedent(
    """
    import sys

    class RefuseDimKeras:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "dim_keras":
                raise ImportError("dim_keras is not available here")

    sys.meta_path.insert(0, RefuseDimKeras())
    try:
        import dim_keras
        sys.exit("dim_keras was importable")
    except ImportError:
        pass
    import numpy as np
    import keras

    images = np.load(sys.argv[1])
    for path, out in zip(sys.argv[2::2], sys.argv[3::2]):
        encoder = keras.saving.load_model(path)
        np.savez(out, **encoder.predict(images, verbose=0))
    """
)


@pytest.mark.slow  # a process without dim_keras
def test_saved_encoder_reloads_without_dim_keras(trained_run, tmp_path):
    import keras

    run_dir = trained_run
    encoder = keras.saving.load_model(os.path.join(run_dir, "encoder.keras"))
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3))
    images = images.astype("uint8")
    np.save(tmp_path / "images.npy", images)
    script = tmp_path / "reload.py"
    script.write_text(RELOAD)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "images.npy"),
            os.path.join(run_dir, "encoder.keras"),
            str(tmp_path / "out.npz"),
        ],
        cwd=tmp_path,
        env=env,
        check=True,
    )
    reloaded = np.load(tmp_path / "out.npz")
    expected = encoder.predict(images, verbose=0)
    assert set(reloaded.files) == {"local", "conv", "fc", "y"}
    for key in reloaded.files:
        np.testing.assert_allclose(reloaded[key], expected[key], atol=1e-5)


@pytest.mark.slow  # a process without dim_keras loads the three files
def test_channel_split_run_saves_both_encoders_and_their_concatenation(
        tmp_path):
    import keras

    run = str(tmp_path / "run")
    train(tiny_config(channel_split="luma-chroma", estimator="nce",
                      steps_per_epoch=2, batch_size=8),
          run, verbose=0, log=quiet)
    images = np.random.default_rng(1).integers(
        0, 256, (4, 32, 32, 3)).astype("uint8")
    np.save(tmp_path / "images.npy", images)
    script = tmp_path / "reload.py"
    script.write_text(RELOAD)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    names = ("encoder", "encoder_luma", "encoder_chroma")
    arguments = []
    for name in names:
        with open(os.path.join(run, f"{name}.json")) as f:
            assert json.load(f)["input"]["layout"] == "NHWC, RGB"
        arguments += [os.path.join(run, f"{name}.keras"),
                      str(tmp_path / f"{name}.npz")]
    subprocess.run(  # each loads where dim_keras cannot be imported
        [sys.executable, str(script), str(tmp_path / "images.npy")]
        + arguments, cwd=tmp_path, env=env, check=True)
    outputs = {name: dict(np.load(tmp_path / f"{name}.npz"))
               for name in names}
    assert outputs["encoder"]["y"].shape == (4, 128)
    for key in ("local", "conv", "fc", "y"):
        np.testing.assert_allclose(
            outputs["encoder"][key],
            np.concatenate([outputs["encoder_luma"][key],
                            outputs["encoder_chroma"][key]], axis=-1),
            atol=1e-5)
    combined = keras.saving.load_model(os.path.join(run, "encoder.keras"))
    parts = [keras.saving.load_model(os.path.join(run, f"encoder_{g}.keras"))
             for g in ("luma", "chroma")]
    assert combined.count_params() == sum(p.count_params() for p in parts)
    # One input channel for the luminance encoder's first conv, two for
    # the colour one's (64 filters of 4x4), and its colour map's 4 more.
    assert parts[1].count_params() - parts[0].count_params() == 64 * 16 + 4


def test_a_speech_run_trains_a_portable_wave1d_encoder(tmp_path):
    import keras

    dataset = speakers_folder(str(tmp_path / "speech"))
    run = str(tmp_path / "run")
    lines = []
    # The monitors on, as by default: the online probe and kNN on speech.
    result = train(tiny_config(dataset=dataset, batch_size=None,
                               steps_per_epoch=2, estimator="nce",
                               online_probe=True, knn_every=None),
                   run, verbose=0, log=lines.append)
    config = result["config"]
    assert config.encoder == "wave1d" and config.views == 2
    assert config.chunk_seconds == 0.5 and config.batch_size == 3
    assert result["epochs_done"] == 1
    assert any("speech chunks of 0.5 s (8000 samples)" in line
               for line in lines)
    assert lines[0].startswith("Used 12 of 12 audio files (13.2 s")
    with open(os.path.join(run, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    assert np.isfinite(float(rows[0]["local_mi"]))
    assert 0 <= float(rows[0]["online_probe_y_acc"]) <= 1
    assert 0 <= float(rows[0]["knn_y_acc"]) <= 1
    encoder = keras.saving.load_model(os.path.join(run, "encoder.keras"))
    waves = np.random.default_rng(1).normal(size=(3, 8000, 1))
    y = encoder(waves.astype("float32"))["y"]
    assert tuple(y.shape) == (3, 64)
    with open(os.path.join(run, "encoder.json")) as f:
        assert json.load(f)["input"]["shape"] == [None, 8000, 1]


@pytest.mark.parametrize("settings, match", [
    (dict(alpha=0.5), "Received: alpha=0.5"),
    (dict(encoder="basic32x32"), "Received: encoder='basic32x32'"),
])
def test_settings_that_need_images_are_refused_on_speech(tmp_path, settings,
                                                         match):
    dataset = speakers_folder(str(tmp_path / "speech"), per_speaker=2)
    with pytest.raises(RunError, match=match):
        train(tiny_config(dataset=dataset, batch_size=4, **settings),
              str(tmp_path / "run"), verbose=0, log=quiet)


def test_a_speech_encoder_is_refused_on_images(tmp_path):
    with pytest.raises(RunError, match="Received: encoder='wave1d'"):
        train(tiny_config(encoder="wave1d"), str(tmp_path / "run"),
              verbose=0, log=quiet)
