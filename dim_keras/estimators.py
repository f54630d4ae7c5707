"""Mutual information estimators on a matrix of critic scores.

Every estimator takes `scores[..., i, j] = T(x_i, y_j)`: the positive
(jointly drawn) pairs lie on the diagonal, the negative pairs (drawn from the
product of marginals: another image of the batch) off it. Leading axes (for
example one matrix per location of a local feature map) are averaged over.

The three estimators follow Hjelm et al., "Learning deep representations by
mutual information estimation and maximization" (ICLR 2019), section 3.1:

- "jsd": the f-GAN form of the Jensen-Shannon divergence,
  `E_P[-softplus(-T)] - E_Q[softplus(T)]`. It is not measured in nats; its
  maximum is `2 log 2` (the reference implementation adds `log 2` to each
  term, a constant shift we leave out).
- "dv": the Donsker-Varadhan bound, `E_P[T] - log E_Q[exp(T)]`, with the log
  of the mean computed by `logsumexp` so that it never overflows.
- "nce": infoNCE, `log N + E_i[log softmax_j(T(x_i, y_j))[i]]`, a lower bound
  on the mutual information in nats that can never exceed `log N`.

All maths is in float32 (scores of a mixed-precision model are cast up).
"""

import math

from keras import ops

from dim_keras.choices import ESTIMATORS
from dim_keras.choices import check_choice



def check_estimator(estimator):
    """Returns `estimator` when it names a known estimator.

    Args:
        estimator: str, one of `"jsd"`, `"dv"`, `"nce"`.

    Returns:
        The name, unchanged.

    Raises:
        ValueError: for any other value.
    """
    check_choice("estimator", estimator, ESTIMATORS)
    return estimator


def _as_score_matrix(scores):
    scores = ops.cast(ops.convert_to_tensor(scores), "float32")
    shape = ops.shape(scores)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(
            "Expected scores of shape [..., N, N] (a square critic matrix "
            f"per leading index). Received: scores.shape={tuple(shape)}"
        )
    if shape[-1] is not None and shape[-1] < 2:
        raise ValueError(
            "At least 2 samples are needed so that each positive has a "
            f"negative. Received: scores.shape={tuple(shape)}"
        )
    return scores


def _positive_mask(scores):
    n = ops.shape(scores)[-1]
    return ops.cast(ops.eye(n), "bool")


def _diagonal(scores):
    return ops.diagonal(scores, axis1=-2, axis2=-1)


def jsd(scores):
    """Jensen-Shannon (f-GAN) estimate, averaged over leading axes.

    Args:
        scores: tensor `[..., N, N]`, `scores[..., i, j] = T(x_i, y_j)`.

    Returns:
        Scalar `mean(-softplus(-positives)) - mean(softplus(negatives))`.
    """
    scores = _as_score_matrix(scores)
    n = ops.shape(scores)[-1]
    positive = ops.mean(-ops.softplus(-_diagonal(scores)))
    mask = _positive_mask(scores)
    negative_sum = ops.sum(
        ops.where(mask, ops.zeros_like(scores), ops.softplus(scores)),
        axis=(-2, -1),
    )
    negative = ops.mean(negative_sum) / float(n * (n - 1))
    return positive - negative


def dv(scores):
    """Donsker-Varadhan estimate in nats, averaged over leading axes.

    `log mean exp` over the negatives of each matrix is computed with
    `logsumexp`, so scores of any size give finite values and gradients.

    Args:
        scores: tensor `[..., N, N]`, `scores[..., i, j] = T(x_i, y_j)`.

    Returns:
        Scalar `mean(positives) - log(mean(exp(negatives)))`.
    """
    scores = _as_score_matrix(scores)
    n = ops.shape(scores)[-1]
    positive = ops.mean(_diagonal(scores), axis=-1)
    mask = _positive_mask(scores)
    # Masked entries get -inf-like values: exp() of them is exactly 0 and
    # `where` passes them no gradient.
    masked = ops.where(mask, ops.full_like(scores, -1e30), scores)
    flat = ops.reshape(masked, ops.shape(masked)[:-2] + (n * n,))
    log_mean_exp = ops.logsumexp(flat, axis=-1) - math.log(n * (n - 1))
    return ops.mean(positive - log_mean_exp)


def nce(scores):
    """InfoNCE estimate in nats, averaged over leading axes.

    For each `x_i` the `N` candidates `y_j` compete in a softmax; the estimate
    `log N + mean_i log softmax_j(scores[i, j])[i]` is at most `log N`.

    Args:
        scores: tensor `[..., N, N]`, `scores[..., i, j] = T(x_i, y_j)`.

    Returns:
        Scalar infoNCE lower bound.
    """
    scores = _as_score_matrix(scores)
    n = ops.shape(scores)[-1]
    log_probs = _diagonal(scores) - ops.logsumexp(scores, axis=-1)
    return ops.mean(log_probs) + math.log(n)


_ESTIMATOR_FNS = {"jsd": jsd, "dv": dv, "nce": nce}


def estimate(scores, estimator):
    """Estimates mutual information from a critic score matrix.

    Example:

    >>> import numpy as np
    >>> scores = np.array([[5.0, -5.0], [-5.0, 5.0]])
    >>> float(estimate(scores, "nce")) <= np.log(2)
    True

    Args:
        scores: tensor `[..., N, N]`, `scores[..., i, j] = T(x_i, y_j)`,
            positives on the diagonal; leading axes are averaged over.
        estimator: `"jsd"`, `"dv"` or `"nce"`.

    Returns:
        The scalar estimate, the quantity to maximize. For `"dv"` and
        `"nce"` a lower bound on the mutual information in nats.
    """
    return _ESTIMATOR_FNS[check_estimator(estimator)](scores)
