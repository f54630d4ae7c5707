"""DIM's loss terms from critic scores, shared by every backend.

The encoder and the MI critics minimize

    loss = -alpha * I_global - beta * I_local + gamma * L_prior

where `I_*` are estimates (`dim_keras.estimators`) and `L_prior` is the
non-saturating generator loss `E[softplus(-D(sigmoid(Y)))]`. The prior
discriminator D minimizes its own GAN loss
`E_prior[softplus(-D(z))] + E[softplus(D(sigmoid(Y)))]`, plus an optional
gradient penalty. Which network each term updates is spelled out in
`dim_keras.model.DeepInfoMax`.
"""

import math

from keras import ops

from dim_keras import estimators
from dim_keras.checks import check_weights  # noqa: F401 (its old home)


def global_mi(scores, estimator):
    """Global MI estimate from `[N, N]` critic scores.

    Args:
        scores: `[N, N]`, `scores[i, j] = T(features_i, y_j)`.
        estimator: `"jsd"`, `"dv"` or `"nce"`.

    Returns:
        Scalar estimate to maximize.
    """
    return estimators.estimate(scores, estimator)


def local_mi(scores, estimator):
    """Local MI estimate, averaged over locations, from `[N, L, N]` scores.

    `scores[i, l, j] = T(local_i[l], y_j)`. For "jsd" and "dv" each location
    is an `[N, N]` problem (negatives: the same location of the other
    images), averaged over locations. For "nce" we follow the reference
    implementation: a positive `(local_i[l], y_i)` competes against every
    location of every other image scored with the same `y_i`, so each
    softmax has `K = 1 + (N - 1) * L` candidates and the bound is at most
    `log K`.

    Args:
        scores: `[N, L, N]` local critic scores.
        estimator: `"jsd"`, `"dv"` or `"nce"`.

    Returns:
        Scalar estimate to maximize.
    """
    estimators.check_estimator(estimator)
    scores = ops.cast(scores, "float32")
    if estimator != "nce":
        return estimators.estimate(ops.transpose(scores, (1, 0, 2)), estimator)
    n, num_locations = ops.shape(scores)[0], ops.shape(scores)[1]
    # same_image[i, 0, j] is True where the location's image is y's image.
    same_image = ops.cast(ops.eye(n), "bool")[:, None, :]
    masked = ops.where(same_image, ops.full_like(scores, -1e30), scores)
    # For each y_j: logsumexp over all locations of all other images.
    negatives = ops.logsumexp(ops.reshape(masked, (-1, n)), axis=0)  # [N]
    positives = ops.transpose(ops.diagonal(scores, axis1=0, axis2=2))  # [N, L]
    log_probs = positives - ops.logaddexp(positives, negatives[:, None])
    num_candidates = 1 + (n - 1) * num_locations
    return ops.mean(log_probs) + math.log(num_candidates)


def soft_clip(scores, clip):
    """AMDIM's soft clipping of critic scores, `clip * tanh(scores / clip)`.

    Scores stay in `(-clip, clip)` and near-linear well inside it, so the
    NCE logits cannot run away (Bachman et al., 2019, used `clip = 20`).

    Args:
        scores: critic scores, any shape.
        clip: float; 0 or None leaves the scores as they are.

    Returns:
        float32 scores of the same shape.
    """
    scores = ops.cast(scores, "float32")
    if not clip:
        return scores
    return clip * ops.tanh(scores / clip)


def score_penalty(scores):
    """AMDIM's penalty on the raw critic scores: `mean(scores ** 2)`.

    Args:
        scores: critic scores, any shape.

    Returns:
        Scalar float32, added to the loss with its weight.
    """
    return ops.mean(ops.square(ops.cast(scores, "float32")))


def generator_prior_loss(fake_logits):
    """Non-saturating loss for the encoder: `E[softplus(-D(sigmoid(Y)))]`.

    Args:
        fake_logits: discriminator logits on `sigmoid(Y)`.

    Returns:
        Scalar loss, minimized by the encoder.
    """
    return ops.mean(ops.softplus(-ops.cast(fake_logits, "float32")))


def discriminator_loss(real_logits, fake_logits):
    """GAN loss of the prior discriminator (prior samples are "real").

    Args:
        real_logits: logits on samples of the prior.
        fake_logits: logits on `sigmoid(Y)` (gradient-stopped).

    Returns:
        Scalar loss, minimized by the discriminator.
    """
    real = ops.mean(ops.softplus(-ops.cast(real_logits, "float32")))
    fake = ops.mean(ops.softplus(ops.cast(fake_logits, "float32")))
    return real + fake


