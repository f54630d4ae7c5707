"""The encoder file format: a `.keras` file plus its JSON description.

Saved encoders are Functional models of built-in Keras layers only, so
`encoder.keras` loads with plain `keras.saving.load_model(path)` (safe mode)
where `dim_keras` is not installed. Each one carries its own description:

- its model name, e.g.
  `dim_encoder_basic32x32__input_32x32x3_pixels_0-255__outputs_conv_fc_y_local`;
- a JSON sidecar next to it (`encoder.json` beside `encoder.keras`, and inside
  an exported SavedModel directory) stating the input (shape, dtype, value
  range) and every output's shape (see `encoder_metadata`).
"""

import json
import os
import zipfile

import keras

from dim_keras import atomic
from dim_keras.version import __version__
from dim_keras.networks.encoders import OUTPUT_KEYS
from dim_keras.networks.encoders import encoder_description

# The sidecar's name inside an exported directory.
METADATA_FILE = "encoder.json"
NAME_PREFIX = "dim_encoder_"

_OUTPUT_MEANINGS = {
    "local": "local feature map (M x M x C; speech: T x 1 x C) that local "
             "DIM maximizes MI with",
    "conv": "last convolutional feature map",
    "fc": "hidden dense layer before the representation",
    "y": "global representation Y",
}


def metadata_path(path):
    """Path of the JSON sidecar of a `.keras` file (`x.keras` -> `x.json`)."""
    return os.path.splitext(path)[0] + ".json"


def architecture(encoder):
    name = encoder.name
    if name.startswith(NAME_PREFIX) and "__" in name:
        return name[len(NAME_PREFIX):].split("__")[0]
    return name


# Order in which outputs are named and described: the probed ones first.
_DESCRIBED_ORDER = ("conv", "fc", "y", "local")


def output_keys(encoder):
    try:
        outputs = encoder.output
    except (AttributeError, ValueError):  # never called: no Functional graph
        outputs = None
    if not isinstance(outputs, dict):
        raise ValueError(
            "Expected a DIM encoder: a Functional model with a dict of "
            f"outputs among {', '.join(OUTPUT_KEYS)}. Received: "
            f"model {encoder.name!r} with outputs of type "
            f"{type(outputs).__name__}"
        )
    return [k for k in _DESCRIBED_ORDER if k in outputs] + [
        k for k in outputs if k not in _DESCRIBED_ORDER
    ]


def image_shape(encoder):
    return tuple(encoder.input.shape[1:])


def is_audio(encoder):
    """Whether an encoder takes waveforms `[batch, samples, 1]`, not images."""
    return len(image_shape(encoder)) == 2


def descriptive_name(encoder):
    """The self-describing model name a saved encoder gets.

    Args:
        encoder: a Functional DIM encoder.

    Returns:
        str such as
        `dim_encoder_basic32x32__input_32x32x3_pixels_0-255__outputs_conv_fc_y_local`
        (for a speech encoder: `..._input_16000x1_waveform__...`).
    """
    shape = "x".join(str(d) for d in image_shape(encoder))
    outputs = "_".join(output_keys(encoder))
    values = "waveform" if is_audio(encoder) else "pixels_0-255"
    return (
        f"{NAME_PREFIX}{architecture(encoder)}__input_{shape}_{values}"
        f"__outputs_{outputs}"
    )


def described(encoder):
    """The same encoder (shared layers and weights) under its descriptive name.

    Args:
        encoder: a Functional DIM encoder.

    Returns:
        A Functional `keras.Model` named by `descriptive_name`.
    """
    name = descriptive_name(encoder)
    if encoder.name == name:
        return encoder
    return keras.Model(encoder.input, encoder.output, name=name)


def _preprocessing(encoder):
    """What the encoder does to its input pixels, in words."""
    names = {layer.name for layer in encoder.layers}
    if "luma_encoder" in names:
        return ("none needed: one inner encoder sees the YDbDr luminance "
                "(Y), the other its colour (Db, Dr), each computed from the "
                "RGB pixels inside the model and scaled to [-1, 1]; the "
                "outputs concatenate both encoders' features")
    for group, channels in (("luma", "luminance Y"),
                            ("chroma", "colour Db, Dr")):
        if f"{group}_channels" in names:
            return (f"none needed: the model computes the YDbDr {channels} "
                    "of the RGB pixels itself, scaled to [-1, 1]")
    return ("none needed: the model scales pixels to [-1, 1] itself "
            "(x / 127.5 - 1)")


