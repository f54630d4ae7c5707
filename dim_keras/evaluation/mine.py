"""MINE: a Donsker-Varadhan estimate of I(X; Y), in nats.

A critic `T(x, y)` is trained to maximize the Donsker-Varadhan bound
`E_P[T] - log E_Q[exp T]` (Belghazi et al., 2018), with the batch's other
pairs as samples of the product of marginals, exactly as in
`dim_keras.estimators.dv` (`scores[i, j] = T(x_i, y_j)`). The bound is then
measured on held-out pairs, in batches of the training batch size.

The critic concatenates its two inputs: `T(x, y) = w . relu(W_h relu(A x +
B y + c) + d) + e`. Its first layer is split (`A x + B y`) so that all
`N x N` pairings of a batch come from one broadcast sum. Inputs are
flattened and standardized with the training statistics.
"""

import keras
import numpy as np
from keras import ops

from dim_keras import estimators
from dim_keras.evaluation.critic_training import RandomBatches
from dim_keras.evaluation.critic_training import fit_objective
from dim_keras.evaluation.critic_training import standardizer


def build_mine_critic(x_dim, y_dim, units=128):
    """The concatenating critic, scoring every pairing of a batch.

    Args:
        x_dim: int, width of flattened X.
        y_dim: int, width of flattened Y.
        units: int, hidden width.

    Returns:
        A Functional `keras.Model` taking `{"x": [N, x_dim], "y": [N,
        y_dim]}` and returning scores `[N, N]`, `scores[i, j] = T(x_i,
        y_j)`.
    """
    x = keras.Input(shape=(x_dim,), name="x")
    y = keras.Input(shape=(y_dim,), name="y")
    a = keras.layers.Dense(units, name="x_in")(x)
    b = keras.layers.Dense(units, use_bias=False, name="y_in")(y)
    h = ops.relu(ops.expand_dims(a, 1) + ops.expand_dims(b, 0))
    h = keras.layers.Dense(units, activation="relu", name="hidden")(h)
    scores = ops.squeeze(keras.layers.Dense(1, name="score")(h), axis=-1)
    return keras.Model({"x": x, "y": y}, scores, name="mine_critic")


def _dv_objective(batch_size):
    def objective(scores):
        # Static [B, B]: training batches are all full, and the estimator
        # checks the matrix is square.
        return estimators.dv(ops.reshape(scores, (batch_size, batch_size)))

    return objective


def evaluate_dv(critic, x, y, batch_size):
    """Mean Donsker-Varadhan bound of a critic over consecutive batches.

    Args:
        critic: a critic from `build_mine_critic`.
        x: standardized array `[N, x_dim]`.
        y: standardized array `[N, y_dim]`.
        batch_size: int; full batches only (one batch of all rows when
            `N < batch_size`).

    Returns:
        Float, the bound in nats.
    """
    n = len(x)
    size = min(batch_size, n)
    values = []
    for start in range(0, n - size + 1, size):
        batch = {"x": x[start:start + size], "y": y[start:start + size]}
        scores = critic(batch, training=False)
        values.append(float(ops.convert_to_numpy(estimators.dv(scores))))
    return float(np.mean(values))


def mine(x, y, eval_x=None, eval_y=None, steps=500, batch_size=128,
         units=128, learning_rate=1e-3, seed=0, verbose=0):
    """Trains a MINE critic on `(x, y)` and reports its DV bound in nats.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 1)).astype("float32")
    >>> y = 0.8 * x + 0.6 * rng.normal(size=(2000, 1)).astype("float32")
    >>> mine(x, y, steps=300)["estimate"]  # true value 0.51  # doctest: +SKIP

    Args:
        x: array `[N, ...]`, e.g. images; flattened and standardized.
        y: array `[N, ...]`, e.g. representations, paired row by row with
            `x`.
        eval_x: array or None, held-out X to report on (None: `x`).
        eval_y: array or None, held-out Y paired with `eval_x`.
        steps: int, training batches.
        batch_size: int, pairs per batch (N - 1 negatives per positive).
        units: int, critic width.
        learning_rate: float, Adam learning rate.
        seed: int, seeds the weights and the batches.
        verbose: Keras `fit` verbosity.

    Returns:
        Dict with `estimate` (the bound on the evaluation pairs, nats),
        `train_estimate` (on the training pairs), sizes and settings.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(
            "x and y need the same number of rows, at least 2. "
            f"Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    if (eval_x is None) != (eval_y is None):
        raise ValueError(
            "Give both eval_x and eval_y, or neither. Received: "
            f"eval_x is None: {eval_x is None}, eval_y is None: "
            f"{eval_y is None}"
        )
    if batch_size < 2 or steps < 1:
        raise ValueError(
            "batch_size must be at least 2 and steps at least 1. "
            f"Received: batch_size={batch_size}, steps={steps}"
        )
    held_out = eval_x is not None
    if not held_out:
        eval_x, eval_y = x, y
    scale_x, scale_y = standardizer(x), standardizer(y)
    train = {"x": scale_x(x), "y": scale_y(y)}
    keras.utils.set_random_seed(seed)
    critic = build_mine_critic(train["x"].shape[1], train["y"].shape[1],
                               units)
    batches = RandomBatches(train, batch_size, steps, seed=seed)
    fit_objective(critic, _dv_objective(batches.batch_size), batches,
                  learning_rate, verbose=verbose)
    ex, ey = scale_x(eval_x), scale_y(eval_y)
    return {
        "measure": "mine",
        "estimate": evaluate_dv(critic, ex, ey, batches.batch_size),
        "train_estimate": evaluate_dv(critic, train["x"], train["y"],
                                      batches.batch_size),
        "units": "nats",
        "estimator": "dv",
        "evaluated_on": "held-out pairs" if held_out else "training pairs",
        "train_size": int(len(x)),
        "eval_size": int(len(eval_x)),
        "x_dim": int(train["x"].shape[1]),
        "y_dim": int(train["y"].shape[1]),
        "critic": f"concat critic, {units} units",
        "critic_units": int(units),
        "steps": int(steps),
        "batch_size": int(batches.batch_size),
        "learning_rate": float(learning_rate),
        "seed": int(seed),
    }
