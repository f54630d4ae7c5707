"""Fitting a critic network to maximize an objective, with Keras `fit`.

MINE and the neural dependency measure both train a network whose output
is not compared to targets: the loss is a function of the outputs alone
(minus a divergence estimate). `ObjectiveModel` says so by overriding
`compute_loss`, which every backend's built-in `train_step` calls, so the
training stays backend-agnostic. `RandomBatches` feeds it seeded random
batches of full size (the estimators need at least 2 rows per batch).
"""

import keras
import numpy as np


class RandomBatches(keras.utils.PyDataset):
    """`steps` batches of rows drawn at random, without replacement.

    Batch `i` depends only on `(seed, first + i)`, so training is
    repeatable, and a run cut into rounds (`first` = batches already run)
    draws the same batches as one long run.

    Args:
        arrays: dict of name to numpy array, all with the same first axis.
        batch_size: int, rows per batch (clipped to the number of rows).
        steps: int, batches in one pass.
        seed: int.
        transform: optional callable `(batch_dict, rng) -> batch_dict`.
        first: int, number of the first batch.
    """

    def __init__(self, arrays, batch_size, steps, seed=0, transform=None,
                 first=0):
        super().__init__()
        sizes = {len(v) for v in arrays.values()}
        if len(sizes) != 1:
            raise ValueError(
                "All arrays need the same number of rows. Received: "
                f"{ {k: np.shape(v) for k, v in arrays.items()} }"
            )
        self.arrays = arrays
        self.rows = sizes.pop()
        self.batch_size = min(int(batch_size), self.rows)
        self.steps = int(steps)
        self.seed = int(seed)
        self.transform = transform
        self.first = int(first)

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.first + int(index)])
        rows = rng.choice(self.rows, self.batch_size, replace=False)
        batch = {name: value[rows] for name, value in self.arrays.items()}
        if self.transform is not None:
            batch = self.transform(batch, rng)
        return (batch,)


class ObjectiveModel(keras.Model):
    """Trains `network` to maximize `objective(network(inputs))`.

    Args:
        network: a `keras.Model` taking the batch dict.
        objective: callable of the network's output returning a scalar
            (`keras.ops`), the quantity to maximize.
        **kwargs: base `keras.Model` arguments.
    """

    def __init__(self, network, objective, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.objective = objective

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        return -self.objective(y_pred)


def fit_objective(network, objective, batches, learning_rate, verbose=0,
                  callbacks=None):
    """Maximizes `objective` over `batches` with Adam.

    Args:
        network: the `keras.Model` to train (updated in place).
        objective: callable of the network's output, the scalar to maximize.
        batches: a `RandomBatches` (one pass is run).
        learning_rate: float, Adam learning rate.
        verbose: Keras `fit` verbosity.
        callbacks: list of Keras callbacks, or None.

    Returns:
        The trained network.
    """
    model = ObjectiveModel(network, objective)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    model.fit(batches, epochs=1, verbose=verbose, callbacks=callbacks)
    return network


def standardizer(train):
    """Returns a function standardizing rows with `train`'s statistics.

    Args:
        train: array `[N, ...]`; rows are flattened.

    Returns:
        Callable `x -> float32 [len(x), features]`, each feature centred
        and scaled by the mean and standard deviation over `train`.
    """
    train = np.asarray(train, dtype="float32").reshape(len(train), -1)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)

    def apply(x):
        x = np.asarray(x, dtype="float32").reshape(len(x), -1)
        return ((x - mean) / std).astype("float32")

    return apply
