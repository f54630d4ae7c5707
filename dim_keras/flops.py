"""Floating-point operations of one DIM training step, counted by hand.

Only the dense linear algebra is counted (convolutions, dense layers, the
critics' score products), with one multiply-add = 2 FLOPs: that is the work a
matrix-multiply unit does, so FLOPs / step time compares directly with the
machine's measured matmul rate. Element-wise work (batch and layer norms,
activations, the estimators' softplus / logsumexp, the optimizer update) is
memory-bound and is left out, which makes the achieved rate a lower bound.

Training = forward + backward. A layer's backward pass costs two forwards
(gradient w.r.t. its input and w.r.t. its weights), except the encoder's first
layer, whose input (the images) needs no gradient. The prior discriminator's
terms are counted as `dim_keras.model.DeepInfoMax.compute_dim_losses` runs
them (see `prior_discriminator_flops`).
"""

from keras import layers

from dim_keras.networks.critics import ConcatAndConvolveCritic
from dim_keras.networks.critics import EncodeAndDotCritic


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


def layer_forward_flops(layer, input_shape, output_shape):
    """Forward FLOPs of one Conv2D or Dense layer on one sample.

    Args:
        layer: a Keras layer.
        input_shape: its input shape without the batch axis.
        output_shape: its output shape without the batch axis.

    Returns:
        int FLOPs (2 per multiply-add); 0 for other layer types.
    """
    if isinstance(layer, layers.Conv2D):
        kh, kw = layer.kernel_size
        cin = input_shape[-1]
        return 2 * _prod(output_shape) * kh * kw * cin
    if isinstance(layer, layers.Dense):
        return 2 * _prod(output_shape) * input_shape[-1]
    return 0


def encoder_flops(encoder):
    """Forward and training FLOPs per image of a Functional encoder.

    Args:
        encoder: a Functional `keras.Model` of built-in layers.

    Returns:
        Dict with `"forward"` and `"train"` FLOPs per image.
    """
    forward = train = 0
    first = True
    for layer in encoder.layers:
        if not isinstance(layer, (layers.Conv2D, layers.Dense)):
            continue
        flops = layer_forward_flops(
            layer, layer.input.shape[1:], layer.output.shape[1:]
        )
        forward += flops
        # The first layer's input is the images: no input gradient.
        train += flops * (2 if first else 3)
        first = False
    return {"forward": forward, "train": train}


def _embedding_flops(rows, channels, units):
    # hidden C->U, out U->U, shortcut C->U on `rows` vectors.
    return 2 * rows * (2 * channels * units + units * units)


def local_critic_flops(critic, batch_size, num_locations, channels, y_dim):
    """Forward FLOPs of a local critic on a batch (all N x N pairs).

    Args:
        critic: `EncodeAndDotCritic` or `ConcatAndConvolveCritic`.
        batch_size: N.
        num_locations: L = H * W of the local map.
        channels: C of the local map.
        y_dim: size of Y.

    Returns:
        int FLOPs for the whole batch.
    """
    n, length, u = batch_size, num_locations, critic.units
    if isinstance(critic, EncodeAndDotCritic):
        return (
            _embedding_flops(n * length, channels, u)
            + _embedding_flops(n, y_dim, u)
            + 2 * n * length * n * u  # scores: [N*L, U] x [U, N]
        )
    if isinstance(critic, ConcatAndConvolveCritic):
        return (
            2 * n * length * channels * u  # local_in
            + 2 * n * y_dim * u  # y_in
            + 2 * n * length * n * u * u  # hidden on every pair
            + 2 * n * length * n * u  # score
        )
    raise TypeError(f"Unknown local critic. Received: critic={critic!r}")


def global_critic_flops(critic, batch_size, local_shape, y_dim):
    """Forward FLOPs of a `GlobalCritic` on a batch (all N x N pairs).

    Args:
        critic: `GlobalCritic`.
        batch_size: N.
        local_shape: `(H, W, C)` of the local map.
        y_dim: size of Y.

    Returns:
        int FLOPs for the whole batch.
    """
    n, u = batch_size, critic.units
    h, w, c = local_shape
    flops = 0
    for conv in critic.convs:  # 3x3, padding "valid"
        kh, kw = conv.kernel_size
        h, w = h - kh + 1, w - kw + 1
        flops += 2 * n * h * w * conv.filters * kh * kw * c
        c = conv.filters
    flops += 2 * n * h * w * c * u  # features_in
    flops += 2 * n * y_dim * u  # y_in
    flops += 2 * n * n * u * u  # hidden on every pair
    flops += 2 * n * n * u  # score
    return flops


