"""Probes: how well a frozen representation predicts the labels.

Each probe fits on `(train_x, train_y)`, measures top-1 accuracy on
`(test_x, test_y)` and returns a dict with the accuracy and every setting:

- `linear_probe`: multinomial logistic regression (scikit-learn) on
  standardized features, the paper's linear evaluation, its L2 strength
  chosen on a part of the training data held out;
- `mlp_probe`: the paper's shallow network (dense 200, batch norm, dropout
  0.1, ReLU, softmax; Adam, lr 1e-4, batch 64) trained with Keras on frozen
  features, with early stopping on a validation split carved from the
  training data (the test split is never looked at while fitting);
- `knn_probe`: k-nearest neighbours on cosine similarity, each neighbour's
  vote weighted by `exp(similarity / temperature)` (Wu et al., 2018).
"""

import keras
import numpy as np


def _check_xy(x, y, name):
    x = np.asarray(x, dtype="float32").reshape(len(x), -1)
    y = np.asarray(y).astype("int64")
    if len(x) != len(y):
        raise ValueError(
            f"{name}_x and {name}_y need the same number of rows. "
            f"Received: {name}_x.shape={x.shape}, {name}_y.shape={y.shape}"
        )
    if len(x) == 0:
        raise ValueError(
            f"{name}_x is empty. Received: {name}_x.shape={x.shape}")
    return x, y


def _check_inputs(train_x, train_y, test_x, test_y):
    train_x, train_y = _check_xy(train_x, train_y, "train")
    test_x, test_y = _check_xy(test_x, test_y, "test")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(
            "train_x and test_x need the same number of features. "
            f"Received: train_x.shape={train_x.shape}, "
            f"test_x.shape={test_x.shape}"
        )
    if len(np.unique(train_y)) < 2:
        raise ValueError(
            "A probe needs at least 2 classes in train_y. "
            f"Received: classes={np.unique(train_y).tolist()}"
        )
    return train_x, train_y, test_x, test_y


def _accuracy(predicted, labels):
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def _standardize(train_x, *others):
    mean = train_x.mean(axis=0)
    std = train_x.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0).astype("float32")
    return [((x - mean) / std).astype("float32") for x in (train_x,) + others]


# Inverse L2 strengths the linear probe chooses from, half a decade apart.
# With C fixed at 1, logistic regression fitted the 5,000 training images of
# a CIFAR-10 subset perfectly on every 1024- and 4096-wide layer (82% of them
# on raw pixels), and its test accuracy understated what a chosen C finds by
# 3-12 points (raw pixels: 25% at C=1, 37% at C=3e-4).
LINEAR_C_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)


def check_linear_c(C):
    """The linear probe's `C` as a sorted tuple, refusing bad values.

    Args:
        C: a positive number, or a non-empty sequence of them.

    Returns:
        tuple of floats, ascending.

    Raises:
        ValueError: naming `C` when it is empty or not all positive.
    """
    try:
        grid = (C,) if np.ndim(C) == 0 else tuple(C)
        grid = tuple(float(c) for c in grid)
    except (TypeError, ValueError):
        grid = ()
    if not grid or not all(np.isfinite(c) and c > 0 for c in grid):
        raise ValueError(
            "C must be a positive number or a non-empty sequence of them. "
            f"Received: C={C!r}")
    return tuple(sorted(grid))


