"""Flattened features of a frozen encoder, for the probes.

`dim_keras.export.extract_features` runs the encoder batch by batch in
inference mode (batch normalization uses its moving
statistics, nothing is updated), so extracting twice gives the same numbers.
Every feature is flattened to `[N, features]`: the paper probes the last
convolutional map (`conv`), the last hidden dense layer (`fc`) and the
representation (`y`).
"""

import numpy as np

PROBED_LAYERS = ("conv", "fc", "y")


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
    from dim_keras.export import extract_features as extract_batches

    layers = tuple(layers)
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            "Expected images of shape [N, H, W, C]. "
            f"Received: images.shape={images.shape}"
        )
    features = extract_batches(encoder, images, layers=layers,
                               batch_size=batch_size, verbose=verbose)
    return {name: features[name].reshape(len(images), -1)
            for name in layers}
