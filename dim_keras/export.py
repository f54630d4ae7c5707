"""Exporting a trained encoder for downstream pipelines.

`export_saved_model` writes a TensorFlow SavedModel whose `serve` endpoint
takes uint8 images `[batch, H, W, 3]` and returns a dict of `conv`, `fc`
and `y`; pixel scaling is part of the graph. A speech encoder's endpoint
takes float32 waveforms `[batch, samples]` at 16 kHz instead, of any length,
and returns `fc` and `y` of each utterance (the mean over its chunks,
`SPEECH_SERVE_OUTPUTS`). `export_encoder` is what
`dim-keras export` does with a run directory. The `.keras` format itself is
`dim_keras.encoder_file`.
"""

import json
import os

import keras

from dim_keras import atomic
from dim_keras import encoder_file
from dim_keras import runs
from dim_keras.choices import EXPORT_FORMATS
from dim_keras.choices import check_choice

FORMATS = EXPORT_FORMATS

# Outputs of the SavedModel `serve` endpoint (the probed representations).
SERVE_OUTPUTS = ("conv", "fc", "y")
# A speech encoder's: one vector per utterance (its conv map is per chunk).
SPEECH_SERVE_OUTPUTS = ("fc", "y")
SPEECH_SAMPLE_RATE = 16000


