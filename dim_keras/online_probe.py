"""The online probe's pieces: what it reads, its heads' widths, its loss.

With `DeepInfoMax(online_probe_classes=...)`, linear classifiers (one head
per probed layer) learn from the gradient-stopped features of each
training batch's labelled images (label -1: unlabelled) with their own
optimizer, leaving the encoder's update unchanged (the online probe of
solo-learn). `dim_keras.online_monitors` scores the heads every epoch.
"""

import keras
from keras import ops

from dim_keras.backend.common import PROBE_LOSS_KEY
from dim_keras.networks.online_probe import OnlineProbeHead

# The layers the online probe reads, and the names of its heads.
PROBED_ONLINE = ("y", "conv")
# The online probe's default optimizer: Adam at this learning rate (its
# heads standardize and scale their inputs so that it suits every width:
# `dim_keras.networks.online_probe`).
ONLINE_PROBE_LR = 1e-2


def probe_heads(classes):
    """One linear head per probed layer, named `online_probe_<layer>`.

    Args:
        classes: int, the number of classes; 0 for no probe.

    Returns:
        A tuple of `networks.online_probe.OnlineProbeHead` (a linear layer
        on standardized, width-scaled inputs), one per layer of `PROBED_ONLINE`,
        or of Nones for 0 classes.
    """
    return tuple(
        OnlineProbeHead(classes, name=f"online_probe_{key}")
        if classes else None
        for key in PROBED_ONLINE
    )


def _flat(features):
    """`[N, ...]` features as float32 `[N, width]`."""
    return ops.reshape(ops.cast(features, "float32"),
                       (ops.shape(features)[0], -1))


def probe_features(views):
    """What the online probe reads of the encoded views.

    Args:
        views: list of views, dicts holding each of `PROBED_ONLINE` as
            `[N, ...]` features (one view, or two encoders' views of the
            same images).

    Returns:
        Dict mapping each of `PROBED_ONLINE` to gradient-stopped float32
        `[N, width]`: the flattened features, the views' side by side.
    """
    features = {}
    for key in PROBED_ONLINE:
        flat = [_flat(view[key]) for view in views]
        features[key] = ops.stop_gradient(
            ops.concatenate(flat, axis=-1) if len(flat) > 1 else flat[0])
    return features


def probe_widths(encoders):
    """The input width of each head, for the encoders' views side by side.

    Args:
        encoders: the Functional encoders whose outputs the probe reads.

    Returns:
        Dict mapping each of `PROBED_ONLINE` to the number of flattened
        features of that output, summed over `encoders`.
    """
    widths = {}
    for key in PROBED_ONLINE:
        total = 0
        for encoder in encoders:
            size = 1
            for dim in encoder.output[key].shape[1:]:
                size *= int(dim)
            total += size
        widths[key] = total
    return widths


def probe_loss(heads, features, labels):
    """The heads' cross-entropy on the labelled images.

    Args:
        heads: dict mapping probed layers to their heads (layers giving
            logits).
        features: `probe_features`'s dict.
        labels: `[N]` int class ids, -1 for unlabelled images.

    Returns:
        The sum over the heads of the mean cross-entropy of the labelled
        images, a float32 scalar (0 without any).
    """
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    labelled = ops.cast(labels >= 0, "float32")
    safe = ops.where(labels >= 0, labels, ops.zeros_like(labels))
    count = ops.maximum(ops.sum(labelled), 1.0)
    loss = ops.zeros((), dtype="float32")
    for key, head in heads.items():
        logits = ops.cast(head(features[key]), "float32")
        cross_entropy = keras.losses.sparse_categorical_crossentropy(
            safe, logits, from_logits=True)
        loss = loss + ops.sum(cross_entropy * labelled) / count
    return loss


class OnlineProbeMixin:
    """The online probe's part of `DeepInfoMax`: its heads and their loss.

    The model holds `online_probe_classes` and the heads (`probe_heads`) as
    `online_probe_y` and `online_probe_conv`.
    """

    @property
    def online_probe_heads(self):
        """`{"y": Dense, "conv": Dense}` of the online probe, or `{}`."""
        if not self.online_probe_classes:
            return {}
        return {"y": self.online_probe_y, "conv": self.online_probe_conv}

    @property
    def probe_variables(self):
        """Trainable variables of the online probe's heads."""
        variables = []
        for head in self.online_probe_heads.values():
            variables += head.trainable_variables
        return variables

    def build_online_probe(self, encoders):
        """Builds the heads for the features of `encoders` side by side.

        Args:
            encoders: the Functional encoders whose outputs the probe
                reads.
        """
        if not self.online_probe_classes:
            return
        widths = probe_widths(encoders)
        for key, head in self.online_probe_heads.items():
            head.build((None, widths[key]))

    def compute_probe_losses(self, features, labels):
        """The online probe's cross-entropy on the labelled images.

        Args:
            features: `compute_encoder_losses`'s gradient-stopped features.
            labels: `[N]` int class ids, -1 for unlabelled images, or None.

        Returns:
            `{PROBE_LOSS_KEY: loss}`: the sum over the probed layers of the
            mean cross-entropy of the labelled images (0 without any).
        """
        if labels is None or not self.online_probe_classes:
            return {PROBE_LOSS_KEY: ops.zeros((), dtype="float32")}
        return {PROBE_LOSS_KEY: probe_loss(
            self.online_probe_heads, features, labels)}
