"""The linear probe trained in minibatches: a Keras model on frozen features.

It fits the same model as scikit-learn's logistic regression in
`probes.linear_probe` (multinomial, on standardized features, an L2 penalty
of inverse strength `C`: per training example, the mean cross-entropy plus
`|W|^2 / (2 C N)`), but with a first-order optimizer over minibatches, on
whatever device Keras trains on, so that it scales to 100,000 images, a
9,408-feature map and 200 classes where L-BFGS takes hours on a CPU.

- The features are read in batches: their mean and standard deviation are
  accumulated in one pass (in float64), every batch is cast to float32 when
  it is taken and standardized inside the model (a `Normalization` layer),
  so an array of uint8 pixels is never copied whole.
- Every candidate `C` is one slice of a single `Dense` layer (`K` slices of
  `classes` logits each), each penalized by its own strength: one pass over
  the data trains them all. It costs `K` times one probe, so of a grid of
  more than `MAX_CANDIDATES` values an evenly spaced subset is fitted
  (`candidates`: of the default half-decade grid, the decades 1e-4, 1e-3,
  ..., 1). The held-out `validation_fraction` of the
  training data (stratified, seeded) chooses the most accurate (the
  smallest `C` of ties), which is trained again on all the training data;
  the test data is used once.
- Adam, its learning rate `LEARNING_RATE * 64 / features` (at most
  `LEARNING_RATE`): Adam moves every weight by about its rate, so a step
  moves the logits in proportion to the width, and the rate of the last
  layer goes as one over its width (as muP sets it). Decayed to 0 on a
  cosine over each fit's steps; 15 epochs a fit, more (up to 300 steps)
  where they are cheap (`epochs_for`); zero initial weights (the problem
  is convex).
"""

import math

import keras
import numpy as np
from keras import ops

# Adam's learning rate on up to 64 standardized features; wider, it is
# scaled by `REFERENCE_WIDTH / features` (`learning_rate_for`).
LEARNING_RATE = 0.1
REFERENCE_WIDTH = 64
# Each fit runs `EPOCHS` epochs, more to take `MIN_STEPS` steps while an
# epoch costs at most `MAX_MACS / epochs` multiply-adds (`epochs_for`): on
# the CIFAR-10 subset (4,500 images to fit, 9 batches an epoch) 15 epochs
# left raw pixels 1.8 points below L-BFGS and 300 steps matched it; there
# they cost a few seconds, while at Tiny ImageNet's size (a 9,408-feature
# map, 100-200 classes) 15 epochs already take minutes on a CPU.
EPOCHS = 15
MIN_STEPS = 300
MAX_MACS = 1e11
BATCH_SIZE = 512
# Steps of a Keras epoch at least, in whole passes over the rows: on small
# sets (the default digits run: 3 batches a pass) Keras' cost per epoch, not
# the steps, made the fits slow (100 epochs of 3 steps: about 20 s).
STEPS_PER_EPOCH = 100
# Candidates fitted at most (one pass trains them all, at their number
# times the cost of one).
MAX_CANDIDATES = 5
# Rows read at once when accumulating the features' statistics.
STATS_ROWS = 1024


class ColumnL2(keras.regularizers.Regularizer):
    """An L2 penalty with its own strength for every column of a kernel.

    Args:
        strengths: float array `[columns]`; the penalty is
            `sum(strengths[j] * sum_i W[i, j] ** 2)`.
    """

    def __init__(self, strengths):
        self.strengths = np.asarray(strengths, dtype="float32").reshape(-1)

    def __call__(self, x):
        strengths = ops.convert_to_tensor(self.strengths, dtype=x.dtype)
        return ops.sum(ops.square(x) * strengths)

    def get_config(self):
        return {"strengths": self.strengths.tolist()}


def learning_rate_for(feature_dim, base=LEARNING_RATE):
    """Adam's learning rate for a linear probe of `feature_dim` inputs.

    Args:
        feature_dim: int, number of standardized features.
        base: float, the rate at `REFERENCE_WIDTH` features.

    Returns:
        float, `base * min(1, REFERENCE_WIDTH / feature_dim)`.
    """
    return float(base * min(1.0, REFERENCE_WIDTH / max(1, feature_dim)))


