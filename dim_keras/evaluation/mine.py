"""MINE: a Donsker-Varadhan estimate of I(X; Y), in nats.

A critic `T(x, y)` is trained to maximize the Donsker-Varadhan bound
`E_P[T] - log E_Q[exp T]` (Belghazi et al., 2018), with the batch's other
pairs as samples of the product of marginals, exactly as in
`dim_keras.estimators.dv` (`scores[i, j] = T(x_i, y_j)`).

The critic embeds each input by its own branch and scores the sum:
`T(x, y) = w . relu(W_h relu(e_x(x) + e_y(y)) + d) + e`. Images `[N, H, W,
C]` go through a small convolutional branch (strided 3x3 convolutions,
then a dense layer); vectors through a dense layer. Embedding each input
once and broadcasting the sum gives all `N x N` pairings of a batch.
Images are scaled per channel, vectors per feature, with the training
statistics.

A trained critic overfits its training pairs: its bound there keeps rising
while the bound on unseen pairs falls. So a validation part of the
training pairs is held back; the critic is trained in rounds of
`eval_every` batches, scored on the validation pairs after each, and the
weights of the best round are kept (early stopping after `patience`
rounds without improvement). The reported estimate is the bound of those
weights on the held-out evaluation pairs, beside its value on the
training pairs and on the validation pairs.
"""

import keras
import numpy as np
from keras import ops

from dim_keras import estimators
from dim_keras.evaluation.critic_training import ObjectiveModel
from dim_keras.evaluation.critic_training import RandomBatches
from dim_keras.evaluation.critic_training import standardizer


def image_standardizer(train):
    """Returns a function scaling images with `train`'s channel statistics.

    Args:
        train: array `[N, H, W, C]`.

    Returns:
        Callable `x -> float32 [len(x), H, W, C]`, each channel centred and
        scaled by its mean and standard deviation over `train`.
    """
    train = np.asarray(train, dtype="float32")
    mean = train.mean(axis=(0, 1, 2))
    std = train.std(axis=(0, 1, 2))
    std = np.where(std > 1e-8, std, 1.0)

    def apply(x):
        return ((np.asarray(x, dtype="float32") - mean) / std).astype(
            "float32")

    return apply


def _is_image(shape):
    return len(shape) == 4


def _image_branch(x, units, filters):
    h = x
    for i, width in enumerate(filters):
        h = keras.layers.Conv2D(width, 3, strides=2, padding="same",
                                activation="relu", name=f"x_conv{i + 1}")(h)
    h = keras.layers.Flatten(name="x_flatten")(h)
    return keras.layers.Dense(units, name="x_in")(h)


def build_mine_critic(x_shape, y_dim, units=128, conv_filters=(32, 64, 128)):
    """The critic, scoring every pairing of a batch.

    Args:
        x_shape: tuple, shape of one X: `(H, W, C)` for images (the
            convolutional branch), `(features,)` for vectors.
        y_dim: int, width of flattened Y.
        units: int, hidden width.
        conv_filters: tuple of ints, widths of the image branch's strided
            3x3 convolutions.

    Returns:
        A Functional `keras.Model` taking `{"x": [N, *x_shape], "y": [N,
        y_dim]}` and returning scores `[N, N]`, `scores[i, j] = T(x_i,
        y_j)`.
    """
    x_shape = tuple(int(s) for s in x_shape)
    if len(x_shape) not in (1, 3):
        raise ValueError(
            "x_shape must be (features,) or (height, width, channels). "
            f"Received: x_shape={x_shape}"
        )
    x = keras.Input(shape=x_shape, name="x")
    y = keras.Input(shape=(y_dim,), name="y")
    if len(x_shape) == 3:
        a = _image_branch(x, units, conv_filters)
    else:
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
        x: scaled array `[N, ...]`.
        y: scaled array `[N, y_dim]`.
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


