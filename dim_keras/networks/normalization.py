"""Batch and layer normalization of the critic's embeddings, with fewer passes.

The encode-and-dot critic normalizes `[N*L, U]` embeddings (4096 x 2048 at
batch 64, U=2048): every element-wise operation there is a full pass over
memory, and without a fusing compiler the autodiff graph of a batch norm or a
layer norm makes a dozen or more of them. These functions compute exactly the
same values (same variables, same moving statistics) in fewer passes:

- `linear_batch_norm_relu`: `relu(bn(x @ W))` for a bias-free dense layer.
  The batch statistics of `x @ W` are linear in the input's mean and
  quadratic in its covariance: `mean = mu_x @ W` and
  `var = diag(W^T Cov(x) W)`. Both come from a `[C, C]` covariance (C is the
  input width, 128 in basic32x32), so the normalization folds into the
  matmul's kernel and bias; the `[N*L, U]` output is touched only by the bias
  add and the ReLU.
- `standardize`: a layer norm without its scale and offset, with its
  gradient derived by hand (three row reductions and a few element-wise
  passes).
- `standardized_dot`: `standardize(x) @ y^T` for the critic's scores, where
  the standardization's scale and its gradient's row reductions move to the
  `[M, N]` side of the product (N, the batch, is much smaller than the
  width U). The critic applies the layer norm's own scale and offset to the
  other side of its dot product (`EncodeAndDotCritic`), where they cost
  `[N, U]`, not `[N*L, U]`.

The critic keeps its plain Keras sublayers and their variables, so
checkpoints and saved models are unchanged.
"""

import keras
from keras import ops


def linear_batch_norm_relu(x, dense, batch_norm, training=False):
    """`relu(batch_norm(dense(x)))` with the statistics taken from `x`.

    Training mode updates `batch_norm`'s moving mean and variance exactly as
    the layer itself would (the batch's biased variance, its momentum).

    Args:
        x: `[M, C]` rows.
        dense: built `keras.layers.Dense` without bias, `[C, U]` kernel.
        batch_norm: built `keras.layers.BatchNormalization` over the last
            axis (center and scale on, no renorm).
        training: bool; True (with a trainable `batch_norm`) normalizes
            with the batch's statistics, as the layer does.

    Returns:
        `[M, U]` in `x`'s dtype.
    """
    kernel = ops.cast(dense.kernel, "float32")
    gamma = ops.cast(batch_norm.gamma, "float32")
    beta = ops.cast(batch_norm.beta, "float32")
    if training and batch_norm.trainable:
        rows = ops.cast(x, "float32")
        mean_x = ops.mean(rows, axis=0)
        centered = rows - mean_x
        count = ops.cast(ops.shape(rows)[0], "float32")
        covariance = ops.matmul(ops.transpose(centered), centered) / count
        mean = ops.matmul(mean_x[None, :], kernel)[0]
        variance = ops.maximum(
            ops.sum(kernel * ops.matmul(covariance, kernel), axis=0), 0.0
        )
        momentum = batch_norm.momentum
        batch_norm.moving_mean.assign(
            batch_norm.moving_mean * momentum
            + ops.stop_gradient(mean) * (1.0 - momentum)
        )
        batch_norm.moving_variance.assign(
            batch_norm.moving_variance * momentum
            + ops.stop_gradient(variance) * (1.0 - momentum)
        )
    else:
        mean = ops.cast(batch_norm.moving_mean, "float32")
        variance = ops.cast(batch_norm.moving_variance, "float32")
    scale = gamma * ops.rsqrt(variance + batch_norm.epsilon)
    folded_kernel = ops.cast(kernel * scale, x.dtype)
    folded_bias = ops.cast(beta - mean * scale, x.dtype)
    return ops.relu(ops.matmul(x, folded_kernel) + folded_bias)


def standardize(x, epsilon):
    """`(x - mean) / sqrt(var + epsilon)` over the last axis of `[M, U]` rows.

    A layer norm without its scale and offset, computed in float32 with a
    hand-derived gradient (on PyTorch, Keras's layer norm op, which calls
    PyTorch's fused kernel).

    Args:
        x: `[M, U]`.
        epsilon: float, added to the variance.

    Returns:
        `[M, U]` float32.
    """
    x = ops.cast(x, "float32")
    if keras.backend.backend() == "torch":
        return ops.layer_normalization(x, epsilon=epsilon)
    return _standardize(x, float(epsilon))


