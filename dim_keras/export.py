"""Trained encoders for downstream pipelines: saving, exporting, features.

Saved encoders are Functional models of built-in Keras layers only, so
`encoder.keras` loads with plain `keras.saving.load_model(path)` (safe mode)
where `dim_keras` is not installed. Each one carries its own description:

- its model name, e.g.
  `dim_encoder_basic32x32__input_32x32x3_pixels_0-255__outputs_conv_fc_y_local`;
- a JSON sidecar next to it (`encoder.json` beside `encoder.keras`, and inside
  an exported SavedModel directory) stating the input (shape, dtype, value
  range) and every output's shape (see `encoder_metadata`).

`export_saved_model` writes a TensorFlow SavedModel whose `serve` endpoint
takes uint8 images `[batch, H, W, 3]` and returns a dict of `conv`, `fc`
and `y`; pixel scaling is part of the graph.

For people who import `dim_keras`: `load_encoder(path)` and
`extract_features(encoder, data, layers=("y",))`.
"""

import json
import os
import shutil

import keras
import numpy as np

from dim_keras.networks.encoders import OUTPUT_KEYS
from dim_keras.networks.encoders import encoder_description
from dim_keras.training import ENCODER_FILE
from dim_keras.training import ENCODER_METADATA_FILE
from dim_keras.training import atomic_save
from dim_keras.training import atomic_write_text

FORMATS = ("saved_model", "keras")

# Outputs of the SavedModel `serve` endpoint (the probed representations).
SERVE_OUTPUTS = ("conv", "fc", "y")

METADATA_FILE = ENCODER_METADATA_FILE
NAME_PREFIX = "dim_encoder_"
# `verbose="auto"` shows a progress bar above this many batches.
AUTO_PROGRESS_BATCHES = 10

_OUTPUT_MEANINGS = {
    "local": "local feature map (M x M x C) that local DIM maximizes MI with",
    "conv": "last convolutional feature map",
    "fc": "hidden dense layer before the representation",
    "y": "global representation Y",
}


def metadata_path(path):
    """Path of the JSON sidecar of a `.keras` file (`x.keras` -> `x.json`)."""
    return os.path.splitext(path)[0] + ".json"


def _architecture(encoder):
    name = encoder.name
    if name.startswith(NAME_PREFIX) and "__" in name:
        return name[len(NAME_PREFIX):].split("__")[0]
    return name


# Order in which outputs are named and described: the probed ones first.
_DESCRIBED_ORDER = ("conv", "fc", "y", "local")


def _output_keys(encoder):
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


def _image_shape(encoder):
    return tuple(encoder.input.shape[1:])


