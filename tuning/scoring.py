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
from dim_keras.evaluation.few_labels import FEW_LABEL_DRAWS
from dim_keras.tuning.settings import check_score


def check_probe(probe, layer, labels_per_class=None):
    """Checks a probe name, a layer name and the labels it fits on.

    Raises:
        ValueError: naming the bad value (`settings.check_score`).
    """
    check_choice("probe", probe, PROBES)
    check_choice("layer", layer, PROBED_LAYERS)
    check_score(probe, labels_per_class)


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
        labels_per_class: None to fit the probe on every label of the
            probe-training part, or an int: fit it on that many labelled
            images per class of it (`few_labels`, linear or kNN), the mean
            over `FEW_LABEL_DRAWS` draws; closer to what a user with few
            labels needs of the encoder.
    """

    def __init__(self, split, probe="linear", layer="y", seed=0,
                 labels_per_class=None):
        check_probe(probe, layer, labels_per_class)
        self.split = split
        self.probe = probe
        self.layer = layer
        self.seed = seed
        self.labels_per_class = labels_per_class

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
        if self.labels_per_class is not None:
            return self._few_label_score(features, train_y, val_y)
        if self.probe == "linear":
            return probes.linear_probe(features[0], train_y, features[1],
                                       val_y, seed=self.seed)
        if self.probe == "mlp":
            return probes.mlp_probe(features[0], train_y, features[1], val_y,
                                    seed=self.seed)
        return probes.knn_probe(features[0], train_y, features[1], val_y)

    def _few_label_score(self, features, train_y, val_y):
        from dim_keras.evaluation.few_labels import few_label_probes

        smallest = int(np.min(np.unique(train_y, return_counts=True)[1]))
        if self.labels_per_class >= smallest:
            raise ValueError(
                f"The probe-training part has {smallest} images in its "
                "smallest class: a few-label score needs fewer labels per "
                "class. Received: labels_per_class="
                f"{self.labels_per_class}")
        (record,) = few_label_probes(
            "trial", {self.layer: features}, train_y, val_y,
            ladder=(self.labels_per_class,), draws=FEW_LABEL_DRAWS,
            seed=self.seed, probes=(self.probe,))
        return record
