"""Probes: how well a frozen representation predicts the labels.

Each probe fits on `(train_x, train_y)`, measures top-1 accuracy on
`(test_x, test_y)` and returns a dict with the accuracy and every setting:

- `linear_probe`: multinomial logistic regression on standardized
  features, the paper's linear evaluation, its L2 strength chosen on a
  part of the training data held out; scikit-learn's L-BFGS on small
  problems, minibatch Adam on the training device on large ones
  (`linear_minibatch`);
- `mlp_probe`: the paper's shallow network (dense 200, batch norm, dropout
  0.1, ReLU, softmax; Adam, lr 1e-4, batch 64) trained with Keras on frozen
  features, with early stopping on a validation split carved from the
  training data (the test split is never looked at while fitting);
- `knn_probe`: k-nearest neighbours on cosine similarity, each neighbour's
  vote weighted by `exp(similarity / temperature)` (Wu et al., 2018),
  searched in blocks on the device (`knn`).
"""

import keras
import numpy as np

from dim_keras.evaluation.linear_settings import LBFGS_LIMIT  # noqa: F401
from dim_keras.evaluation.linear_settings import LINEAR_C_GRID
from dim_keras.evaluation.linear_settings import LINEAR_SOLVERS  # noqa: F401
from dim_keras.evaluation.linear_settings import check_linear_c
from dim_keras.evaluation.linear_settings import linear_probe_settings  # noqa: F401,E501
from dim_keras.evaluation.linear_settings import linear_solver
from dim_keras.evaluation.splits import stratified_split


def _as_rows(x, y, name):
    """`x` as a 2-D array (a view where possible, its dtype kept)."""
    x = np.asarray(x)
    x = x.reshape(len(x), -1)
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


def _check_shapes(train_x, train_y, test_x, test_y):
    """The inputs as checked rows `[N, features]`, their dtype kept.

    Views where possible: uint8 pixels stay uint8 (and are not copied);
    each solver casts what it takes.
    """
    train_x, train_y = _as_rows(train_x, train_y, "train")
    test_x, test_y = _as_rows(test_x, test_y, "test")
    _check_pair(train_x, train_y, test_x)
    return train_x, train_y, test_x, test_y


def _check_pair(train_x, train_y, test_x):
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


def _accuracy(predicted, labels):
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def _standardize(train_x, *others):
    mean = train_x.mean(axis=0)
    std = train_x.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0).astype("float32")
    return [((x - mean) / std).astype("float32") for x in (train_x,) + others]