def linear_probe(train_x, train_y, test_x, test_y, seed=0, C=LINEAR_C_GRID,
                 max_iter=200, validation_fraction=0.1):
    """Multinomial logistic regression on standardized features.

    Given several values of `C`, the probe chooses one the way its test
    data never sees: a `validation_fraction` of the training data
    (stratified, seeded) is held out, a probe of every `C` is fitted on
    the rest and scored on it, and the most accurate `C` (the smallest,
    i.e. the most regularized, of ties) is refitted on all the training
    data. The test data is used once, for the reported accuracy.

    Args:
        train_x: array `[N, ...]` (flattened), training features.
        train_y: int array `[N]`, training labels.
        test_x: array `[M, ...]`, evaluation features.
        test_y: int array `[M]`, evaluation labels.
        seed: int, seeds the held-out split and the solver.
        C: positive float, the inverse L2 regularization strength, or a
            sequence of them to choose from (`LINEAR_C_GRID` by default).
        max_iter: int, L-BFGS iterations at most, per fit.
        validation_fraction: float in (0, 1), share of the training data
            held out to choose `C` (unused for a single `C`).

    Returns:
        Dict with `accuracy` (fraction of `test_y` predicted right),
        `train_accuracy`, `probe`, `feature_dim`, `train_size`,
        `test_size`, `C` (the one fitted) and the settings; when `C` was
        chosen, also `C_grid`, `validation_size` and
        `validation_accuracy` (`{str(C): accuracy}` of every candidate).

    Raises:
        ValueError: on mismatched inputs, a non-positive `C`, a
            `validation_fraction` outside (0, 1), or, when `C` is chosen,
            training data too small to leave two classes to fit.
    """
    grid = check_linear_c(C)
    if len(grid) > 1 and not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            "validation_fraction must be in (0, 1). "
            f"Received: validation_fraction={validation_fraction}"
        )
    train_x, train_y, test_x, test_y = _check_inputs(
        train_x, train_y, test_x, test_y
    )
    chosen = {}
    if len(grid) > 1:
        fit_x, val_x, fit_y, val_y = stratified_split(
            train_x, train_y, validation_fraction, seed
        )
        if len(np.unique(fit_y)) < 2:
            raise ValueError(
                "Too few labelled training examples to choose the linear "
                "probe's C on a held-out part: the part it fits holds one "
                "class. Label more training examples, or fix C to one "
                "value (`EvaluationConfig(linear_c=...)`). Received: "
                f"train_size={len(train_y)}, "
                f"validation_fraction={validation_fraction}"
            )
        fit_z, val_z = _standardize(fit_x, val_x)
        scores = {}
        for c in grid:
            classifier = _fit_logistic(fit_z, fit_y, c, max_iter, seed)
            scores[c] = _accuracy(classifier.predict(val_z), val_y)
        best = max(grid, key=lambda c: (scores[c], -c))
        chosen = {
            "C_grid": list(grid),
            "validation_size": int(len(val_y)),
            "validation_accuracy": {repr(c): scores[c] for c in grid},
        }
    else:
        best = grid[0]
    train_z, test_z = _standardize(train_x, test_x)
    classifier = _fit_logistic(train_z, train_y, best, max_iter, seed)
    return {
        "probe": "linear",
        "accuracy": _accuracy(classifier.predict(test_z), test_y),
        "train_accuracy": _accuracy(classifier.predict(train_z), train_y),
        "feature_dim": int(train_x.shape[1]),
        "train_size": int(len(train_x)),
        "test_size": int(len(test_x)),
        "model": "logistic regression (multinomial, L-BFGS)",
        "standardized": True,
        "C": best,
        **chosen,
        "max_iter": int(max_iter),
        "iterations": int(np.max(classifier.n_iter_)),
        "seed": int(seed),
    }


def _fit_logistic(x, y, C, max_iter, seed):
    """A scikit-learn logistic regression fitted on `(x, y)`."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    classifier = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    # One BLAS thread: these matrices are small, and spinning BLAS threads
    # beside TensorFlow's (or on a busy machine) made fits 10x slower.
    with warnings.catch_warnings(), threadpool_limits(limits=1,
                                                      user_api="blas"):
        # Hitting max_iter is a setting (recorded), not a failure.
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(x, y)
    return classifier


def build_mlp_probe(feature_dim, num_classes, hidden_units=200, dropout=0.1):
    """The paper's nonlinear probe network.

    `Dense(hidden_units) -> BatchNormalization -> Dropout(dropout) -> ReLU
    -> Dense(num_classes, softmax)`.

    Args:
        feature_dim: int, input width.
        num_classes: int, output classes.
        hidden_units: int, hidden width (200 in the paper).
        dropout: float, dropout rate (0.1 in the paper).

    Returns:
        An uncompiled Functional `keras.Model`.
    """
    features = keras.Input(shape=(feature_dim,), name="features")
    x = keras.layers.Dense(hidden_units, name="hidden")(features)
    x = keras.layers.BatchNormalization(name="hidden_bn")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.ReLU(name="relu")(x)
    probs = keras.layers.Dense(num_classes, activation="softmax",
                               name="classes")(x)
    return keras.Model(features, probs, name="mlp_probe")


def stratified_split(x, y, fraction, seed):
    """Seeded split holding out `fraction`, stratified where possible.

    The split keeps the class proportions when every class can be on both
    sides of it (at least two examples each, and no more classes than
    examples on either side); otherwise it is a plain random split.

    Args:
        x: array `[N, ...]`.
        y: int labels `[N]`.
        fraction: float in (0, 1), share held out.
        seed: int.

    Returns:
        `(kept_x, held_x, kept_y, held_y)`, as scikit-learn's
        `train_test_split`.

    Raises:
        ValueError: from scikit-learn, when a side would be empty.
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    counts = np.unique(y, return_counts=True)[1]
    held_out = int(np.ceil(fraction * len(y)))
    stratify = y if (counts.min() >= 2 and
                     len(counts) <= min(held_out, len(y) - held_out)) else None
    return train_test_split(
        x, y, test_size=fraction, random_state=seed, stratify=stratify
    )


