"""DIM's loss terms from critic scores, shared by every backend.

The encoder and the MI critics minimize

    loss = -alpha * I_global - beta * I_local + gamma * L_prior

where `I_*` are estimates (`dim_keras.estimators`) and `L_prior` is the
non-saturating generator loss `E[softplus(-D(sigmoid(Y)))]`. The prior
discriminator D minimizes its own GAN loss
`E_prior[softplus(-D(z))] + E[softplus(D(sigmoid(Y)))]`, plus an optional
gradient penalty. Which network each term updates is spelled out in
`dim_keras.model.DeepInfoMax`.

Before an estimator sees them, critic scores may be transformed as AMDIM
does: divided by a temperature (`scale_scores`), penalized by their mean
square (`score_penalty`) and soft-clipped (`soft_clip`); `mean_estimate`
applies the three to the predictions of one MI term
(`dim_keras.predictions`), and `mi_loss` weighs the terms into the loss.
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


def scale_scores(scores, temperature):
    """Critic scores divided by a temperature.

    AMDIM divides its dot products by the square root of the embedding
    width (about 22.6 for a 512-unit critic).

    Args:
        scores: critic scores, any shape.
        temperature: float > 0; 1 leaves the scores as they are (their
            dtype too).

    Returns:
        `scores / temperature` in float32, or `scores` for 1.
    """
    if temperature == 1.0:
        return scores
    return ops.cast(scores, "float32") / temperature


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


def mean_estimate(scores, estimate, estimator, temperature=1.0, clip=0.0,
                  penalty=0.0):
    """One MI term: the mean estimate of its predictions' scores.

    Each prediction's scores are divided by `temperature`
    (`scale_scores`), penalized (`score_penalty`, on the scaled scores),
    then soft-clipped (`soft_clip`) before `estimate` sees them.

    Args:
        scores: list of critic scores, one per prediction (`[N, N]` for
            `global_mi`, `[N, L, N]` for `local_mi`).
        estimate: `global_mi` or `local_mi`.
        estimator: `"jsd"`, `"dv"` or `"nce"`.
        temperature: float > 0; 1 leaves the scores as they are.
        clip: float; 0 turns the soft clipping off.
        penalty: float, the weight of the mean square of the scores,
            shared by the predictions; 0 turns it off.

    Returns:
        `(estimate, penalties)`: the mean over the predictions of their
        estimates (a float32 scalar, to maximize), and the list of each
        prediction's `penalty / len(scores) * score_penalty(scores)` (to
        add to the loss; empty when `penalty` is 0).
    """
    estimates, penalties = [], []
    for prediction in scores:
        prediction = scale_scores(prediction, temperature)
        if penalty:
            penalties.append(
                (penalty / len(scores)) * score_penalty(prediction))
        estimates.append(estimate(soft_clip(prediction, clip), estimator))
    return sum(estimates[1:], estimates[0]) / len(estimates), penalties


# The estimate of each MI term of the loss from its critic scores.
MI_ESTIMATES = {"global_mi": global_mi, "local_mi": local_mi}


def mi_loss(scores, weights, estimator, temperature=1.0, clip=0.0,
            penalty=0.0):
    """The MI terms' estimates and their part of the encoder's loss.

    Args:
        scores: dict mapping MI terms (`"global_mi"`, `"local_mi"`) to
            lists of critic scores, one per prediction; an empty list
            leaves the term out.
        weights: dict mapping the same terms to their weights (`alpha`,
            `beta`).
        estimator: `"jsd"`, `"dv"` or `"nce"`.
        temperature: float > 0, see `mean_estimate`.
        clip: float, see `mean_estimate`.
        penalty: float, see `mean_estimate`.

    Returns:
        `(estimates, loss)`: dict mapping each term with scores to its
        `mean_estimate`, and the float32 scalar `sum(penalties) -
        sum(weight * estimate)`, added up term by term in the order of
        `scores`.
    """
    loss = ops.zeros((), dtype="float32")
    estimates = {}
    for key, term_scores in scores.items():
        if not term_scores:
            continue
        estimates[key], penalties = mean_estimate(
            term_scores, MI_ESTIMATES[key], estimator, temperature, clip,
            penalty)
        for weighted_penalty in penalties:
            loss = loss + weighted_penalty
        loss = loss - weights[key] * estimates[key]
    return estimates, loss


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