def _split_validation(n, fraction, batch_size, seed):
    """Row indices of (training, validation) pairs; validation >= 1 batch."""
    rows = np.random.default_rng([seed, 2]).permutation(n)
    size = max(int(round(n * fraction)), min(batch_size, n // 2))
    return rows[size:], rows[:size]


def mine(x, y, eval_x=None, eval_y=None, steps=2000, batch_size=128,
         units=128, learning_rate=1e-3, validation_fraction=0.1,
         eval_every=100, patience=4, seed=0, verbose=0, progress=None):
    """Trains a MINE critic on `(x, y)` and reports its DV bound in nats.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 1)).astype("float32")
    >>> y = 0.8 * x + 0.6 * rng.normal(size=(2000, 1)).astype("float32")
    >>> mine(x, y)["estimate"]  # true value 0.51  # doctest: +SKIP

    Args:
        x: array `[N, H, W, C]` of images (convolutional branch) or `[N,
            ...]` of vectors (flattened).
        y: array `[N, ...]`, e.g. representations, paired row by row with
            `x`; flattened.
        eval_x: array or None, held-out X to report on (None: the
            validation pairs).
        eval_y: array or None, held-out Y paired with `eval_x`.
        steps: int, training batches at most.
        batch_size: int, pairs per batch (N - 1 negatives per positive).
        units: int, critic width.
        learning_rate: float, Adam learning rate.
        validation_fraction: float in (0, 1), part of the training pairs
            held back for early stopping.
        eval_every: int, batches per round between validation scores.
        patience: int, rounds without a better validation bound before
            training stops.
        seed: int, seeds the weights, the split and the batches.
        verbose: Keras `fit` verbosity.
        progress: a `dim_keras.progress.Progress` advanced by the
            training steps done, or None.

    Returns:
        Dict with `estimate` (the bound on the evaluation pairs, nats),
        `train_estimate` and `validation_estimate` (the same weights on
        the training and validation pairs), `steps_run`, `best_step`,
        sizes and settings.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if len(x) != len(y) or len(x) < 4:
        raise ValueError(
            "x and y need the same number of rows, at least 4. "
            f"Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    if (eval_x is None) != (eval_y is None):
        raise ValueError(
            "Give both eval_x and eval_y, or neither. Received: "
            f"eval_x is None: {eval_x is None}, eval_y is None: "
            f"{eval_y is None}"
        )
    if batch_size < 2 or steps < 1 or eval_every < 1 or patience < 1:
        raise ValueError(
            "batch_size must be at least 2; steps, eval_every and patience "
            f"at least 1. Received: batch_size={batch_size}, steps={steps}, "
            f"eval_every={eval_every}, patience={patience}"
        )
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            "validation_fraction must be in (0, 1). "
            f"Received: validation_fraction={validation_fraction}"
        )
    fit_rows, val_rows = _split_validation(len(x), validation_fraction,
                                           batch_size, seed)
    image = _is_image(x.shape)
    scale_x = (image_standardizer if image else standardizer)(x[fit_rows])
    scale_y = standardizer(y[fit_rows])
    train = {"x": scale_x(x[fit_rows]), "y": scale_y(y[fit_rows])}
    val = {"x": scale_x(x[val_rows]), "y": scale_y(y[val_rows])}
    size = min(int(batch_size), len(fit_rows))
    keras.utils.set_random_seed(seed)
    critic = build_mine_critic(train["x"].shape[1:], train["y"].shape[1],
                               units)
    model = ObjectiveModel(critic, _dv_objective(size))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))

    best, best_weights, best_step = -np.inf, critic.get_weights(), 0
    steps_run, waited = 0, 0
    while steps_run < steps and waited < patience:
        chunk = min(eval_every, steps - steps_run)
        batches = RandomBatches(train, size, chunk, seed=seed,
                                first=steps_run)
        callbacks = []
        if progress is not None:
            from dim_keras.progress import keras_callback

            callbacks.append(keras_callback(progress, offset=steps_run))
        model.fit(batches, epochs=1, verbose=verbose, callbacks=callbacks)
        steps_run += chunk
        value = evaluate_dv(critic, val["x"], val["y"], size)
        if np.isfinite(value) and value > best:
            best, best_weights, best_step = value, critic.get_weights(), \
                steps_run
            waited = 0
        else:
            waited += 1
    critic.set_weights(best_weights)

    held_out = eval_x is not None
    if held_out:
        evaluation = {"x": scale_x(eval_x), "y": scale_y(eval_y)}
    else:
        evaluation = val
    return {
        "measure": "mine",
        "estimate": evaluate_dv(critic, evaluation["x"], evaluation["y"],
                                size),
        "train_estimate": evaluate_dv(critic, train["x"], train["y"], size),
        "validation_estimate": float(best),
        "units": "nats",
        "estimator": "dv",
        "evaluated_on": ("held-out pairs" if held_out
                         else "validation pairs"),
        "train_size": int(len(fit_rows)),
        "validation_size": int(len(val_rows)),
        "eval_size": int(len(evaluation["x"])),
        "x_shape": [int(s) for s in train["x"].shape[1:]],
        "y_dim": int(train["y"].shape[1]),
        "critic": ("convolutional image branch" if image
                   else "dense branch") + f", {units} units",
        "critic_units": int(units),
        "steps": int(steps),
        "steps_run": int(steps_run),
        "best_step": int(best_step),
        "batch_size": int(size),
        "learning_rate": float(learning_rate),
        "seed": int(seed),
    }
