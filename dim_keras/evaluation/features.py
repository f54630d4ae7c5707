"""Features of a frozen encoder, extracted batch by batch into numpy.

The encoder runs in inference mode (batch normalization uses its moving
statistics, nothing is updated), so extracting twice gives the same numbers.
Every feature is flattened to `[N, features]`: the paper probes the last
convolutional map (`conv`), the last hidden dense layer (`fc`) and the
representation (`y`).
"""

import keras
import numpy as np

PROBED_LAYERS = ("conv", "fc", "y")


def _output_dict(encoder):
    outputs = encoder.output
    if not isinstance(outputs, dict):
        raise ValueError(
            "Expected an encoder whose output is a dict of named features "
            "(as dim-keras encoders have). "
            f"Received: encoder.output={type(outputs).__name__}"
        )
    return outputs


def feature_model(encoder, layers):
    """A model computing only the named outputs of a Functional encoder.

    Skipping the outputs that are not asked for (e.g. the large local map)
    saves time and memory.

    Args:
        encoder: Functional `keras.Model` with dict outputs.
        layers: sequence of output names.

    Returns:
        A Functional `keras.Model` with dict outputs `layers`.

    Raises:
        ValueError: if a name is not an output of the encoder.
    """
    outputs = _output_dict(encoder)
    missing = [name for name in layers if name not in outputs]
    if missing:
        raise ValueError(
            f"The encoder has outputs {sorted(outputs)}. "
            f"Received: layers={list(layers)}"
        )
    return keras.Model(
        encoder.inputs,
        {name: outputs[name] for name in layers},
        name=f"{encoder.name}_features",
    )


def extract_features(encoder, images, layers=("y",), batch_size=256,
                     verbose=0):
    """Extracts flattened features of `images`, batch by batch.

    Example:

    >>> import numpy as np
    >>> from dim_keras.networks import basic32x32
    >>> images = np.zeros((3, 32, 32, 3), dtype="uint8")
    >>> extract_features(basic32x32(), images, layers=("y", "fc"))["fc"].shape
    (3, 1024)

    Args:
        encoder: Functional `keras.Model` with dict outputs (a dim-keras
            encoder); it takes raw 0-255 images.
        images: array `[N, H, W, C]`, pixel values 0-255.
        layers: sequence of output names to extract, e.g.
            `("conv", "fc", "y")`.
        batch_size: int, images per forward pass.
        verbose: 1 shows a progress bar (`keras.utils.Progbar`), 0 does not.

    Returns:
        Dict of name to float32 numpy array `[N, features]`.

    Raises:
        ValueError: on an unknown output name, a bad `batch_size` or images
            that are not a batch of `[H, W, C]` arrays.
    """
    layers = tuple(layers)
    if batch_size < 1:
        raise ValueError(
            f"batch_size must be positive. Received: batch_size={batch_size}"
        )
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            "Expected images of shape [N, H, W, C]. "
            f"Received: images.shape={images.shape}"
        )
    model = feature_model(encoder, layers)
    n = len(images)
    chunks = {name: [] for name in layers}
    progbar = keras.utils.Progbar(n, verbose=verbose, unit_name="image")
    for start in range(0, n, batch_size):
        batch = images[start:start + batch_size]
        # A direct call in inference mode: no traced function to retrace
        # for the last, smaller batch or for each new encoder.
        outputs = model(keras.ops.convert_to_tensor(batch, "float32"),
                        training=False)
        for name in layers:
            value = keras.ops.convert_to_numpy(outputs[name]).astype(
                "float32")
            chunks[name].append(value.reshape(len(batch), -1))
        progbar.add(len(batch))
    return {
        name: (np.concatenate(chunks[name]) if n else
               np.zeros((0, 0), dtype="float32"))
        for name in layers
    }