def mlp_probe(train_x, train_y, test_x, test_y, seed=0, hidden_units=200,
              dropout=0.1, learning_rate=1e-4, batch_size=64, epochs=100,
              patience=10, validation_fraction=0.1, num_classes=None,
              verbose=0, progress=None):
    """The paper's shallow network on frozen, standardized features.

    A `validation_fraction` of the training data (stratified, seeded) is
    held out; training stops when its accuracy has not improved for
    `patience` epochs and the best epoch's weights are kept. The test data
    is used once, for the reported accuracy.

    Args:
        train_x: array `[N, ...]` (flattened), training features.
        train_y: int array `[N]`, labels in `[0, num_classes)`.
        test_x: array `[M, ...]`, evaluation features.
        test_y: int array `[M]`, evaluation labels.
        seed: int, seeds the split, the weights, dropout and shuffling.
        hidden_units: int, hidden width (200).
        dropout: float, dropout rate (0.1).
        learning_rate: float, Adam learning rate (1e-4).
        batch_size: int (64).
        epochs: int, epochs at most.
        patience: int, epochs without validation improvement before
            stopping.
        validation_fraction: float in (0, 1), share of the training data
            held out for early stopping.
        num_classes: int or None; None takes `max(labels) + 1`.
        verbose: Keras `fit` verbosity.
        progress: a `dim_keras.progress.Progress` advanced each epoch, or
            None.

    Returns:
        Dict with `accuracy`, `validation_accuracy` (best epoch),
        `epochs_run`, `best_epoch`, sizes and the settings.
    """
    train_x, train_y, test_x, test_y = _check_inputs(
        train_x, train_y, test_x, test_y
    )
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            "validation_fraction must be in (0, 1). "
            f"Received: validation_fraction={validation_fraction}"
        )
    if num_classes is None:
        num_classes = int(max(train_y.max(), test_y.max())) + 1
    fit_x, val_x, fit_y, val_y = stratified_split(
        train_x, train_y, validation_fraction, seed
    )
    fit_z, val_z, test_z = _standardize(fit_x, val_x, test_x)
    keras.utils.set_random_seed(seed)
    model = build_mlp_probe(fit_z.shape[1], num_classes, hidden_units,
                            dropout)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    stopping = keras.callbacks.EarlyStopping(
        monitor="val_accuracy",
        mode="max",
        patience=patience,
        restore_best_weights=True,
    )
    callbacks = [stopping]
    if progress is not None:
        from dim_keras.progress import keras_callback

        callbacks.append(keras_callback(progress, per="epoch"))
    history = model.fit(
        fit_z,
        fit_y,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(val_z, val_y),
        callbacks=callbacks,
        shuffle=True,
        verbose=verbose,
    )
    val_accuracy = history.history["val_accuracy"]
    best_epoch = int(np.argmax(val_accuracy)) + 1
    probs = np.concatenate([
        keras.ops.convert_to_numpy(model(test_z[i:i + 1024], training=False))
        for i in range(0, len(test_z), 1024)
    ])
    return {
        "probe": "mlp",
        "accuracy": _accuracy(np.argmax(probs, axis=-1), test_y),
        "validation_accuracy": float(val_accuracy[best_epoch - 1]),
        "epochs_run": len(val_accuracy),
        "best_epoch": best_epoch,
        "feature_dim": int(train_x.shape[1]),
        "train_size": int(len(fit_x)),
        "validation_size": int(len(val_x)),
        "test_size": int(len(test_x)),
        "model": f"dense {hidden_units}, batch norm, dropout {dropout}, "
                 "ReLU, softmax",
        "standardized": True,
        "hidden_units": int(hidden_units),
        "dropout": float(dropout),
        "optimizer": "adam",
        "learning_rate": float(learning_rate),
        "batch_size": int(batch_size),
        "max_epochs": int(epochs),
        "patience": int(patience),
        "validation_fraction": float(validation_fraction),
        "seed": int(seed),
    }