def epochs_for(rows, batch_size, features=1, outputs=1, epochs=EPOCHS,
               min_steps=MIN_STEPS, max_macs=MAX_MACS):
    """Epochs of a fit: `epochs`, more where they are cheap.

    More epochs take the fit to `min_steps` steps, as long as the whole fit
    stays under `max_macs` multiply-adds (`rows * features * outputs` an
    epoch); never fewer than `epochs`.

    Args:
        rows: int, the rows fitted.
        batch_size: int.
        features: int, the model's inputs.
        outputs: int, its outputs (candidates times classes).
        epochs: int, the epochs at least.
        min_steps: int, the steps wanted.
        max_macs: float, the multiply-adds more epochs may cost in all.

    Returns:
        int.
    """
    steps_per_epoch = max(1, math.ceil(rows / batch_size))
    wanted = math.ceil(min_steps / steps_per_epoch)
    affordable = int(max_macs // max(1, rows * features * outputs))
    return max(int(epochs), min(wanted, affordable))


def candidates(grid, limit=MAX_CANDIDATES):
    """At most `limit` values of `grid`, evenly spaced, both ends kept.

    Args:
        grid: sorted tuple of floats.
        limit: int.

    Returns:
        tuple: `grid` itself when it holds at most `limit` values; of the
        9 half-decade values 1e-4, 3e-4, ..., 1, the 5 decades.
    """
    if len(grid) <= limit:
        return tuple(grid)
    step = math.ceil((len(grid) - 1) / (limit - 1))
    chosen = list(grid[::step])
    if chosen[-1] != grid[-1]:
        chosen.append(grid[-1])
    return tuple(chosen)


def feature_statistics(x, rows, chunk=STATS_ROWS):
    """Mean and variance of `x[rows]`, read `chunk` rows at a time.

    Args:
        x: array `[N, features]` of any real dtype.
        rows: int array of the rows to use.
        chunk: int, rows read at once.

    Returns:
        `(mean, variance)`, float32 arrays `[features]`; a variance below
        1e-16 (a constant feature) is 1, so it is left unscaled.
    """
    total = np.zeros(x.shape[1], dtype=np.float64)
    squares = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, len(rows), chunk):
        part = np.asarray(x[np.sort(rows[start:start + chunk])],
                          dtype=np.float64)
        total += part.sum(axis=0)
        squares += np.square(part).sum(axis=0)
    mean = total / len(rows)
    variance = np.maximum(squares / len(rows) - np.square(mean), 0.0)
    variance = np.where(variance > 1e-16, variance, 1.0)
    return mean.astype(np.float32), variance.astype(np.float32)


class RowBatches(keras.utils.PyDataset):
    """Batches of chosen rows of an array, cast to float32 when taken.

    Args:
        x: array `[N, features]`, any real dtype (uint8 pixels stay uint8
            until their batch is taken).
        rows: int array, the rows served.
        y: int array `[N]` or None: labels to serve beside the features.
        batch_size: int.
        seed: int or None: None keeps `rows`' order; an int shuffles it,
            again at every pass.
        passes: int, passes over the rows in one Keras epoch (small sets
            fit many passes per epoch: Keras' cost of an epoch, not the
            steps, dominates their fits).
    """

    def __init__(self, x, rows, y=None, batch_size=BATCH_SIZE, seed=None,
                 passes=1):
        super().__init__()
        self.x, self.y = x, y
        self.rows = np.asarray(rows)
        self.batch_size = int(batch_size)
        self.passes = int(passes)
        self.rng = None if seed is None else np.random.default_rng(seed)
        self.order = self.rows
        self.on_epoch_end()

    @property
    def batches_per_pass(self):
        return max(1, math.ceil(len(self.rows) / self.batch_size))

    def __len__(self):
        return self.passes * self.batches_per_pass

    def __getitem__(self, index):
        index %= self.batches_per_pass * self.passes
        part, index = divmod(index, self.batches_per_pass)
        order = self.order[part]
        rows = order[index * self.batch_size:(index + 1) * self.batch_size]
        if self.rng is not None:
            rows = np.sort(rows)  # reads in memory order; a batch is a set
        features = np.asarray(self.x[rows], dtype=np.float32)
        if self.y is None:
            return (features,)
        return features, np.asarray(self.y[rows], dtype=np.int32)

    def on_epoch_end(self):
        # One order of the rows per pass: shuffled anew when seeded.
        self.order = [self.rows if self.rng is None
                      else self.rng.permutation(self.rows)
                      for _ in range(self.passes)]