# Inverse L2 strengths the linear probe chooses from, half a decade apart.
def linear_probe(train_x, train_y, test_x, test_y, seed=0, C=LINEAR_C_GRID,
                 max_iter=200, validation_fraction=0.1, solver="auto",
                 num_classes=None, epochs=None, batch_size=None,
                 progress=None):
    """Multinomial logistic regression on standardized features.

    Given several values of `C`, the probe chooses one the way its test
    data never sees: a `validation_fraction` of the training data
    (stratified, seeded) is held out, a probe of every `C` is fitted on
    the rest and scored on it, and the most accurate `C` (the smallest,
    i.e. the most regularized, of ties) is refitted on all the training
    data. The test data is used once, for the reported accuracy.

    Small problems are solved by scikit-learn's L-BFGS (exact), large ones
    by minibatch Adam on the training device
    (`dim_keras.evaluation.linear_minibatch`, the same objective);
    `linear_solver` chooses, and the result's `solver` says which ran.

    Args:
        train_x: array `[N, ...]` (flattened), training features.
        train_y: int array `[N]`, training labels.
        test_x: array `[M, ...]`, evaluation features.
        test_y: int array `[M]`, evaluation labels.
        seed: int, seeds the held-out split and the solver.
        C: positive float, the inverse L2 regularization strength, or a
            sequence of them to choose from (`LINEAR_C_GRID` by default;
            the minibatch probe fits at most 5 of them, evenly spaced:
            `linear_minibatch.candidates`).
        max_iter: int, L-BFGS iterations at most, per fit.
        validation_fraction: float in (0, 1), share of the training data
            held out to choose `C` (unused for a single `C`).
        solver: `"auto"`, `"lbfgs"` or `"minibatch"` (`LINEAR_SOLVERS`).
        num_classes: int or None; None takes `max(labels) + 1` (the
            minibatch probe's output width).
        epochs: int or None, the minibatch probe's epochs per fit (None:
            15, more where they are cheap: `linear_minibatch.epochs_for`).
        batch_size: int or None, its batch size (None:
            `linear_minibatch.BATCH_SIZE`).
        progress: a `dim_keras.progress.Progress` advanced by the fits
            (L-BFGS) or epochs (minibatch) done, its total set here, or
            None.

    Returns:
        Dict with `accuracy` (fraction of `test_y` predicted right),
        `train_accuracy`, `probe`, `solver`, `feature_dim`, `train_size`,
        `test_size`, `C` (the one fitted) and the settings; when `C` was
        chosen, also `C_grid`, `validation_size` and
        `validation_accuracy` (`{str(C): accuracy}` of every candidate).

    Raises:
        ValueError: on mismatched inputs, a non-positive `C`, a
            `validation_fraction` outside (0, 1), an unknown `solver`, or,
            when `C` is chosen, training data too small to leave two
            classes to fit.
    """
    grid = check_linear_c(C)
    if len(grid) > 1 and not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            "validation_fraction must be in (0, 1). "
            f"Received: validation_fraction={validation_fraction}"
        )
    train_x, train_y, test_x, test_y = _check_shapes(
        train_x, train_y, test_x, test_y
    )
    chosen = linear_solver(len(train_x), train_x.shape[1],
                           len(np.unique(train_y)), solver)
    split = None
    if len(grid) > 1:
        fit_rows, val_rows, fit_y, _ = stratified_split(
            np.arange(len(train_y)), train_y, validation_fraction, seed
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
        split = (fit_rows, val_rows)
    if chosen == "minibatch":
        from dim_keras.evaluation import linear_minibatch

        return linear_minibatch.minibatch_linear_probe(
            train_x, train_y, test_x, test_y, grid, split=split, seed=seed,
            num_classes=num_classes,
            epochs=epochs,
            batch_size=batch_size or linear_minibatch.BATCH_SIZE,
            progress=progress)
    return _lbfgs_linear_probe(
        train_x.astype("float32", copy=False), train_y,
        test_x.astype("float32", copy=False), test_y, grid, split, seed,
        max_iter, progress)


def _lbfgs_linear_probe(train_x, train_y, test_x, test_y, grid, split, seed,
                        max_iter, progress):
    """`linear_probe` by scikit-learn's L-BFGS (float32 inputs)."""
    if progress is not None:
        progress.set_total(len(grid) + 1 if split is not None else 1,
                           "fits")
    chosen = {}
    if split is not None:
        fit_rows, val_rows = split
        fit_z, val_z = _standardize(train_x[fit_rows], train_x[val_rows])
        fit_y, val_y = train_y[fit_rows], train_y[val_rows]
        scores = {}
        for c in grid:
            classifier = fit_logistic(fit_z, fit_y, c, max_iter, seed)
            scores[c] = _accuracy(classifier.predict(val_z), val_y)
            if progress is not None:
                progress.advance()
        best = max(grid, key=lambda c: (scores[c], -c))
        chosen = {
            "C_grid": list(grid),
            "validation_size": int(len(val_y)),
            "validation_accuracy": {repr(c): scores[c] for c in grid},
        }
    else:
        best = grid[0]
    train_z, test_z = _standardize(train_x, test_x)
    classifier = fit_logistic(train_z, train_y, best, max_iter, seed)
    if progress is not None:
        progress.advance()
    return {
        "probe": "linear",
        "solver": "lbfgs",
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


def fit_logistic(x, y, C, max_iter, seed):
    """A scikit-learn logistic regression fitted on `(x, y)`.

    Args:
        x: float32 array `[N, features]`, standardized.
        y: int array `[N]`.
        C: float, inverse L2 strength.
        max_iter: int, L-BFGS iterations at most (reaching it is no
            error).
        seed: int.

    Returns:
        The fitted `sklearn.linear_model.LogisticRegression`.
    """
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


def build_mlp_probe(feature_dim, num_classes, hidden_units=200, dropout=0.1,
                    mean=None, variance=None):
    """The paper's nonlinear probe network.

    `Dense(hidden_units) -> BatchNormalization -> Dropout(dropout) -> ReLU
    -> Dense(num_classes, softmax)`, after a `Normalization` layer
    standardizing the features when `mean` and `variance` are given.

    Args:
        feature_dim: int, input width.
        num_classes: int, output classes.
        hidden_units: int, hidden width (200 in the paper).
        dropout: float, dropout rate (0.1 in the paper).
        mean: float array `[feature_dim]` or None.
        variance: float array `[feature_dim]` or None.

    Returns:
        An uncompiled Functional `keras.Model`.
    """
    features = keras.Input(shape=(feature_dim,), name="features")
    x = features
    if mean is not None:
        x = keras.layers.Normalization(mean=mean, variance=variance,
                                       name="standardize")(x)
    x = keras.layers.Dense(hidden_units, name="hidden")(x)
    x = keras.layers.BatchNormalization(name="hidden_bn")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.ReLU(name="relu")(x)
    probs = keras.layers.Dense(num_classes, activation="softmax",
                               name="classes")(x)
    return keras.Model(features, probs, name="mlp_probe")


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
    from dim_keras.evaluation.linear_minibatch import RowBatches
    from dim_keras.evaluation.linear_minibatch import feature_statistics

    train_x, train_y, test_x, test_y = _check_shapes(
        train_x, train_y, test_x, test_y
    )
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            "validation_fraction must be in (0, 1). "
            f"Received: validation_fraction={validation_fraction}"
        )
    if num_classes is None:
        num_classes = int(max(train_y.max(), test_y.max())) + 1
    fit_rows, val_rows, _, _ = stratified_split(
        np.arange(len(train_y)), train_y, validation_fraction, seed
    )
    # Standardized inside the model, batch by batch: the features are
    # never copied whole.
    mean, variance = feature_statistics(train_x, fit_rows)
    keras.utils.set_random_seed(seed)
    model = build_mlp_probe(train_x.shape[1], num_classes, hidden_units,
                            dropout, mean=mean, variance=variance)
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
        RowBatches(train_x, fit_rows, train_y, batch_size, seed=seed),
        epochs=epochs,
        validation_data=RowBatches(train_x, val_rows, train_y, 1024),
        callbacks=callbacks,
        verbose=verbose,
    )
    val_accuracy = history.history["val_accuracy"]
    best_epoch = int(np.argmax(val_accuracy)) + 1
    probs = np.concatenate([
        keras.ops.convert_to_numpy(model(
            np.asarray(test_x[i:i + 1024], dtype=np.float32),
            training=False))
        for i in range(0, len(test_x), 1024)
    ])
    return {
        "probe": "mlp",
        "accuracy": _accuracy(np.argmax(probs, axis=-1), test_y),
        "validation_accuracy": float(val_accuracy[best_epoch - 1]),
        "epochs_run": len(val_accuracy),
        "best_epoch": best_epoch,
        "feature_dim": int(train_x.shape[1]),
        "train_size": int(len(fit_rows)),
        "validation_size": int(len(val_rows)),
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


def knn_probe(train_x, train_y, test_x, test_y, k=20, temperature=0.07,
              chunk_size=None, progress=None, memory_bytes=None):
    """Weighted k-nearest-neighbour vote on cosine similarity.

    Each test point takes its `k` most cosine-similar training points; each
    votes for its label with weight `exp(similarity / temperature)`, and the
    label with the largest total wins. The search runs in blocks on the
    device (`dim_keras.evaluation.knn`), never holding a test-by-train
    matrix.

    Args:
        train_x: array `[N, ...]` (flattened), training features.
        train_y: int array `[N]`, training labels.
        test_x: array `[M, ...]`, evaluation features.
        test_y: int array `[M]`, evaluation labels.
        k: int, neighbours (clipped to `N`).
        temperature: float > 0, sharpness of the vote weights.
        chunk_size: int or None, test points compared at once (None: the
            plan's, up to 1024).
        progress: a `dim_keras.progress.Progress` advanced by the test
            points done, or None.
        memory_bytes: int or None, the bytes one step of the search may
            hold (None: `knn.MEMORY_BYTES`).

    Returns:
        Dict with `accuracy`, sizes, the settings and the search's plan
        (`query_batch`, `bank_batch`, `step_bytes`).
    """
    from dim_keras.evaluation import knn

    train_x, train_y, test_x, test_y = _check_shapes(
        train_x, train_y, test_x, test_y
    )
    if k < 1 or not temperature > 0:
        raise ValueError(
            "k must be positive and temperature greater than 0. "
            f"Received: k={k}, temperature={temperature}"
        )
    k_used = min(int(k), len(train_x))
    plan = knn.knn_plan(
        len(train_x), len(test_x), train_x.shape[1], k_used,
        memory_bytes=memory_bytes or knn.MEMORY_BYTES,
        query_limit=chunk_size or knn.QUERY_BATCH_LIMIT)
    classes, train_index = np.unique(train_y, return_inverse=True)
    similarities, nearest = knn.nearest_neighbours(
        train_x, test_x, k_used, plan=plan, progress=progress)
    predicted = classes[knn.weighted_vote(
        similarities, train_index[nearest], len(classes), temperature)]
    return {
        "probe": "knn",
        "solver": "batched",
        "accuracy": _accuracy(predicted, test_y),
        "feature_dim": int(train_x.shape[1]),
        "train_size": int(len(train_x)),
        "test_size": int(len(test_x)),
        "model": "weighted k-nearest neighbours, cosine similarity",
        "k": k_used,
        "temperature": float(temperature),
        "device": knn.device_name(),
        "query_batch": plan.query_batch,
        "bank_batch": plan.bank_batch,
        "step_bytes": plan.step_bytes,
    }