def _unit_rows(x):
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def knn_probe(train_x, train_y, test_x, test_y, k=20, temperature=0.07,
              chunk_size=1024, progress=None):
    """Weighted k-nearest-neighbour vote on cosine similarity.

    Each test point takes its `k` most cosine-similar training points; each
    votes for its label with weight `exp(similarity / temperature)`, and the
    label with the largest total wins.

    Args:
        train_x: array `[N, ...]` (flattened), training features.
        train_y: int array `[N]`, training labels.
        test_x: array `[M, ...]`, evaluation features.
        test_y: int array `[M]`, evaluation labels.
        k: int, neighbours (clipped to `N`).
        temperature: float > 0, sharpness of the vote weights.
        chunk_size: int, test points compared at once (bounds memory).
        progress: a `dim_keras.progress.Progress` advanced by the test
            points done, or None.

    Returns:
        Dict with `accuracy`, sizes and the settings.
    """
    train_x, train_y, test_x, test_y = _check_inputs(
        train_x, train_y, test_x, test_y
    )
    if k < 1 or not temperature > 0:
        raise ValueError(
            "k must be positive and temperature greater than 0. "
            f"Received: k={k}, temperature={temperature}"
        )
    k_used = min(int(k), len(train_x))
    train_u = _unit_rows(train_x)
    classes, train_index = np.unique(train_y, return_inverse=True)
    predicted = np.empty(len(test_x), dtype=classes.dtype)
    for start in range(0, len(test_x), chunk_size):
        test_u = _unit_rows(test_x[start:start + chunk_size])
        similarity = test_u @ train_u.T
        nearest = np.argpartition(-similarity, k_used - 1, axis=1)[:, :k_used]
        sims = np.take_along_axis(similarity, nearest, axis=1)
        # Shifting by the row maximum leaves the vote unchanged.
        weights = np.exp((sims - sims.max(axis=1, keepdims=True))
                         / temperature)
        votes = np.zeros((len(test_u), len(classes)))
        rows = np.repeat(np.arange(len(test_u)), k_used)
        np.add.at(votes, (rows, train_index[nearest].ravel()),
                  weights.ravel())
        predicted[start:start + len(test_u)] = classes[np.argmax(votes, 1)]
        if progress is not None:
            progress.update(start + len(test_u))
    return {
        "probe": "knn",
        "accuracy": _accuracy(predicted, test_y),
        "feature_dim": int(train_x.shape[1]),
        "train_size": int(len(train_x)),
        "test_size": int(len(test_x)),
        "model": "weighted k-nearest neighbours, cosine similarity",
        "k": k_used,
        "temperature": float(temperature),
    }


def linear_probe_settings(settings):
    """The linear probe's settings as one Markdown list item.

    Args:
        settings: dict with `linear_c` (a number, or a list to choose
            from), `linear_max_iter` and `validation_fraction`.

    Returns:
        str.
    """
    grid = check_linear_c(settings["linear_c"])
    if len(grid) > 1:
        chosen = (f"C chosen from {', '.join(f'{v:g}' for v in grid)} on "
                  f"{100 * settings['validation_fraction']:.0f}% of train "
                  "held out, then refitted on all of train")
    else:
        chosen = f"C={grid[0]:g}"
    return (f"- Linear: multinomial logistic regression on standardized "
            f"features, {chosen}, at most {settings['linear_max_iter']} "
            "L-BFGS iterations.")
