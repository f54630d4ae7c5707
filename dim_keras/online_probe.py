"""The online probe's pieces: what it reads, its heads' widths, its loss.

With `DeepInfoMax(online_probe_classes=...)`, linear classifiers (one head
per probed layer) learn from the gradient-stopped features of each
training batch's labelled images (label -1: unlabelled) with their own
optimizer, leaving the encoder's update unchanged (the online probe of
solo-learn). Where the batch carries the images un-augmented beside their
views, the features are those of the clean images
(`dim_keras.view_schemes.ViewScheme.probe_views`), as the heads are
scored; otherwise the first view's. `dim_keras.online_monitors` scores the
heads every epoch.
"""

import contextlib

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
# The heads are scored with an exponential moving average of their weights
# (kept by their optimizer, `use_ema`) at this momentum: an average over
# about the last 100 steps. At a rate that keeps up with the encoder, the
# last step's weights are noisy: replayed on a fixed encoder's features of
# the Tiny ImageNet subset (basic64x64 after 3 epochs, 281 steps an epoch),
# Y's held-out accuracy after epochs 1-3 was 14.4, 12.6 and 10.9% with the
# last weights and 14.6, 15.8 and 14.6% with the average (conv: 15.1, 16.2,
# 15.9 and 16.1, 17.2, 16.9%); a constant rate of 3e-3 was as noisy (15.5,
# then 12.5% on Y).
ONLINE_PROBE_EMA = 0.99


def probe_optimizer():
    """The online probe's default optimizer: Adam at `ONLINE_PROBE_LR`,
    keeping a moving average of the weights (`ONLINE_PROBE_EMA`) that
    `averaged_weights` scores with."""
    return keras.optimizers.Adam(ONLINE_PROBE_LR, use_ema=True,
                                 ema_momentum=ONLINE_PROBE_EMA)


@contextlib.contextmanager
def averaged_weights(heads, optimizer):
    """The heads' weights replaced by their optimizer's moving averages.

    Inside the `with` block the heads hold the averages; on leaving it they
    hold their own weights again, exactly. Without an average (no
    optimizer, one built without `use_ema`, or one not built yet) the
    heads are left as they are.

    Args:
        heads: dict of layer name to head (`online_probe_heads`).
        optimizer: the optimizer that trains them, or None.
    """
    if (optimizer is None or not getattr(optimizer, "use_ema", False)
            or not optimizer.built):
        yield
        return
    averages = optimizer._model_variables_moving_average
    pairs = []
    for head in heads.values():
        for variable in head.trainable_variables:
            index = optimizer._get_variable_index(variable)
            pairs.append((variable, averages[index]))
    saved = [ops.convert_to_numpy(variable) for variable, _ in pairs]
    for variable, average in pairs:
        variable.assign(average)
    try:
        yield
    finally:
        for (variable, _), value in zip(pairs, saved):
            variable.assign(value)


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
