"""How a trial is scored: a probe on labelled data the test split never enters.

The labelled training split is divided once, stratified and seeded, into a
probe-training part and a validation part. A trial's frozen encoder gives
features of both; a probe (linear by default) fits on the first and its
accuracy on the second is the trial's score. The unsupervised training
sees all the training images (without labels), as in the paper; the test
split is never read.
"""

import numpy as np

from dim_keras.choices import PROBED_LAYERS
from dim_keras.choices import PROBES
from dim_keras.choices import check_choice
from dim_keras.evaluation import probes
from dim_keras.evaluation.features import extract_features



def check_probe(probe, layer):
    """Checks a probe name and a layer name.

    Raises:
        ValueError: naming the bad value.
    """
    check_choice("probe", probe, PROBES)
    check_choice("layer", layer, PROBED_LAYERS)


def validation_split(dataset, fraction, seed):
    """Splits a dataset's labelled training split for probing.

    Args:
        dataset: `dim_keras.data.ImageDataset`.
        fraction: float in (0, 1), share held out for validation.
        seed: int, seed of the (stratified) split.

    Returns:
        `(train_images, train_labels, val_images, val_labels)`.

    Raises:
        ValueError: on a fraction outside (0, 1) or too few images.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(
            f"val_fraction must be in (0, 1). Received: val_fraction={fraction}"
        )
    images, labels = dataset.arrays("train")
    try:
        train_x, val_x, train_y, val_y = probes.stratified_split(
            images, labels, fraction, seed
        )
    except ValueError as e:
        raise ValueError(
            f"Cannot hold out val_fraction={fraction} of {len(images)} "
            f"labelled training images: {e}"
        ) from e
    return train_x, train_y, val_x, val_y


class ProbeScorer:
    """Scores an encoder by a probe's validation accuracy.

    Args:
        split: `(train_images, train_labels, val_images, val_labels)`, see
            `validation_split`.
        probe: `"linear"`, `"mlp"` or `"knn"`.
        layer: encoder output probed: `"conv"`, `"fc"` or `"y"`.
        seed: int, the probe's seed.
    """

    def __init__(self, split, probe="linear", layer="y", seed=0):
        check_probe(probe, layer)
        self.split = split
        self.probe = probe
        self.layer = layer
        self.seed = seed

    def __call__(self, encoder):
        """Returns the probe's result dict (`accuracy` is the score).

        Raises:
            FloatingPointError: if the features are not all finite.
        """
        train_x, train_y, val_x, val_y = self.split
        # One pass over both parts (one feature model, traced once).
        values = extract_features(
            encoder, np.concatenate([train_x, val_x]), layers=(self.layer,),
            verbose=0, flatten=True,
        )[self.layer]
        features = [values[:len(train_x)], values[len(train_x):]]
        for name, values in zip(("training", "validation"), features):
            if not np.all(np.isfinite(values)):
                raise FloatingPointError(
                    f"The encoder's {self.layer!r} features of the {name} "
                    "images are not all finite."
                )
        if self.probe == "linear":
            return probes.linear_probe(features[0], train_y, features[1],
                                       val_y, seed=self.seed)
        if self.probe == "mlp":
            return probes.mlp_probe(features[0], train_y, features[1], val_y,
                                    seed=self.seed)
        return probes.knn_probe(features[0], train_y, features[1], val_y)
