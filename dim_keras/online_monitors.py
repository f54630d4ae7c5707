"""What the representation is worth while it trains: the online probe's and
a kNN classifier's accuracy, every epoch (as solo-learn and lightly show).

Where the training split has labels, a fixed, seeded part of it is held
out (`held_out_part`): the online probe trains on the other images' labels
only (`DeepInfoMax(online_probe_classes=...)`; the held-out images keep
training the encoder, unlabelled; it learns from the other images
un-augmented, encoded in training mode, as it is scored here), and
`OnlineMonitors` scores the probe's
heads (the moving average of their weights that their optimizer keeps:
`dim_keras.online_probe.averaged_weights`) on the held-out images at the
end of every epoch
(`online_probe_y_acc`, `online_probe_conv_acc`) and, every `knn_every`
epochs, a k-nearest-neighbour classifier of the held-out features among a
bank of the other images' features (`knn_y_acc`, `knn_conv_acc`). The test
split is never looked at. The seconds the monitors took are logged as
`monitor_seconds`, so their cost is in `history.csv`.

A probe that diverges (its epoch's loss not finite, or above
`DIVERGED_FACTOR` times a uniform guess's, ln C per head) is reported once,
through `log`, and never stops the run: a non-finite probe loss is left
out of the epoch's logs (the run's checkpoint stops training on any
non-finite log value, which is meant for the encoder's loss).
"""

import dataclasses
import math
import time

import keras
import numpy as np

from dim_keras.backend.common import PROBE_LOSS_KEY
from dim_keras.evaluation.probes import knn_probe
from dim_keras.online_probe import averaged_weights
from dim_keras.online_probe import probe_features

# The held-out part: this fraction of the labelled training images, at
# most `HELD_OUT_LIMIT`.
HELD_OUT_FRACTION = 0.1
HELD_OUT_LIMIT = 1000
# The kNN monitor's bank: at most this many of the other labelled images.
KNN_BANK_LIMIT = 5000
# The automatic kNN period keeps the monitors under this share of the
# training time.
MONITOR_BUDGET = 0.1
MONITORED_LAYERS = ("y", "conv")
# The online probe's loss (the sum over its heads) above this many times
# a uniform guess's (ln C per head) is taken as diverging.
DIVERGED_FACTOR = 3.0


@dataclasses.dataclass
class HeldOutPart:
    """The training split seen by the online monitors.

    Attributes:
        probe_labels: int64 `[N]`, the training labels the online probe
            learns from: the held-out images' (and unlabelled ones') are -1.
        images: the held-out images, uint8 `[M, H, W, 3]`.
        labels: their labels, int64 `[M]`.
        bank_images: the kNN monitor's bank, other labelled training
            images, uint8 `[B, H, W, 3]`.
        bank_labels: their labels, int64 `[B]`.
        stream_fraction: float or None: for a streamed dataset (no
            `probe_labels`), the share of the training examples held out
            (by a hash of their id, see
            `TFDSImageDataset.training_dataset`).
    """

    probe_labels: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    bank_images: np.ndarray
    bank_labels: np.ndarray
    stream_fraction: float = None


