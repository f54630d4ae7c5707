"""`SearchSettings`: every setting of a `dim-keras tune` search.

The one place where a search's defaults are written: the command line reads
them from here. Like `dim_keras.config`, the module imports no Keras.
"""

import dataclasses

from dim_keras.choices import FEW_LABEL_PROBES
from dim_keras.choices import PROBED_LAYERS
from dim_keras.choices import PROBES
from dim_keras.choices import TUNERS
from dim_keras.choices import check_choice
from dim_keras.config import TrainConfig


@dataclasses.dataclass
class SearchSettings:
    """Every setting of a search.

    Args:
        base: `TrainConfig` of the settings not searched (dataset,
            encoder, batch size, critic width, seed, ...); its `epochs`,
            `estimator`, `alpha`, `beta`, `gamma` and `lr` are ignored.
        tuner: `"random"`, `"bayesian"` or `"hyperband"`.
        max_trials: int, trials in all (a rerun may raise it).
        epochs_per_trial: int, training epochs per trial (Hyperband's
            largest budget).
        pins: dict of values that are not searched, e.g.
            `{"estimator": "nce"}` (see `tuning.space.PINNABLE`).
        probe: `"linear"`, `"mlp"` or `"knn"`.
        layer: encoder output probed: `"conv"`, `"fc"` or `"y"`.
        val_fraction: share of the labelled training images held out to
            score the probe.
        max_failed: failed trials in a row that stop the search.
        labels_per_class: None to score with every label, or an int: the
            probe (linear or kNN) fits on that many labelled images per
            class (the mean of 5 draws; `tuning.scoring.ProbeScorer`).
    """

    base: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    tuner: str = "random"
    max_trials: int = 10
    epochs_per_trial: int = 2
    pins: dict = dataclasses.field(default_factory=dict)
    probe: str = "linear"
    layer: str = "y"
    val_fraction: float = 0.2
    max_failed: int = 3
    labels_per_class: int = None

    def validate(self):
        """Checks every setting; returns self.

        Raises:
            ValueError: naming the bad setting and its value.
        """
        check_choice("tuner", self.tuner, TUNERS)
        for name in ("max_trials", "epochs_per_trial", "max_failed"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name} must be at least 1. "
                    f"Received: {name}={getattr(self, name)}"
                )
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(
                "val_fraction must be in (0, 1). "
                f"Received: val_fraction={self.val_fraction}"
            )
        from dim_keras.tuning import space

        check_choice("probe", self.probe, PROBES)
        check_choice("layer", self.layer, PROBED_LAYERS)
        check_score(self.probe, self.labels_per_class)
        self.pins = space.check_pins(self.pins)
        # The base settings with any valid searched values.
        dataclasses.replace(
            self.base, epochs=self.epochs_per_trial, estimator="jsd",
            alpha=1.0, beta=1.0, gamma=0.1, lr=1e-4,
        ).validate()
        return self

    def comparable(self):
        """The settings a rerun must repeat (all but `max_trials`)."""
        values = dataclasses.asdict(self)
        values.pop("max_trials")
        values["base"].pop("data_dir")
        return values


def check_score(probe, labels_per_class):
    """Checks the labels per class a scoring probe fits on.

    Args:
        probe: str, the scoring probe.
        labels_per_class: None (every label) or a positive int (a
            few-label probe: `FEW_LABEL_PROBES` only).

    Raises:
        ValueError: naming the bad value.
    """
    if labels_per_class is None:
        return
    if isinstance(labels_per_class, bool) or not (
            isinstance(labels_per_class, int) and labels_per_class >= 1):
        raise ValueError(
            "labels_per_class must be a positive int, or None for every "
            f"label. Received: labels_per_class={labels_per_class!r}")
    if probe not in FEW_LABEL_PROBES:
        raise ValueError(
            f"A few-label score fits a {' or '.join(FEW_LABEL_PROBES)} "
            f"probe. Received: probe={probe!r}, "
            f"labels_per_class={labels_per_class}")


def default(name):
    """The default value of the `SearchSettings` setting `name`."""
    return {f.name: f.default for f in dataclasses.fields(SearchSettings)}[name]
