"""Features of a frozen encoder: the one `extract_features`.

It runs an encoder (or any callable returning a dict of tensors) batch by
batch in inference mode over numpy images or a `tf.data.Dataset`. The
paper probes the last convolutional map (`conv`), the last hidden dense
layer (`fc`) and the representation (`y`): `PROBED_LAYERS`.

Every batch reaching the encoder has one shape (the last one is padded and
its padding dropped), and the sub-model of a Keras encoder's requested
outputs is built once per encoder and kept, so its compiled predict
function is traced once however many batches and extractions it serves.
(A new sub-model per call, and a short last batch, each traced the
function again: TensorFlow's "triggered tf.function retracing" warnings.)
"""

import os
import weakref

import keras
import numpy as np

from dim_keras.choices import PROBED_LAYERS  # noqa: F401
from dim_keras.progress import Progress

# `verbose="auto"` shows a progress bar above this many batches.
AUTO_PROGRESS_BATCHES = 10


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
    if images.ndim not in (3, 4):
        raise ValueError(
            "Expected images [N, H, W, C] or waveforms [N, samples, 1] (or "
            "an (inputs, labels) tuple, or a tf.data.Dataset). Received: "
            f"data shape={images.shape}"
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


# Encoder -> {layers: sub-model}; an entry goes when its encoder does.
_FEATURE_MODELS = weakref.WeakKeyDictionary()


def feature_model(encoder, layers):
    """The sub-model of `encoder` returning `layers`, built once and kept.

    Reusing it reuses its compiled predict function: extracting features
    of several splits traces it once, not once per call.

    Args:
        encoder: a Functional `keras.Model` with a dict of outputs.
        layers: tuple of output names.

    Returns:
        A `keras.Model` mapping images to `{name: output}` for `layers`.
    """
    models = _FEATURE_MODELS.setdefault(encoder, {})
    if layers not in models:
        models[layers] = keras.Model(
            encoder.input, {k: encoder.output[k] for k in layers}
        )
    return models[layers]


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
        sub = feature_model(encoder, layers)
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


def fixed_size_batches(batches, size):
    """Cuts batches into `size` rows each, padding the last one.

    The padding repeats the batch's last row; inference-mode rows do not
    interact, so dropping the padded rows' outputs leaves the others as
    they were.

    Args:
        batches: iterable of `(images, labels or None)` numpy batches, of
            any sizes.
        size: int, rows of every batch yielded.

    Yields:
        `(images [size, ...], labels or None, rows)`: `rows` of the images
        (and all the labels) are real, the rest padding.
    """
    for images, labels in batches:
        images = np.asarray(images)
        for start in range(0, len(images), size):
            chunk = images[start:start + size]
            rows = len(chunk)
            if rows < size:
                chunk = np.concatenate(
                    [chunk, np.repeat(chunk[-1:], size - rows, axis=0)])
            yield chunk, (None if labels is None
                          else np.asarray(labels)[start:start + rows]), rows


def extract_features(encoder, data, layers=("y",), batch_size=256,
                     verbose="auto", flatten=False,
                     description="Extracting features"):
    """Features of images, computed batch by batch in inference mode.

    Batch normalization uses its moving statistics and nothing is updated,
    so extracting twice gives the same numbers.

    Example:

    >>> import numpy as np
    >>> from dim_keras.networks import basic32x32
    >>> images = np.zeros((3, 32, 32, 3), dtype="uint8")
    >>> extract_features(basic32x32(), images, layers=("conv",))["conv"].shape
    (3, 4, 4, 256)
    >>> extract_features(basic32x32(), images, layers=("conv",),
    ...                  flatten=True)["conv"].shape
    (3, 4096)

    Args:
        encoder: a DIM encoder (`load_encoder`), a path `load_encoder`
            accepts, or any callable mapping an image batch to a dict of
            tensors (e.g. `tf.saved_model.load(path).serve`).
        data: images as a numpy array `[N, H, W, 3]` (uint8 or float, pixel
            values 0-255), or waveforms `[N, samples, 1]` of a speech
            encoder; an `(images, labels)` tuple of arrays; or a
            `tf.data.Dataset` of images, `(image, label)` pairs or dicts with
            `"image"` (and `"label"`) keys, batched or not. Batches are
            cut (or made) to `batch_size` images. Order is preserved.
        layers: names of the encoder outputs to return (`"local"`, `"conv"`,
            `"fc"`, `"y"`).
        batch_size: int, images per batch. Every batch the encoder sees
            has this size (the last one is padded), so a few images are
            quicker with a smaller one.
        verbose: `"auto"` (as 1 for more than `AUTO_PROGRESS_BATCHES`
            batches or an unknown count, else 0), 0 (silent), 1 (a
            progress line with an ETA on a terminal, one line at the end
            elsewhere; see `dim_keras.progress`) or 2 (one line at the
            end).
        flatten: bool, return every feature as vectors `[N, features]`
            (what the probes take) instead of the encoder's output shapes.
        description: str, the progress line's start.

    Returns:
        A dict mapping each name of `layers` to a float32 numpy array
        `[N, ...]` shaped as the encoder outputs it (or `[N, features]`
        with `flatten`), plus `"labels"` `[N]` when `data` had labels.
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
        from dim_keras.runs import load_encoder

        encoder = load_encoder(encoder)
    features_of, shapes = _feature_function(encoder, layers)
    batches, count, num_batches = _batches(data, batch_size)
    if verbose == "auto":
        large = num_batches is None or num_batches > AUTO_PROGRESS_BATCHES
        verbose = 1 if large else 0
    progress = None
    if verbose:
        progress = Progress(description, count, "images",
                            live=None if verbose == 1 else False)
    parts = {k: [] for k in layers}
    labels = []
    seen = 0
    for images, batch_labels, rows in fixed_size_batches(batches, batch_size):
        features = features_of(images)
        for k in layers:
            parts[k].append(np.asarray(features[k][:rows], dtype=np.float32))
        if batch_labels is not None:
            labels.append(np.asarray(batch_labels))
        seen += rows
        if progress is not None:
            progress.update(seen)
    if progress is not None:
        progress.close()
    result = {}
    for k in layers:
        if parts[k]:
            result[k] = np.concatenate(parts[k])
        elif shapes is not None:
            result[k] = np.zeros((0,) + shapes[k], np.float32)
        else:
            raise ValueError("data holds no images. Received: 0 images")
    if flatten:
        result = {k: v.reshape(len(v), int(np.prod(v.shape[1:])))
                  for k, v in result.items()}
    if labels:
        result["labels"] = np.concatenate(labels)
    return result