def prior_discriminator_flops(discriminator, batch_size, gradient_penalty):
    """Training FLOPs of the prior terms of one step.

    Per the step: D on sigmoid(Y) for the encoder's loss (forward + input
    gradient); D on N prior and N encoded samples for its own loss (forward
    + weight gradients); with a gradient penalty, D on 2N samples (forward +
    input gradient) and the weight gradient of that (twice the work it
    differentiates).

    Args:
        discriminator: the prior discriminator (a Functional model).
        batch_size: N.
        gradient_penalty: float, the penalty's weight (0 = none).

    Returns:
        int FLOPs.
    """
    per_sample = encoder_flops(discriminator)["forward"]
    units = 2 + 2 * 2  # generator term; real and fake terms
    if gradient_penalty > 0:
        units += 2 * 2 + 2 * (2 * 2)
    return units * per_sample * batch_size


def _statistics_flops(rows, channels, units):
    # Folded batch norm: covariance [C, rows] x [rows, C], Cov @ W, mean @ W.
    return 2 * channels * (rows * channels + channels * units + units)


def critic_statistics_flops(critic, batch_size, num_locations, channels, y_dim):
    """Forward FLOPs of the encode-and-dot critic's bookkeeping products.

    Not part of the model's count (`local_critic_flops`): these are the small
    matmuls by which the critic computes its batch-norm statistics from the
    input's covariance and moves the layer norm's offset onto Y's side
    (`dim_keras.networks.normalization`). TensorFlow's graph count includes
    them; a training step runs each three times, as any matmul.

    Args:
        critic: the local critic.
        batch_size: N.
        num_locations: L = H * W of the local map.
        channels: C of the local map.
        y_dim: size of Y.

    Returns:
        int FLOPs (0 for critics other than `EncodeAndDotCritic`).
    """
    if not isinstance(critic, EncodeAndDotCritic):
        return 0
    n, u = batch_size, critic.units
    return (
        _statistics_flops(n * num_locations, channels, u)
        + _statistics_flops(n, y_dim, u)
        + 2 * u * n  # the layer norm's offset: [1, U] x [U, N]
    )


def training_step_flops(model, batch_size):
    """FLOPs of one `DeepInfoMax` training step, by part.

    Args:
        model: a built `DeepInfoMax`.
        batch_size: N.

    Returns:
        Dict of int FLOPs: `"encoder"`, `"local_critic"`,
        `"global_critic"`, `"prior"` and `"total"` (forward + backward).
    """
    encoder = model.encoder
    local_shape = tuple(encoder.output["local"].shape[1:])
    y_dim = encoder.output["y"].shape[-1]
    parts = {
        "encoder": batch_size * encoder_flops(encoder)["train"],
        "local_critic": 0,
        "global_critic": 0,
        "prior": 0,
    }
    if model.local_critic is not None:
        parts["local_critic"] = 3 * local_critic_flops(
            model.local_critic,
            batch_size,
            local_shape[0] * local_shape[1],
            local_shape[2],
            y_dim,
        )
    if model.global_critic is not None:
        parts["global_critic"] = 3 * global_critic_flops(
            model.global_critic, batch_size, local_shape, y_dim
        )
    if model.prior_discriminator is not None:
        parts["prior"] = prior_discriminator_flops(
            model.prior_discriminator, batch_size, model.gradient_penalty
        )
    parts["total"] = sum(parts.values())
    return parts


MATMUL_OP_TYPES = (
    "MatMul",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
    "Conv2D",
    "Conv2DBackpropInput",
    "Conv2DBackpropFilter",
)


def graph_matmul_flops(concrete_function):
    """Matmul and conv FLOPs of a traced TensorFlow function, by TF's count.

    An independent check of the hand count: TensorFlow's own per-op FLOP
    statistics (those of its profiler) summed over the matmul and
    convolution ops of the graph. The graph still holds ops that its
    optimizer prunes before running (the first conv's input gradient), so
    this exceeds the work done by exactly those ops.

    TensorFlow backend only.

    Args:
        concrete_function: a `tf.function`'s concrete function.

    Returns:
        Dict op type -> FLOPs, plus `"total"`.
    """
    from tensorflow.python.framework import ops as tf_ops

    counts = {}
    for op in concrete_function.graph.get_operations():
        if op.type not in MATMUL_OP_TYPES:
            continue
        stats = tf_ops.get_stats_for_node_def(
            concrete_function.graph, op.node_def, "flops"
        )
        counts[op.type] = counts.get(op.type, 0) + int(stats.value or 0)
    counts["total"] = sum(counts.values())
    return counts