def _candidates_loss(labels, logits):
    """The sum over candidates of each one's cross-entropy, per example."""
    count = logits.shape[1]
    labels = ops.reshape(ops.cast(labels, "int32"), (-1, 1))
    labels = ops.repeat(labels, count, axis=1)
    cross_entropy = keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True)
    return ops.sum(cross_entropy, axis=-1)


def build_linear_candidates(mean, variance, num_classes, strengths):
    """Logistic regressions of several L2 strengths as one Keras model.

    Args:
        mean: float array `[features]`, subtracted from every input.
        variance: float array `[features]`, its square root divides it.
        num_classes: int.
        strengths: floats, one L2 strength per candidate (the penalty of
            candidate k is `strengths[k] * |W_k|^2`).

    Returns:
        An uncompiled Functional `keras.Model` mapping features
        `[B, features]` to logits `[B, candidates, num_classes]`.
    """
    count = len(strengths)
    features = keras.Input(shape=(len(mean),), name="features")
    z = keras.layers.Normalization(mean=mean, variance=variance,
                                   name="standardize")(features)
    logits = keras.layers.Dense(
        count * num_classes, kernel_initializer="zeros",
        kernel_regularizer=ColumnL2(np.repeat(strengths, num_classes)),
        name="logits")(z)
    logits = keras.layers.Reshape((count, num_classes),
                                  name="candidates")(logits)
    return keras.Model(features, logits, name="linear_candidates")


def _fit(x, y, rows, num_classes, grid, seed, epochs, batch_size,
         learning_rate, progress, done):
    """Trains one candidate per `C` of `grid` on `x[rows]`; the model."""
    mean, variance = feature_statistics(x, rows)
    strengths = [1.0 / (2.0 * c * len(rows)) for c in grid]
    keras.utils.set_random_seed(seed)
    model = build_linear_candidates(mean, variance, num_classes, strengths)
    # Passes over the rows per Keras epoch: at least `STEPS_PER_EPOCH`
    # steps an epoch, a whole number of passes.
    per_pass = max(1, math.ceil(len(rows) / batch_size))
    passes = max(1, min(epochs, STEPS_PER_EPOCH // per_pass))
    batches = RowBatches(x, rows, y, batch_size, seed=seed, passes=passes)
    keras_epochs = math.ceil(epochs / passes)
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(1, keras_epochs * len(batches)))
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=_candidates_loss)
    callbacks = []
    if progress is not None:
        callbacks.append(_PassesDone(progress, passes, epochs, done))
    model.fit(batches, epochs=keras_epochs, callbacks=callbacks, verbose=0)
    return model


class _PassesDone(keras.callbacks.Callback):
    """Advances a progress line by the passes (epochs of the probe) done."""

    def __init__(self, progress, passes, epochs, offset):
        super().__init__()
        self.progress, self.passes = progress, passes
        self.epochs, self.offset = epochs, offset

    def on_epoch_end(self, epoch, logs=None):
        self.progress.update(self.offset + min(self.epochs,
                                               (epoch + 1) * self.passes))


def predict_candidates(model, x, rows, batch_size=1024):
    """Each candidate's predicted class of `x[rows]`.

    Args:
        model: from `build_linear_candidates`.
        x: array `[N, features]`.
        rows: int array.
        batch_size: int, rows per forward pass.

    Returns:
        int array `[len(rows), candidates]`.
    """
    predicted = []
    # Called eagerly: one matmul a batch needs no compiled function (a
    # predict function per probe made TensorFlow warn of retracing).
    for start in range(0, len(rows), batch_size):
        batch = np.asarray(x[rows[start:start + batch_size]],
                           dtype=np.float32)
        logits = model(batch, training=False)
        predicted.append(np.argmax(keras.ops.convert_to_numpy(logits), -1))
    return np.concatenate(predicted)