def export_saved_model(encoder, out, overwrite=False, info=None):
    """Writes a TensorFlow SavedModel of an encoder, atomically.

    Its `serve` endpoint (also `serving_default`) takes uint8 images
    `[batch, H, W, 3]` (any batch size, the encoder's image size) named
    `images` and returns a dict of float32 `conv`, `fc`, `y`; scaling is in
    the graph. For a speech encoder it takes float32 `waveforms` `[batch,
    samples]` at 16 kHz (any length) and returns `fc` and `y`, each the
    mean over the utterance's chunks. A `metadata` endpoint returns the JSON description, which is
    also written as `encoder.json` in the directory.

    Args:
        encoder: a Functional DIM encoder.
        out: str, the SavedModel directory to create.
        overwrite: bool, replace an existing `out`.
        info: dict or None, extra metadata fields.

    Returns:
        The absolute path of `out`.
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "SavedModel export needs the TensorFlow backend "
            "(KERAS_BACKEND=tensorflow). "
            f"Received: backend={keras.backend.backend()}"
        )
    import tensorflow as tf

    model = encoder_file.described(encoder)
    if encoder_file.is_audio(model):
        return _export_speech(model, out, overwrite, info)
    missing = [k for k in SERVE_OUTPUTS if k not in encoder_file.output_keys(model)]
    if missing:
        raise ValueError(
            "The encoder lacks outputs the SavedModel serves "
            f"({', '.join(SERVE_OUTPUTS)}). "
            f"Received: outputs={encoder_file.output_keys(model)}"
        )
    metadata = encoder_file.encoder_metadata(
        model, outputs=SERVE_OUTPUTS, input_dtype="uint8", info=info
    )
    height, width, _ = encoder_file.image_shape(model)
    metadata["description"] = (
        f"DIM {metadata['architecture']} encoder as a SavedModel. Endpoint "
        f"'serve': uint8 images [batch, {height}, {width}, 3], pixel values "
        "0-255 (scaled inside) -> dict of float32 'conv', 'fc', 'y' "
        "(the representation)."
    )
    metadata["endpoint"] = "serve"
    text = json.dumps(metadata, indent=2) + "\n"

    def serve(images):
        features = model(images, training=False)
        return {k: features[k] for k in SERVE_OUTPUTS}

    def describe():
        return tf.constant(text)

    def write(tmp):
        archive = keras.export.ExportArchive()
        archive.track(model)
        signature = tf.TensorSpec(
            (None,) + encoder_file.image_shape(model), tf.uint8, name="images"
        )
        archive.add_endpoint("serve", serve, input_signature=[signature])
        archive.add_endpoint("metadata", describe, input_signature=[])
        archive.write_out(tmp, verbose=False)
        with open(os.path.join(tmp, encoder_file.METADATA_FILE), "w") as f:
            f.write(text)

    return atomic.write_directory(out, write, overwrite)


def _speech_serve(model, tf):
    """The speech `serve` function: waveforms `[batch, samples]` to the
    mean `fc` and `y` over each utterance's whole chunks, an utterance
    shorter than a chunk first repeated up to one (as training pads)."""
    length = encoder_file.image_shape(model)[0]

    def serve(waveforms):
        batch = tf.shape(waveforms)[0]
        samples = tf.maximum(tf.shape(waveforms)[1], 1)
        repeats = (length + samples - 1) // samples
        waves = tf.tile(waveforms, [1, repeats])
        chunks = tf.maximum(tf.shape(waveforms)[1], length) // length
        waves = waves[:, :chunks * length]
        features = model(tf.reshape(waves, [-1, length, 1]), training=False)
        return {k: tf.reduce_mean(tf.reshape(
                    features[k], [batch, chunks, features[k].shape[-1]]),
                    axis=1)
                for k in SPEECH_SERVE_OUTPUTS}

    return serve


def _export_speech(model, out, overwrite, info):
    """`export_saved_model` of a speech encoder (see the module)."""
    import tensorflow as tf

    length = encoder_file.image_shape(model)[0]
    metadata = encoder_file.encoder_metadata(
        model, outputs=SPEECH_SERVE_OUTPUTS, input_dtype="float32",
        info=info)
    metadata["input"]["shape"] = [None, None]
    metadata["input"]["layout"] = (
        f"mono waveforms [batch, samples] at {SPEECH_SAMPLE_RATE} Hz, any "
        "number of samples")
    metadata["description"] = (
        f"DIM {metadata['architecture']} speech encoder as a SavedModel. "
        f"Endpoint 'serve': float32 waveforms [batch, samples] at "
        f"{SPEECH_SAMPLE_RATE} Hz, values in [-1, 1] -> dict of float32 "
        f"'fc', 'y' per utterance: the mean over its chunks of {length} "
        f"samples ({length / SPEECH_SAMPLE_RATE:g} s; a shorter utterance "
        "is repeated up to one chunk, the samples after the last whole "
        "chunk are left out).")
    metadata["endpoint"] = "serve"
    text = json.dumps(metadata, indent=2) + "\n"

    def write(tmp):
        archive = keras.export.ExportArchive()
        archive.track(model)
        signature = tf.TensorSpec((None, None), tf.float32, name="waveforms")
        archive.add_endpoint("serve", _speech_serve(model, tf),
                             input_signature=[signature])
        archive.add_endpoint("metadata", lambda: tf.constant(text),
                             input_signature=[])
        archive.write_out(tmp, verbose=False)
        with open(os.path.join(tmp, encoder_file.METADATA_FILE), "w") as f:
            f.write(text)

    return atomic.write_directory(out, write, overwrite)


def serves_waveforms(path):
    """Whether the SavedModel at `path` serves speech waveforms.

    Args:
        path: str, a SavedModel directory written by `export_saved_model`.

    Returns:
        bool, from its `encoder.json` (False when it cannot be read).
    """
    try:
        with open(os.path.join(path, encoder_file.METADATA_FILE)) as f:
            return json.load(f)["input"]["shape"] == [None, None]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def export_encoder(source, format="saved_model", out=None, overwrite=False):
    """Exports the encoder of a run (what `dim-keras export` does).

    Args:
        source: a run directory or a `.keras` encoder file.
        format: `"saved_model"` or `"keras"`.
        out: str or None; defaults to `export/saved_model` or
            `export/encoder.keras` next to the encoder file.
        overwrite: bool, replace an existing output.

    Returns:
        The path written.
    """
    check_choice("format", format, FORMATS, what="export format")
    file = runs.encoder_path(source)
    encoder = encoder_file.load_encoder_file(file)
    info = runs.read_encoder_info(file)
    if out is None:
        name = "saved_model" if format == "saved_model" else runs.ENCODER_FILE
        out = os.path.join(os.path.dirname(file), "export", name)
    if format == "saved_model":
        return export_saved_model(encoder, out, overwrite=overwrite, info=info)
    if not str(out).endswith(".keras"):
        raise ValueError(
            f"A Keras export must end in .keras. Received: out={out}"
        )
    if os.path.exists(out) and not overwrite:
        raise ValueError(
            f"The output exists; pass --overwrite (overwrite=True) to replace "
            f"it. Received: out={out}"
        )
    encoder_file.save_encoder(encoder, out, info=info)
    return os.path.abspath(out)
