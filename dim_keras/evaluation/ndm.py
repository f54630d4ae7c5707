"""Neural dependency measure (NDM) of a representation, in nats.

A discriminator (dense 1000, ReLU, dense 200, ReLU, dense 1, as in the
paper) is trained to tell representations `Y` from representations whose
dimensions were each shuffled independently across the batch (samples of
the product of the marginals). Trained with the binary (JSD / GAN) loss,
its logit approaches `log p(y) / prod_k p(y_k)`; its Donsker-Varadhan value
`E_P[T] - log E_Q[exp T]` on held-out representations estimates the total
correlation `KL(p(y) || prod_k p(y_k))`: 0 for independent dimensions,
higher for more dependent ones. Y is standardized per dimension first,
which leaves the total correlation unchanged.
"""

import math

import keras
import numpy as np
from keras import ops

from dim_keras.evaluation.critic_training import RandomBatches
from dim_keras.evaluation.critic_training import fit_objective
from dim_keras.evaluation.critic_training import standardizer


def build_ndm_discriminator(dim, hidden_units=(1000, 200)):
    """The paper's NDM discriminator, applied to real and shuffled Y.

    Args:
        dim: int, width of Y.
        hidden_units: tuple of ints, ReLU layer widths.

    Returns:
        A Functional `keras.Model` taking `{"real": [N, dim], "shuffled":
        [N, dim]}` and returning logits `[2, N]` (real first).
    """
    layers = [
        keras.layers.Dense(units, activation="relu", name=f"hidden{i + 1}")
        for i, units in enumerate(hidden_units)
    ]
    layers.append(keras.layers.Dense(1, name="logit"))

    def score(h):
        for layer in layers:
            h = layer(h)
        return ops.squeeze(h, axis=-1)

    real = keras.Input(shape=(dim,), name="real")
    shuffled = keras.Input(shape=(dim,), name="shuffled")
    logits = ops.stack([score(real), score(shuffled)])
    return keras.Model({"real": real, "shuffled": shuffled}, logits,
                       name="ndm_discriminator")


def jsd_objective(logits):
    """Binary (f-GAN JSD) objective: real is positive, shuffled negative."""
    return (ops.mean(-ops.softplus(-logits[0]))
            - ops.mean(ops.softplus(logits[1])))


def dv_value(logits):
    """Donsker-Varadhan value `mean(T_real) - log mean exp(T_shuffled)`."""
    logits = ops.cast(logits, "float32")
    n = ops.shape(logits)[1]
    return (ops.mean(logits[0])
            - (ops.logsumexp(logits[1]) - math.log(n)))


def shuffle_dimensions(y, rng):
    """Permutes each column of `y` independently along the rows."""
    return rng.permuted(y, axis=0)


def _shuffle_batch(batch, rng):
    return {"real": batch["real"],
            "shuffled": shuffle_dimensions(batch["real"], rng)}


def ndm(y, eval_y=None, steps=1000, batch_size=128, learning_rate=1e-4,
        hidden_units=(1000, 200), eval_repeats=4, seed=0, verbose=0,
        progress=None):
    """Trains the NDM discriminator on `y` and reports its DV value.

    Example:

    >>> import numpy as np
    >>> y = np.random.default_rng(0).normal(size=(2000, 4))
    >>> ndm(y, steps=200)["estimate"]  # close to 0  # doctest: +SKIP

    Args:
        y: array `[N, ...]` of representations (flattened).
        eval_y: array or None, held-out representations to report on
            (None: `y`).
        steps: int, training batches.
        batch_size: int, representations per batch (shuffled within it).
        learning_rate: float, Adam learning rate.
        hidden_units: tuple of ints, discriminator widths (1000, 200).
        eval_repeats: int, independent shufflings of the evaluation set
            averaged over.
        seed: int, seeds the weights, batches and shufflings.
        verbose: Keras `fit` verbosity.
        progress: a `dim_keras.progress.Progress` advanced by the
            training steps done, or None.

    Returns:
        Dict with `estimate` (nats, on the evaluation set), sizes and
        settings.
    """
    y = np.asarray(y)
    if len(y) < 2:
        raise ValueError(
            f"NDM needs at least 2 representations. Received: y.shape={y.shape}"
        )
    if batch_size < 2 or steps < 1 or eval_repeats < 1:
        raise ValueError(
            "batch_size must be at least 2, steps and eval_repeats at least "
            f"1. Received: batch_size={batch_size}, steps={steps}, "
            f"eval_repeats={eval_repeats}"
        )
    held_out = eval_y is not None
    scale = standardizer(y)
    train = scale(y)
    evaluation = scale(eval_y) if held_out else train
    keras.utils.set_random_seed(seed)
    discriminator = build_ndm_discriminator(train.shape[1], hidden_units)
    batches = RandomBatches({"real": train}, batch_size, steps, seed=seed,
                            transform=_shuffle_batch)
    callbacks = []
    if progress is not None:
        from dim_keras.progress import keras_callback

        callbacks.append(keras_callback(progress))
    fit_objective(discriminator, jsd_objective, batches, learning_rate,
                  verbose=verbose, callbacks=callbacks)
    rng = np.random.default_rng([seed, 1])
    values = []
    for _ in range(eval_repeats):
        logits = discriminator(
            {"real": evaluation,
             "shuffled": shuffle_dimensions(evaluation, rng)},
            training=False,
        )
        values.append(float(ops.convert_to_numpy(dv_value(logits))))
    return {
        "measure": "ndm",
        "estimate": float(np.mean(values)),
        "units": "nats",
        "estimator": "dv (discriminator trained with the jsd / GAN loss)",
        "evaluated_on": "held-out" if held_out else "training set",
        "train_size": int(len(train)),
        "eval_size": int(len(evaluation)),
        "dim": int(train.shape[1]),
        "discriminator": "dense " + "-".join(map(str, hidden_units)) + "-1",
        "steps": int(steps),
        "batch_size": int(batches.batch_size),
        "learning_rate": float(learning_rate),
        "eval_repeats": int(eval_repeats),
        "seed": int(seed),
    }
