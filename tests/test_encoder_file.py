"""The encoder file format: descriptive name, JSON sidecar, safe loading."""

import json

import pytest

from dim_keras import encoder_file
from dim_keras.networks import basic32x32


@pytest.fixture(scope="module")
def encoder():
    return basic32x32(image_size=16, representation_dim=8)


def test_the_name_describes_input_and_outputs(encoder):
    assert encoder_file.descriptive_name(encoder) == (
        "dim_encoder_basic32x32__input_16x16x3_pixels_0-255"
        "__outputs_conv_fc_y_local"
    )
    assert encoder_file.metadata_path("a/encoder.keras") == "a/encoder.json"


def test_saved_encoder_and_sidecar_round_trip(tmp_path, encoder):
    path = str(tmp_path / "encoder.keras")
    sidecar = encoder_file.save_encoder(encoder, path, info={"dataset": "x"})
    with open(sidecar) as f:
        metadata = json.load(f)
    assert metadata["input"]["shape"] == [None, 16, 16, 3]
    assert metadata["outputs"]["y"]["shape"] == [None, 8]
    assert metadata["dataset"] == "x"
    loaded = encoder_file.load_encoder_file(path)
    assert loaded.name == encoder_file.descriptive_name(encoder)
    assert sorted(tmp_path.iterdir()) == [tmp_path / "encoder.json",
                                          tmp_path / "encoder.keras"]


def test_bad_files_are_refused(tmp_path, encoder):
    with pytest.raises(ValueError, match="must end in .keras"):
        encoder_file.save_encoder(encoder, str(tmp_path / "e.h5"))
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="Cannot load a Keras model"):
        encoder_file.load_encoder_file(str(broken))


def test_a_speech_encoder_is_described_as_taking_waveforms(tmp_path):
    import keras
    import numpy as np

    from dim_keras.networks import wave1d

    speech = wave1d(chunk_length=320, representation_dim=8)
    path = str(tmp_path / "encoder.keras")
    with open(encoder_file.save_encoder(speech, path)) as f:
        metadata = json.load(f)
    assert metadata["name"] == (
        "dim_encoder_wave1d__input_320x1_waveform__outputs_conv_fc_y_local")
    assert metadata["input"]["shape"] == [None, 320, 1]
    assert metadata["input"]["layout"] == "NTC, mono waveform"
    assert metadata["outputs"]["local"]["shape"] == [None, 4, 1, 256]
    assert "[batch, 320, 1]" in metadata["description"]
    loaded = keras.saving.load_model(path)  # plain Keras, safe mode
    waves = np.random.default_rng(0).normal(size=(3, 320, 1))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(waves.astype("float32"))["y"]),
        keras.ops.convert_to_numpy(speech(waves.astype("float32"))["y"]),
        atol=1e-5)