def _centered_rows(x, epsilon):
    """Float32 `x - mean` and `1 / sqrt(var + epsilon)` over the last axis.

    The variance is that of the centered rows (not `E[x^2] - E[x]^2`, which
    cancels when the rows share a large offset).
    """
    centered = ops.cast(x, "float32")
    centered = centered - ops.mean(centered, axis=-1, keepdims=True)
    inv_std = ops.rsqrt(
        ops.mean(ops.square(centered), axis=-1, keepdims=True) + epsilon
    )
    return centered, inv_std


def _upstream(args, upstream):
    # Keras passes the upstream gradient positionally on TensorFlow and
    # JAX, and as `upstream=` on PyTorch.
    if upstream is None:
        (upstream,) = args
    return upstream


def _standardize(x, epsilon):
    @ops.custom_gradient
    def forward(x):
        centered, inv_std = _centered_rows(x, epsilon)
        standardized = centered * inv_std

        def grad(*args, upstream=None):
            upstream = _upstream(args, upstream)
            # Mean and variance depend on the whole row:
            # dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)).
            return inv_std * (
                upstream
                - ops.mean(upstream, axis=-1, keepdims=True)
                - standardized
                * ops.mean(upstream * standardized, axis=-1, keepdims=True)
            )

        return standardized, grad

    return forward(x)


def standardized_dot(x, y, epsilon):
    """`standardize(x, epsilon) @ transpose(y)`, with a hand-derived gradient.

    With `x_hat = (x - mean) * inv_std` (row statistics of `x`) and
    `scores = x_hat @ y^T`, the row scale `inv_std` is applied to the
    `[M, N]` scores instead of the `[M, U]` rows, and the layer norm's
    backward row reductions are taken on `[M, N]` too:

    - `mean_u(g) = d @ mean_u(y)` for `g = d @ y`, so the centered gradient
      is `d @ (y - mean_u(y))`;
    - `mean_u(g * x_hat) = sum_n(d * scores) / U`.

    The `[M, U]` rows are touched by the statistics, one centering pass and
    two passes of the input gradient
    `(inv_std * d) @ (y - mean_u(y)) - inv_std^2 * sum_n(d * scores) / U
    * (x - mean)`. Statistics and row scales are float32; the matmuls run in
    `x`'s dtype (bfloat16 under mixed precision).

    Args:
        x: `[M, U]` rows to standardize.
        y: `[N, U]`, same dtype as `x`.
        epsilon: float, added to the variance.

    Returns:
        `[M, N]` in `x`'s dtype.
    """
    x = ops.convert_to_tensor(x)
    return _standardized_dot(x, ops.convert_to_tensor(y), float(epsilon))


def _standardized_dot(x, y, epsilon):
    dtype = x.dtype

    @ops.custom_gradient
    def forward(x, y):
        centered, inv_std = _centered_rows(x, epsilon)
        centered = ops.cast(centered, dtype)
        scores = inv_std * ops.cast(
            ops.matmul(centered, ops.transpose(y)), "float32"
        )

        def grad(*args, upstream=None):
            upstream = ops.cast(_upstream(args, upstream), "float32")
            units = ops.cast(ops.shape(x)[-1], "float32")
            # mean_u(g * x_hat) for g = upstream @ y, from [M, N] only.
            projection = ops.sum(upstream * scores, axis=-1, keepdims=True)
            row_scale = inv_std * inv_std * projection / units
            scaled = ops.cast(inv_std * upstream, dtype)
            y_mean = ops.mean(ops.cast(y, "float32"), axis=-1, keepdims=True)
            y_centered = y - ops.cast(y_mean, dtype)
            grad_x = ops.matmul(scaled, y_centered) - ops.cast(
                row_scale, dtype
            ) * centered
            grad_y = ops.matmul(ops.transpose(scaled), centered)
            return grad_x, grad_y

        return ops.cast(scores, dtype), grad

    return forward(x, y)