def descriptive_name(encoder):
    """The self-describing model name a saved encoder gets.

    Args:
        encoder: a Functional DIM encoder.

    Returns:
        str such as
        `dim_encoder_basic32x32__input_32x32x3_pixels_0-255__outputs_conv_fc_y_local`.
    """
    shape = "x".join(str(d) for d in _image_shape(encoder))
    outputs = "_".join(_output_keys(encoder))
    return (
        f"{NAME_PREFIX}{_architecture(encoder)}__input_{shape}_pixels_0-255"
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
    from dim_keras import __version__

    height, width, channels = _image_shape(encoder)
    architecture = _architecture(encoder)
    outputs = list(outputs or _output_keys(encoder))
    metadata = {
        "format": "dim-keras encoder",
        "dim_keras_version": __version__,
        "keras_version": keras.__version__,
        "name": descriptive_name(encoder),
        "architecture": architecture,
        "description": encoder_description(architecture, height),
        "input": {
            "name": encoder.input.name,
            "shape": [None, height, width, channels],
            "dtype": input_dtype or "uint8 (or float32 with the same values)",
            "value_range": [0, 255],
            "layout": "NHWC, RGB",
            "preprocessing": "none needed: the model scales pixels to "
            "[-1, 1] itself (x / 127.5 - 1)",
        },
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
    atomic_save(path, model.save)
    sidecar = metadata_path(path)
    text = json.dumps(encoder_metadata(model, info=info), indent=2)
    atomic_write_text(sidecar, text + "\n")
    return sidecar


def _encoder_file(path):
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            raise ValueError(
                "This is a SavedModel; load it with tf.saved_model.load or "
                f"keras.layers.TFSMLayer. Received: path={path}"
            )
        candidate = os.path.join(path, ENCODER_FILE)
        if not os.path.exists(candidate):
            raise ValueError(
                f"No {ENCODER_FILE} in this directory (is it a run directory "
                f"with a finished epoch?). Received: path={path}"
            )
        return candidate
    if not os.path.exists(path):
        raise ValueError(f"No such file or directory. Received: path={path}")
    if not path.endswith(".keras"):
        raise ValueError(
            f"Expected a .keras file or a run directory. Received: path={path}"
        )
    return path


def load_encoder(path):
    """Loads a DIM encoder from a `.keras` file or a run directory.

    Loading uses Keras' safe mode; the encoder needs no `dim_keras` code.

    Args:
        path: a `.keras` file, or a run directory holding `encoder.keras`.

    Returns:
        The Functional encoder (dict outputs `local`, `conv`, `fc`, `y`).

    Raises:
        ValueError: if `path` holds no loadable DIM encoder.
    """
    file = _encoder_file(path)
    try:
        encoder = keras.saving.load_model(file, compile=False)
    except Exception as e:  # corrupt archives fail in many ways
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(
            f"Cannot load a Keras model ({message}). Received: path={file}"
        ) from e
    _output_keys(encoder)
    return encoder


def _write_dir_atomically(out, write_fn, overwrite):
    """Calls `write_fn(tmp_dir)` and renames the result to `out`."""
    out = os.path.abspath(out)
    if os.path.exists(out) and not overwrite:
        raise ValueError(
            f"The output exists; pass --overwrite (overwrite=True) to replace "
            f"it. Received: out={out}"
        )
    parent, base = os.path.split(out)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".partial-{os.getpid()}-{base}")
    old = os.path.join(parent, f".old-{os.getpid()}-{base}")
    try:
        write_fn(tmp)
        replacing = os.path.exists(out)
        if replacing:
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except OSError:
            if replacing:
                os.replace(old, out)  # put the previous export back
            raise
        if replacing:
            _remove(old)
    finally:
        _remove(tmp)
    return out


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def export_saved_model(encoder, out, overwrite=False, info=None):
    """Writes a TensorFlow SavedModel of an encoder, atomically.

    Its `serve` endpoint (also `serving_default`) takes uint8 images
    `[batch, H, W, 3]` (any batch size, the encoder's image size) named
    `images` and returns a dict of float32 `conv`, `fc`, `y`; scaling is in
    the graph. A `metadata` endpoint returns the JSON description, which is
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

    model = described(encoder)
    missing = [k for k in SERVE_OUTPUTS if k not in _output_keys(model)]
    if missing:
        raise ValueError(
            "The encoder lacks outputs the SavedModel serves "
            f"({', '.join(SERVE_OUTPUTS)}). "
            f"Received: outputs={_output_keys(model)}"
        )
    metadata = encoder_metadata(
        model, outputs=SERVE_OUTPUTS, input_dtype="uint8", info=info
    )
    height, width, _ = _image_shape(model)
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
            (None,) + _image_shape(model), tf.uint8, name="images"
        )
        archive.add_endpoint("serve", serve, input_signature=[signature])
        archive.add_endpoint("metadata", describe, input_signature=[])
        archive.write_out(tmp, verbose=False)
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            f.write(text)

    return _write_dir_atomically(out, write, overwrite)


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
    if format not in FORMATS:
        raise ValueError(
            f"Unknown export format; expected one of {', '.join(FORMATS)}. "
            f"Received: format={format!r}"
        )
    file = _encoder_file(source)
    encoder = load_encoder(file)
    info = _run_info(file)
    if out is None:
        name = "saved_model" if format == "saved_model" else ENCODER_FILE
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
    save_encoder(encoder, out, info=info)
    return os.path.abspath(out)


def _run_info(file):
    """Run fields (dataset, epochs done) from the sidecar, if there is one."""
    try:
        with open(metadata_path(file)) as f:
            metadata = json.load(f)
    except (OSError, ValueError):
        return {}
    keys = ("dataset", "epochs_done")
    return {k: metadata[k] for k in keys if k in metadata}


def _batches(data, batch_size):
    """Yields `(images, labels or None)` numpy batches, and their count.

    Returns:
        `(iterator, number of images or None, number of batches or None)`.
    """
    if hasattr(data, "element_spec") and hasattr(data, "as_numpy_iterator"):
        return _dataset_batches(data, batch_size)
    labels = None
    if isinstance(data, tuple) and len(data) == 2:
        data, labels = data
        labels = np.asarray(labels)
    images = np.asarray(data)
    if images.ndim != 4:
        raise ValueError(
            "Expected images [N, H, W, C] (or an (images, labels) tuple, or a "
            f"tf.data.Dataset). Received: data shape={images.shape}"
        )
    if labels is not None and len(labels) != len(images):
        raise ValueError(
            "images and labels differ in length. "
            f"Received: {len(images)} images, {len(labels)} labels"
        )

    def iterate():
        for start in range(0, len(images), batch_size):
            stop = start + batch_size
            yield images[start:stop], (
                None if labels is None else labels[start:stop]
            )

    count = len(images)
    return iterate(), count, -(-count // batch_size)


def _split_element(element):
    if isinstance(element, dict):
        if "image" not in element:
            raise ValueError(
                "A dataset of dicts needs an 'image' key. "
                f"Received: keys={sorted(element)}"
            )
        return element["image"], element.get("label")
    if isinstance(element, (tuple, list)):
        return element[0], (element[1] if len(element) > 1 else None)
    return element, None


def _dataset_batches(dataset, batch_size):
    import tensorflow as tf

    image_spec, _ = _split_element(dataset.element_spec)
    if image_spec.shape.rank == 3:
        dataset = dataset.batch(batch_size)
    elif image_spec.shape.rank != 4:
        raise ValueError(
            "Expected a dataset of images [H, W, C] or batches [B, H, W, C]. "
            f"Received: element_spec={dataset.element_spec}"
        )
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "The dataset is infinite (repeat()?); features need a finite one. "
            "Received: cardinality=infinite"
        )
    batches = cardinality if cardinality >= 0 else None

    def iterate():
        for element in dataset.as_numpy_iterator():
            yield _split_element(element)

    return iterate(), None, batches


def _feature_function(encoder, layers):
    """A callable mapping an image batch to a dict of numpy features."""
    if isinstance(encoder, keras.Model) and isinstance(
        getattr(encoder, "output", None), dict
    ):
        missing = [k for k in layers if k not in encoder.output]
        if missing:
            raise ValueError(
                f"Unknown encoder outputs; expected some of "
                f"{', '.join(encoder.output)}. Received: layers={missing}"
            )
        sub = keras.Model(
            encoder.input, {k: encoder.output[k] for k in layers}
        )
        shapes = {k: tuple(encoder.output[k].shape[1:]) for k in layers}
        return sub.predict_on_batch, shapes

    def call(images):
        features = encoder(images)
        missing = [k for k in layers if k not in features]
        if missing:
            raise ValueError(
                f"Unknown encoder outputs; expected some of "
                f"{', '.join(features)}. Received: layers={missing}"
            )
        return {k: keras.ops.convert_to_numpy(features[k]) for k in layers}

    return call, None


def extract_features(encoder, data, layers=("y",), batch_size=256,
                     verbose="auto"):
    """Features of images, computed batch by batch in inference mode.

    Args:
        encoder: a DIM encoder (`load_encoder`), a path `load_encoder`
            accepts, or any callable mapping an image batch to a dict of
            tensors (e.g. `tf.saved_model.load(path).serve`).
        data: images as a numpy array `[N, H, W, 3]` (uint8 or float, pixel
            values 0-255); an `(images, labels)` tuple of arrays; or a
            `tf.data.Dataset` of images, `(image, label)` pairs or dicts with
            `"image"` (and `"label"`) keys, batched or not. An unbatched
            dataset is batched by `batch_size`; a batched one keeps its own
            batches. Order is preserved.
        layers: names of the encoder outputs to return (`"local"`, `"conv"`,
            `"fc"`, `"y"`).
        batch_size: int, images per batch.
        verbose: `"auto"` (a progress bar for more than
            `AUTO_PROGRESS_BATCHES` batches or an unknown count), 0 (silent),
            1 (progress bar) or 2 (one line at the end).

    Returns:
        A dict mapping each name of `layers` to a float32 numpy array
        `[N, ...]` shaped as the encoder outputs it (flatten `conv` yourself
        if you need vectors), plus `"labels"` `[N]` when `data` had labels.
    """
    if isinstance(layers, str):
        layers = (layers,)
    layers = tuple(layers)
    if not layers:
        raise ValueError("layers must name at least one output. Received: ()")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive int. Received: batch_size="
            f"{batch_size!r}"
        )
    if verbose not in ("auto", 0, 1, 2):
        raise ValueError(
            f"verbose must be 'auto', 0, 1 or 2. Received: verbose={verbose!r}"
        )
    if isinstance(encoder, (str, os.PathLike)):
        encoder = load_encoder(encoder)
    features_of, shapes = _feature_function(encoder, layers)
    batches, count, num_batches = _batches(data, batch_size)
    if verbose == "auto":
        large = num_batches is None or num_batches > AUTO_PROGRESS_BATCHES
        verbose = 1 if large else 0
    progbar = None
    if verbose:
        progbar = keras.utils.Progbar(
            count, verbose=verbose, unit_name="image"
        )
    parts = {k: [] for k in layers}
    labels = []
    seen = 0
    for images, batch_labels in batches:
        features = features_of(images)
        for k in layers:
            parts[k].append(np.asarray(features[k], dtype=np.float32))
        if batch_labels is not None:
            labels.append(np.asarray(batch_labels))
        seen += len(images)
        if progbar is not None:
            progbar.update(seen)
    if progbar is not None and count is None:
        progbar.target = seen
        progbar.update(seen, finalize=True)
    result = {}
    for k in layers:
        if parts[k]:
            result[k] = np.concatenate(parts[k])
        elif shapes is not None:
            result[k] = np.zeros((0,) + shapes[k], np.float32)
        else:
            raise ValueError("data holds no images. Received: 0 images")
    if labels:
        result["labels"] = np.concatenate(labels)
    return result