def encoder_metadata(encoder, outputs=None, input_dtype=None, info=None):
    """A JSON-serializable description of an encoder's input and outputs.

    Args:
        encoder: a Functional DIM encoder.
        outputs: output names to describe (default: all of the encoder's).
        input_dtype: str, the dtype the artifact takes (default: uint8, or
            float32 with values 0-255).
        info: dict or None, more fields (e.g. dataset, epochs done).

    Returns:
        A dict.
    """
    name = architecture(encoder)
    outputs = list(outputs or output_keys(encoder))
    if is_audio(encoder):
        length, channels = image_shape(encoder)
        description = encoder_description(name, length)
        model_input = {
            "name": encoder.input.name,
            "shape": [None, length, channels],
            "dtype": input_dtype or "float32",
            "value_range": None,
            "layout": "NTC, mono waveform",
            "preprocessing": "none needed: the model standardizes each "
                             "chunk over time itself (zero mean, unit "
                             "variance)",
        }
    else:
        height, width, channels = image_shape(encoder)
        description = encoder_description(name, height)
        model_input = {
            "name": encoder.input.name,
            "shape": [None, height, width, channels],
            "dtype": input_dtype or "uint8 (or float32 with the same values)",
            "value_range": [0, 255],
            "layout": "NHWC, RGB",
            "preprocessing": _preprocessing(encoder),
        }
    metadata = {
        "format": "dim-keras encoder",
        "dim_keras_version": __version__,
        "keras_version": keras.__version__,
        "name": descriptive_name(encoder),
        "architecture": name,
        "description": description,
        "input": model_input,
        "outputs": {
            key: {
                "shape": [None] + list(encoder.output[key].shape[1:]),
                "dtype": "float32",
                "meaning": _OUTPUT_MEANINGS.get(key, ""),
            }
            for key in outputs
        },
    }
    metadata.update(info or {})
    return metadata


def save_encoder(encoder, path, info=None):
    """Saves an encoder as `.keras` plus its JSON sidecar, both atomically.

    The saved model is named by `descriptive_name`; the sidecar
    (`metadata_path(path)`) holds `encoder_metadata`.

    Args:
        encoder: a Functional DIM encoder.
        path: str ending in `.keras`.
        info: dict or None, extra sidecar fields.

    Returns:
        The sidecar's path.
    """
    if not str(path).endswith(".keras"):
        raise ValueError(
            f"An encoder file name must end in .keras. Received: path={path}"
        )
    model = described(encoder)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic.save(path, model.save)
    sidecar = metadata_path(path)
    text = json.dumps(encoder_metadata(model, info=info), indent=2)
    atomic.write_text(sidecar, text + "\n")
    return sidecar


def channel_parts(encoder):
    """The encoders of each channel group of a channel-split encoder.

    Args:
        encoder: a Functional DIM encoder.

    Returns:
        Dict `{"luma": ..., "chroma": ...}` of the two encoders inside a
        `dim_keras.networks.channel_split_encoder`; empty for any other
        encoder.
    """
    names = {layer.name for layer in encoder.layers}
    return {group: encoder.get_layer(f"{group}_encoder")
            for group in ("luma", "chroma")
            if f"{group}_encoder" in names}


def load_encoder_file(path):
    """Loads a DIM encoder from a `.keras` file, in Keras's safe mode.

    Args:
        path: str, an existing `.keras` file.

    Returns:
        The Functional encoder (dict outputs among `local`, `conv`, `fc`,
        `y`).

    Raises:
        ValueError: if the file holds no loadable DIM encoder.
    """
    if not zipfile.is_zipfile(path):
        raise ValueError(
            "Cannot load a Keras model (not a Keras archive: empty, "
            "truncated or overwritten). "
            f"Received: path={path}"
        )
    try:
        encoder = keras.saving.load_model(path, compile=False)
    except Exception as e:  # corrupt archives fail in many ways
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(
            f"Cannot load a Keras model ({message}). Received: path={path}"
        ) from e
    try:
        output_keys(encoder)
    except ValueError as e:
        raise ValueError(
            f"Not a DIM encoder ({str(e).split('. Received')[0]}). "
            f"Received: path={path}"
        ) from None
    return encoder