def held_out_part(images, labels, seed=0, fraction=HELD_OUT_FRACTION,
                  limit=HELD_OUT_LIMIT, bank_limit=KNN_BANK_LIMIT):
    """Holds out a seeded part of the labelled training images.

    Args:
        images: uint8 `[N, H, W, 3]` training images.
        labels: int64 `[N]` labels, -1 for unlabelled images.
        seed: int, seed of the draw.
        fraction: float, share of the labelled images held out.
        limit: int, most images held out.
        bank_limit: int, most images in the kNN bank.

    Returns:
        A `HeldOutPart`, or None when fewer than 2 classes are labelled
        (nothing to tell apart).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(images):
        raise ValueError(
            "images and labels differ in length. "
            f"Received: {len(images)} images, {len(labels)} labels"
        )
    labelled = np.flatnonzero(labels >= 0)
    if len(np.unique(labels[labelled])) < 2:
        return None
    order = np.random.default_rng(seed).permutation(labelled)
    count = int(min(limit, max(1, round(fraction * len(labelled)))))
    held = np.sort(order[:count])
    bank = np.sort(order[count:count + bank_limit])
    probe_labels = labels.copy()
    probe_labels[held] = -1
    return HeldOutPart(probe_labels, images[held], labels[held],
                       images[bank], labels[bank])


def held_out_stream_part(dataset, limit=HELD_OUT_LIMIT,
                         bank_limit=KNN_BANK_LIMIT):
    """`held_out_part` of a streamed (TFDS) dataset.

    About `limit` examples are held out (at most `HELD_OUT_FRACTION` of
    the training split), chosen by a hash of their TFDS id, so the same
    ones every epoch and every run; only their labels leave the stream.

    Args:
        dataset: a `TFDSImageDataset` with labels.
        limit: int, the held-out images read, at most.
        bank_limit: int, the kNN bank's images, at most.

    Returns:
        A `HeldOutPart` with `probe_labels` None and `stream_fraction`
        set, or None when the held-out images hold fewer than 2 classes.
    """
    total = max(1, dataset.num_training_images)
    fraction = min(HELD_OUT_FRACTION, limit / total)
    images, labels, bank_images, bank_labels = dataset.held_out_examples(
        fraction, limit, bank_limit)
    if len(np.unique(labels)) < 2 or len(np.unique(bank_labels)) < 2:
        return None
    return HeldOutPart(None, images, labels, bank_images, bank_labels,
                       stream_fraction=fraction)


def automatic_knn_every(monitor_seconds, epoch_seconds,
                        budget=MONITOR_BUDGET):
    """The kNN period that keeps the monitors under `budget` of the time.

    Args:
        monitor_seconds: float, what one kNN evaluation took.
        epoch_seconds: float, what one training epoch took.
        budget: float, the share of the training time allowed.

    Returns:
        int, at least 1: run the kNN monitor every that many epochs.
    """
    if epoch_seconds <= 0:
        return 1
    return max(1, math.ceil(monitor_seconds / (budget * epoch_seconds)))


def probe_diverged(loss, num_classes, heads=len(MONITORED_LAYERS),
                   factor=DIVERGED_FACTOR):
    """Whether an epoch's online probe loss says the probe diverged.

    Args:
        loss: float, the epoch's mean probe loss, summed over the heads.
        num_classes: int, the classes each head tells apart.
        heads: int, the number of heads summed.
        factor: float, how many times a uniform guess's loss is too many.

    Returns:
        bool: True when `loss` is not finite or above `factor * heads *
        ln(num_classes)`.
    """
    loss = float(loss)
    if not math.isfinite(loss):
        return True
    return loss > factor * heads * math.log(max(2, int(num_classes)))


def shuffled_order(count, seed=0):
    """The order the held-out images are encoded in: a seeded permutation.

    Args:
        count: int, the number of images.
        seed: int, seed of the permutation (the same every epoch).

    Returns:
        int64 `[count]`, a permutation of `range(count)`.
    """
    return np.random.default_rng(seed).permutation(int(count))


def _flat(array):
    return np.asarray(array, dtype=np.float32).reshape(len(array), -1)


class OnlineMonitors(keras.callbacks.Callback):
    """Adds the online probe's and the kNN monitor's accuracies to the logs.

    Put it after `dim_keras.monitors.Throughput` (which times the epoch
    without it) and before the callbacks that write the logs.

    Args:
        part: the `HeldOutPart`.
        probe_heads: dict of layer name to the model's online probe head
            (`DeepInfoMax.online_probe_heads`), or `{}` without the probe.
        knn_every: int or None: the kNN monitor's period in epochs; None
            measures the first epoch and picks `automatic_knn_every`; 0
            is off.
        batch_size: int, images per feature-extraction batch.
        log: callable for one-line messages.
    """

    def __init__(self, part, probe_heads, knn_every=None, batch_size=256,
                 log=print):
        super().__init__()
        self.part = part
        self.probe_heads = dict(probe_heads)
        self.knn_every = knn_every
        self.batch_size = int(batch_size)
        self.log = log
        self._epoch_started = None
        self.diverged_at = None  # the first epoch a diverging loss showed

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.perf_counter()

    def _features(self, images):
        from dim_keras.evaluation.features import extract_features

        encoder = self.model.encoder
        features = extract_features(encoder, images, MONITORED_LAYERS,
                                    batch_size=self.batch_size, verbose=0)
        return {k: _flat(v) for k, v in features.items()}

    def _features_as_in_training(self, images):
        """Features as the online probe learnt them: batch statistics.

        The probe learns from the training step's features, whose batch
        normalization uses each batch's statistics; in inference mode it
        uses moving averages, which lag far behind in the first epochs
        (on the CIFAR-10 subset after 2 epochs, Y's mean was 0.34 in
        inference mode and 0.00 in training mode, and the probe scored
        11% against 34%). So the held-out images are encoded in batches
        as the training step encodes the probe's clean images
        (`ViewScheme.probe_views`: training mode, every variable left as
        it was) and flattened as it flattens them
        (`online_probe.probe_features`: a channel split's two encoders
        side by side).

        The batches are drawn in a fixed random order (`shuffled_order`),
        as training batches are: the held-out part keeps the order of the
        training split, which a folder of images sorts by class, and
        batch statistics of a few classes at a time take away what those
        classes share (on the Tiny ImageNet subset, 1,000 held-out images
        of 100 classes in batches of 256, a fixed probe scored 3-5 points
        less on Y and conv in the split's order than shuffled).
        """
        order = shuffled_order(len(images))
        parts = {k: [] for k in MONITORED_LAYERS}
        for start in range(0, len(images), self.batch_size):
            rows = order[start:start + self.batch_size]
            batch = keras.ops.convert_to_tensor(
                np.asarray(images[rows], "float32"))
            features = probe_features(
                self.model.view_scheme.probe_views(batch, MONITORED_LAYERS))
            for k in MONITORED_LAYERS:
                parts[k].append(keras.ops.convert_to_numpy(features[k]))
        restore = np.argsort(order)
        return {k: np.concatenate(v)[restore] for k, v in parts.items()}

    def _due_for_knn(self, epoch):
        if self.knn_every == 0 or not len(self.part.bank_labels):
            return False
        if self.knn_every is None:
            return True  # measured now, then `knn_every` is chosen
        return (epoch + 1) % self.knn_every == 0

    def _check_probe_loss(self, epoch, logs):
        """Warns once of a diverging probe; drops a non-finite loss."""
        if not self.probe_heads or PROBE_LOSS_KEY not in logs:
            return
        loss = float(np.asarray(logs[PROBE_LOSS_KEY],
                                dtype="float64").reshape(-1)[0])
        classes = next(iter(self.probe_heads.values())).units
        if not math.isfinite(loss):
            del logs[PROBE_LOSS_KEY]  # would stop the run's checkpoint
        if self.diverged_at is None and probe_diverged(
                loss, classes, len(self.probe_heads)):
            self.diverged_at = epoch + 1
            guess = len(self.probe_heads) * math.log(classes)
            self.log(
                f"Warning: the online probe diverged in epoch {epoch + 1}: "
                f"its loss is {loss:.4g} where a uniform guess scores "
                f"{guess:.2f} ({len(self.probe_heads)} heads x ln "
                f"{classes}); its accuracies mean little from here. "
                "Training goes on (the encoder does not learn from it).")

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        self._check_probe_loss(epoch, logs)
        epoch_seconds = time.perf_counter() - (self._epoch_started or 0.0)
        started = time.perf_counter()
        if self.probe_heads:
            as_trained = self._features_as_in_training(self.part.images)
            optimizer = getattr(self.model, "probe_optimizer", None)
            with averaged_weights(self.probe_heads, optimizer):
                for layer, head in self.probe_heads.items():
                    logits = keras.ops.convert_to_numpy(
                        head(as_trained[layer]))
                    logs[f"online_probe_{layer}_acc"] = float(np.mean(
                        np.argmax(logits, axis=-1) == self.part.labels))
        if self._due_for_knn(epoch):
            held = self._features(self.part.images)
            bank = self._features(self.part.bank_images)
            for layer in MONITORED_LAYERS:
                # The evaluation's kNN probe: k=20, cosine similarity,
                # votes weighted by exp(similarity / 0.07).
                logs[f"knn_{layer}_acc"] = knn_probe(
                    bank[layer], self.part.bank_labels, held[layer],
                    self.part.labels)["accuracy"]
            if self.knn_every is None:
                knn_seconds = time.perf_counter() - started
                self.knn_every = automatic_knn_every(knn_seconds,
                                                     epoch_seconds)
                self.log(
                    f"kNN monitor: {knn_seconds:.1f} s against "
                    f"{epoch_seconds:.1f} s of training; every "
                    f"{self.knn_every} epoch(s) keeps it under "
                    f"{MONITOR_BUDGET:.0%} (--knn-every sets it).")
        logs["monitor_seconds"] = time.perf_counter() - started