def minibatch_linear_probe(train_x, train_y, test_x, test_y, grid,
                           split=None, seed=0, validation_fraction=0.1,
                           num_classes=None, epochs=None,
                           batch_size=BATCH_SIZE, learning_rate=None,
                           progress=None):
    """Multinomial logistic regression on standardized features, by Adam.

    `probes.linear_probe` calls it for large problems (checking its
    inputs and the held-out split first).

    Args:
        train_x: array `[N, features]`, any real dtype, not copied whole.
        train_y: int array `[N]`, labels in `[0, num_classes)`.
        test_x: array `[M, features]`.
        test_y: int array `[M]`.
        grid: sorted tuple of positive floats, the `C`s to choose from
            (`candidates` of them are fitted; one: nothing to choose, no
            held-out part).
        split: `(fit_rows, validation_rows)` int arrays choosing `C`, or
            None to draw them (`splits.stratified_split`).
        seed: int, seeds the split, the order of the batches.
        validation_fraction: float in (0, 1), the training share held out
            to choose `C` when `split` is None.
        num_classes: int or None (`max(label) + 1`).
        epochs: int or None, epochs of each of the two fits; None takes
            `epochs_for` the fit choosing `C` (the larger).
        batch_size: int.
        learning_rate: float or None: Adam's initial rate; None takes
            `learning_rate_for(features)`.
        progress: a `dim_keras.progress.Progress` advanced by the epochs
            done (its total set to both fits' epochs), or None.

    Returns:
        Dict as `probes.linear_probe`'s, with `"solver": "minibatch"` and
        the optimizer's settings.
    """
    from dim_keras.evaluation.splits import stratified_split

    train_y = np.asarray(train_y).astype(np.int64)
    test_y = np.asarray(test_y).astype(np.int64)
    if num_classes is None:
        num_classes = int(max(train_y.max(), test_y.max())) + 1
    feature_dim = int(train_x.shape[1])
    if learning_rate is None:
        learning_rate = learning_rate_for(feature_dim)
    everything = np.arange(len(train_y))
    grid = candidates(tuple(grid))
    fits = 2 if len(grid) > 1 else 1
    if fits == 2 and split is None:
        split = stratified_split(everything, train_y, validation_fraction,
                                 seed)[:2]
    if epochs is None:
        epochs = epochs_for(len(split[0]) if fits == 2 else len(train_y),
                            batch_size, feature_dim, len(grid) * num_classes)
    if progress is not None:
        progress.set_total(fits * epochs, "epochs")
    chosen = {}
    if fits == 2:
        fit_rows, val_rows = split
        val_y = train_y[val_rows]
        model = _fit(train_x, train_y, fit_rows, num_classes, grid, seed,
                     epochs, batch_size, learning_rate, progress, 0)
        predicted = predict_candidates(model, train_x, val_rows)
        scores = {c: float(np.mean(predicted[:, k] == val_y))
                  for k, c in enumerate(grid)}
        best = max(grid, key=lambda c: (scores[c], -c))
        chosen = {
            "C_grid": list(grid),
            "validation_size": int(len(val_rows)),
            "validation_accuracy": {repr(c): scores[c] for c in grid},
        }
    else:
        best = grid[0]
    model = _fit(train_x, train_y, everything, num_classes, (best,), seed,
                 epochs, batch_size, learning_rate, progress,
                 (fits - 1) * epochs)
    test_predicted = predict_candidates(model, test_x,
                                        np.arange(len(test_y)))[:, 0]
    train_predicted = predict_candidates(model, train_x, everything)[:, 0]
    return {
        "probe": "linear",
        "solver": "minibatch",
        "accuracy": float(np.mean(test_predicted == test_y)),
        "train_accuracy": float(np.mean(train_predicted == train_y)),
        "feature_dim": feature_dim,
        "train_size": int(len(train_y)),
        "test_size": int(len(test_y)),
        "model": "logistic regression (multinomial, minibatch Adam)",
        "standardized": True,
        "C": best,
        **chosen,
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "optimizer": "adam",
        "learning_rate": float(learning_rate),
        "schedule": "cosine decay to 0",
        "seed": int(seed),
    }
