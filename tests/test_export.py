"""Saved and exported encoders work without dim_keras; feature extraction."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from dim_keras.apps.cli import main as cli
from dim_keras import encoder_file
from dim_keras import export
from dim_keras import runs
from dim_keras.evaluation import features as feature_extraction
from dim_keras.networks import basic32x32

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUTS = ("local", "conv", "fc", "y")

# Code run first in every child process. The venv may have dim_keras
# installed (editable installs add a finder to sys.meta_path from a .pth file,
# whatever the working directory or PYTHONPATH), so a clean cwd and an empty
# PYTHONPATH are not enough. `python -I` drops PYTHONPATH, the user site and
# the current directory from sys.path; then a finder placed first on
# sys.meta_path refuses this project's packages, so any attempt to import them
# (directly or from Keras deserialization) fails as if they were not
# installed. The child checks that `import dim_keras` fails before anything.
ISOLATE = r'''
import importlib.abc
import sys

class RefuseProject(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in ("dim_keras", "apps", "tuning"):
            raise ModuleNotFoundError(f"No module named {fullname!r}",
                                      name=fullname)
        return None

sys.meta_path.insert(0, RefuseProject())
try:
    import dim_keras
except ImportError:
    print("dim_keras is not importable")
else:
    sys.exit("dim_keras is importable; the isolation failed")
'''

CHILD = ISOLATE + r'''
import json
import numpy as np
import keras
import tensorflow as tf

args = json.loads(sys.argv[1])
images = np.load(args["images"])
results = {}

encoder = keras.saving.load_model(args["keras"], safe_mode=True)
for key, value in encoder(images, training=False).items():
    results["keras_" + key] = np.asarray(value)

loaded = tf.saved_model.load(args["saved_model"])
for key, value in loaded.serve(tf.constant(images)).items():
    results["saved_model_" + key] = value.numpy()

layer = keras.layers.TFSMLayer(args["saved_model"], call_endpoint="serve")
for key, value in layer(images).items():
    results["tfsm_layer_" + key] = np.asarray(value)

# Both artifacts inside tf.data.Dataset.map, in batches of 3 (any size).
batches = tf.data.Dataset.from_tensor_slices(images).batch(3)
mapped = list(batches.map(loaded.serve).as_numpy_iterator())
for key in ("conv", "fc", "y"):
    results["map_saved_model_" + key] = np.concatenate([b[key] for b in mapped])
mapped = batches.map(lambda x: encoder(x, training=False)["y"])
results["map_keras_y"] = np.concatenate(list(mapped.as_numpy_iterator()))

# A frozen TFSMLayer in a downstream classifier trains (one step).
frozen = keras.layers.TFSMLayer(args["saved_model"], call_endpoint="serve",
                                trainable=False)
inputs = keras.Input(images.shape[1:], dtype="uint8")
classifier = keras.Model(
    inputs, keras.layers.Dense(10)(frozen(inputs)["y"]))
classifier.compile("sgd", keras.losses.SparseCategoricalCrossentropy(True))
classifier.fit(images, np.arange(len(images)) % 10, epochs=1, verbose=0)
results["classifier_y"] = frozen(images)["y"].numpy()  # left unchanged

np.savez(args["out"], **results)
with open(args["info"], "w") as f:
    json.dump({
        "keras_name": encoder.name,
        "metadata": json.loads(loaded.metadata().numpy().decode()),
        "modules": sorted(m for m in sys.modules
                          if m.split(".")[0] == "dim_keras"),
    }, f)
'''


def run_isolated(code, args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.run(
        [sys.executable, "-I", "-c", code, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def trained_like_encoder(seed=0):
    """A basic32x32 whose batch-norm statistics are not the identity.

    With fresh statistics (mean 0, variance 1) inference and training mode
    nearly agree; random ones make a mode mix-up visible.
    """
    keras.utils.set_random_seed(seed)
    encoder = basic32x32()
    rng = np.random.default_rng(seed)
    for layer in encoder.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, n))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n))
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            layer.beta.assign(rng.normal(0, 0.2, n))
    return encoder


def uint8_images(n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def encoder():
    return trained_like_encoder()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, encoder):
    """A run directory as training leaves it, plus a SavedModel export."""
    run = tmp_path_factory.mktemp("run")
    encoder_file.save_encoder(
        encoder, str(run / "encoder.keras"),
        info={"dataset": "digits", "epochs_done": 1},
    )
    export.export_saved_model(encoder, str(run / "export" / "saved_model"))
    return run


@pytest.mark.slow  # a process without dim_keras
def test_artifacts_work_without_dim_keras(tmp_path, encoder, run_dir):
    images = uint8_images(7)
    reference = {
        k: keras.ops.convert_to_numpy(v)
        for k, v in encoder(images, training=False).items()
    }
    # The statistics matter: training mode would give other outputs. (On a
    # copy: a training-mode call updates the moving statistics.)
    in_training = trained_like_encoder()(images, training=True)["y"]
    assert np.abs(keras.ops.convert_to_numpy(in_training)
                  - reference["y"]).max() > 1e-2

    np.save(tmp_path / "images.npy", images)
    args = {
        "images": str(tmp_path / "images.npy"),
        "keras": str(run_dir / "encoder.keras"),
        "saved_model": str(run_dir / "export" / "saved_model"),
        "out": str(tmp_path / "out.npz"),
        "info": str(tmp_path / "info.json"),
    }
    child_dir = tmp_path / "elsewhere"
    child_dir.mkdir()
    result = run_isolated(CHILD, [json.dumps(args)], cwd=child_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dim_keras is not importable" in result.stdout

    with open(args["info"]) as f:
        info = json.load(f)
    assert info["modules"] == []
    assert info["keras_name"] == (
        "dim_encoder_basic32x32__input_32x32x3_pixels_0-255"
        "__outputs_conv_fc_y_local"
    )
    assert info["metadata"]["input"]["dtype"] == "uint8"
    assert info["metadata"]["input"]["shape"] == [None, 32, 32, 3]
    assert sorted(info["metadata"]["outputs"]) == ["conv", "fc", "y"]

    got = np.load(args["out"])
    expected_keys = {f"keras_{k}" for k in OUTPUTS}
    for prefix in ("saved_model_", "tfsm_layer_", "map_saved_model_"):
        expected_keys |= {prefix + k for k in ("conv", "fc", "y")}
    expected_keys |= {"map_keras_y", "classifier_y"}
    assert set(got.files) == expected_keys
    for name in got.files:
        key = name.rsplit("_", 1)[-1]
        assert got[name].shape == reference[key].shape, name
        np.testing.assert_allclose(
            got[name], reference[key], rtol=1e-5, atol=1e-5, err_msg=name
        )


def test_sidecar_describes_the_saved_model(run_dir):
    with open(run_dir / "encoder.json") as f:
        metadata = json.load(f)
    loaded = keras.saving.load_model(run_dir / "encoder.keras")
    assert metadata["name"] == loaded.name
    assert metadata["architecture"] == "basic32x32"
    assert metadata["input"]["value_range"] == [0, 255]
    assert metadata["input"]["shape"] == [None, 32, 32, 3]
    assert (metadata["dataset"], metadata["epochs_done"]) == ("digits", 1)
    # Shapes stated in the sidecar are those the model outputs for 2 images.
    outputs = loaded(uint8_images(2), training=False)
    assert sorted(metadata["outputs"]) == sorted(OUTPUTS)
    for key, value in outputs.items():
        assert [2] + metadata["outputs"][key]["shape"][1:] == list(value.shape)
    # The SavedModel directory carries the same description.
    with open(run_dir / "export" / "saved_model" / "encoder.json") as f:
        assert json.load(f)["outputs"]["y"]["shape"] == [None, 64]


def test_load_encoder_from_run_dir_and_file(run_dir, encoder):
    images = uint8_images(3)
    expected = keras.ops.convert_to_numpy(encoder(images, training=False)["y"])
    for path in (run_dir, run_dir / "encoder.keras", str(run_dir)):
        loaded = runs.load_encoder(path)
        y = keras.ops.convert_to_numpy(loaded(images, training=False)["y"])
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_load_encoder_refuses_what_is_not_an_encoder(tmp_path, run_dir):
    with pytest.raises(ValueError, match="No such file"):
        runs.load_encoder(tmp_path / "missing")
    with pytest.raises(ValueError, match="No encoder.keras"):
        runs.load_encoder(tmp_path)
    with pytest.raises(ValueError, match="SavedModel"):
        runs.load_encoder(run_dir / "export" / "saved_model")
    broken = tmp_path / "broken.keras"
    broken.write_text("not a zip")
    with pytest.raises(ValueError, match="Cannot load"):
        runs.load_encoder(broken)
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    with pytest.raises(ValueError, match="dict of outputs"):
        runs.load_encoder(tmp_path / "plain.keras")


def test_extract_features_matches_the_encoder(encoder):
    images = uint8_images(23)
    expected = {
        k: keras.ops.convert_to_numpy(v)
        for k, v in encoder(images, training=False).items()
    }
    features = feature_extraction.extract_features(
        encoder, images, layers=("y", "conv"), batch_size=5, verbose=0
    )
    assert sorted(features) == ["conv", "y"]
    for key in ("y", "conv"):
        assert features[key].dtype == np.float32
        np.testing.assert_allclose(
            features[key], expected[key], rtol=1e-5, atol=1e-5
        )
    # Float images with the same pixel values give the same features.
    as_float = feature_extraction.extract_features(
        encoder, images.astype(np.float32), batch_size=8, verbose=0
    )
    np.testing.assert_allclose(as_float["y"], expected["y"], atol=1e-5)


def test_extract_features_from_datasets_keeps_order_and_labels(encoder):
    images = uint8_images(10)
    labels = np.arange(10) * 3
    expected = keras.ops.convert_to_numpy(encoder(images, training=False)["y"])
    sources = {
        "tuple of arrays": (images, labels),
        "pairs": tf.data.Dataset.from_tensor_slices((images, labels)),
        "batched pairs": tf.data.Dataset.from_tensor_slices(
            (images, labels)).batch(4),
        "dicts": tf.data.Dataset.from_tensor_slices(
            {"image": images, "label": labels}),
        "filtered (unknown size)": tf.data.Dataset.from_tensor_slices(
            (images, labels)).filter(lambda x, y: True),
    }
    for name, data in sources.items():
        features = feature_extraction.extract_features(encoder, data, batch_size=3,
                                           verbose=0)
        np.testing.assert_array_equal(features["labels"], labels, name)
        np.testing.assert_allclose(features["y"], expected, atol=1e-5,
                                   err_msg=name)
    only_images = tf.data.Dataset.from_tensor_slices(images)
    features = feature_extraction.extract_features(encoder, only_images, verbose=0)
    assert sorted(features) == ["y"]
    np.testing.assert_allclose(features["y"], expected, atol=1e-5)


def test_extract_features_with_a_saved_model_endpoint(encoder, run_dir):
    images = uint8_images(6)
    loaded = tf.saved_model.load(str(run_dir / "export" / "saved_model"))
    features = feature_extraction.extract_features(loaded.serve, images, layers=("fc",),
                                       batch_size=4, verbose=0)
    expected = keras.ops.convert_to_numpy(encoder(images, training=False)["fc"])
    np.testing.assert_allclose(features["fc"], expected, atol=1e-5)


def test_extract_features_progress_and_errors(encoder, capsys):
    images = uint8_images(12)
    feature_extraction.extract_features(encoder, images, batch_size=4, verbose=0)
    assert capsys.readouterr().out == ""
    # Not a terminal here: one line at the end.
    feature_extraction.extract_features(encoder, images, batch_size=4, verbose=1)
    assert "Extracting features: 12 images in" in capsys.readouterr().out
    # "auto" shows a bar only above AUTO_PROGRESS_BATCHES batches.
    feature_extraction.extract_features(encoder, images, batch_size=4)
    assert capsys.readouterr().out == ""
    feature_extraction.extract_features(encoder, images, batch_size=1)
    assert "Extracting features: 12 images in" in capsys.readouterr().out

    empty = feature_extraction.extract_features(encoder, images[:0], layers=("conv",))
    assert empty["conv"].shape == (0, 4, 4, 256)
    with pytest.raises(ValueError, match="Received: layers=\\['z'\\]"):
        feature_extraction.extract_features(encoder, images, layers=("z",))
    with pytest.raises(ValueError, match="Received: data shape=\\(12, 32\\)"):
        feature_extraction.extract_features(encoder, images[:, :, 0, 0])
    with pytest.raises(ValueError, match="batch_size"):
        feature_extraction.extract_features(encoder, images, batch_size=0)
    with pytest.raises(ValueError, match="infinite"):
        feature_extraction.extract_features(
            encoder, tf.data.Dataset.from_tensor_slices(images).repeat())


def test_cli_export(tmp_path, run_dir):
    runner = CliRunner()
    out = tmp_path / "sm"
    result = runner.invoke(cli, ["export", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert os.path.exists(out / "saved_model.pb")
    assert os.path.exists(out / "encoder.json")
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]

    # An existing output is kept unless --overwrite.
    result = runner.invoke(cli, ["export", str(run_dir), "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip().startswith("Error: The output exists")
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(
        cli, ["export", str(run_dir), "--out", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output

    copy = tmp_path / "copy" / "encoder.keras"
    result = runner.invoke(
        cli, ["export", str(run_dir / "encoder.keras"), "--format", "keras",
              "--out", str(copy)])
    assert result.exit_code == 0, result.output
    assert keras.saving.load_model(copy).name.startswith("dim_encoder_")
    with open(tmp_path / "copy" / "encoder.json") as f:
        assert json.load(f)["epochs_done"] == 1

    for args, message in [
        (["--format", "onnx"], "Received: format='onnx'"),
        (["--format", "keras", "--out", str(tmp_path / "x.h5")],
         "Received: out="),
    ]:
        result = runner.invoke(cli, ["export", str(run_dir), *args])
        assert result.exit_code == 2
        assert message in result.output
    result = runner.invoke(cli, ["export", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert result.output.startswith("Error: No such file or directory.")


def test_training_writes_a_described_encoder(tmp_path, monkeypatch):
    import dim_keras.data
    from dim_keras.data import ImageDataset
    from dim_keras.config import TrainConfig
    from dim_keras.training import train

    images = uint8_images(16)
    tiny = ImageDataset(
        "digits", 32, 10,
        {"train": (images, np.zeros(16, np.int64))},
        default_encoder="basic32x32", default_epochs=1,
    )
    monkeypatch.setattr(dim_keras.data, "get_dataset", lambda *a, **k: tiny)
    config = TrainConfig(epochs=1, batch_size=8, critic_units=16,
                         jit_compile=False)
    train(config, str(tmp_path), verbose=0, log=lambda *a: None)
    with open(tmp_path / "encoder.json") as f:
        metadata = json.load(f)
    assert (metadata["dataset"], metadata["epochs_done"]) == ("digits", 1)
    loaded = runs.load_encoder(tmp_path)
    assert loaded.name == metadata["name"]
    assert metadata["name"].startswith("dim_encoder_basic32x32__input_32x32x3")


@pytest.mark.slow  # a process without dim_keras
def test_example_pipeline_runs_without_dim_keras(tmp_path, run_dir):
    example = os.path.join(REPO, "examples", "tf_data_pipeline.py")
    code = ISOLATE + (
        "import runpy\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    saved_model = str(run_dir / "export" / "saved_model")
    result = run_isolated(
        code, [example, saved_model, "--epochs", "2"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("Linear classifier on y (64 dims, 2 epochs)")
    accuracy = float(line.split("test accuracy ")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0


def test_a_speech_saved_model_takes_waveforms_inside_tf_data(tmp_path):
    from dim_keras.data.audio import pad_to
    from dim_keras.networks import wave1d

    encoder = wave1d(chunk_length=320)
    path = export.export_saved_model(encoder, str(tmp_path / "saved"))
    loaded = tf.saved_model.load(path)
    metadata = json.loads(loaded.metadata().numpy().decode())
    assert metadata["input"]["shape"] == [None, None]
    assert "16000 Hz" in metadata["description"]
    rng = np.random.default_rng(0)
    long = rng.uniform(-0.5, 0.5, (2, 700)).astype("float32")  # 2 chunks
    short = rng.uniform(-0.5, 0.5, (1, 100)).astype("float32")  # padded

    def y_of(chunks):
        return keras.ops.convert_to_numpy(encoder(chunks[..., None])["y"])

    expected = y_of(long[:, :640].reshape(4, 320)).reshape(2, 2, -1).mean(1)
    # Inside a tf.data pipeline: one utterance per element, then batches.
    data = tf.data.Dataset.from_tensor_slices(long).batch(2).map(
        lambda w: loaded.serve(w)["y"])
    got = next(iter(data)).numpy()
    assert got.shape == (2, 64)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        loaded.serve(tf.constant(short))["y"].numpy(),
        y_of(pad_to(short[0], 320)[None]), rtol=1e-4, atol=1e-4)
    assert set(loaded.serve(tf.constant(short))) == {"fc", "y"}
