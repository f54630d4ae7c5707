"""k nearest neighbours by cosine similarity, in batches on the device.

The search never holds a `queries x bank` similarity matrix: a block of
queries meets a block of the bank at a time (`keras.ops.matmul` on the
device Keras computes on), and each query keeps its `k` best so far,
merged with the block's best (`keras.ops.top_k`). Rows are scaled to unit
length block by block as they are taken, so an array (uint8 pixels
included) is never copied whole. `knn_plan` sizes the blocks so that one
step's tensors fit a memory budget: at 100,000 bank images and 10,000
queries of 9,408 features, a step of the default plan holds about 250 MB
on top of the running best of every query.
"""

import dataclasses
import math

import keras
import numpy as np
from keras import ops

# Bytes one step of the search may hold on the device (its blocks and
# their similarities), by default.
MEMORY_BYTES = 256 * 2 ** 20
# Queries compared at once, at most.
QUERY_BATCH_LIMIT = 1024
FLOAT_BYTES = 4


@dataclasses.dataclass(frozen=True)
class KnnPlan:
    """How a search is cut into blocks.

    Attributes:
        query_batch: int, queries per block.
        bank_batch: int, bank rows per block.
        step_bytes: int, bytes one step holds (both blocks, their
            similarities, the merge of the best).
        state_bytes: int, bytes of every query's running best (similarity
            and index of `k` neighbours).
        steps: int, query blocks times bank blocks.
    """

    query_batch: int
    bank_batch: int
    step_bytes: int
    state_bytes: int
    steps: int


def step_bytes(query_batch, bank_batch, feature_dim, k):
    """Bytes one step of the search holds.

    A query block and a bank block (float32), their similarities (counted
    twice: `top_k` may copy them), and the block's `k` best merged with
    the running `k` best (values and indices, before and after the merge).

    Args:
        query_batch: int.
        bank_batch: int.
        feature_dim: int.
        k: int.

    Returns:
        int.
    """
    blocks = (query_batch + bank_batch) * feature_dim
    similarities = 2 * query_batch * bank_batch
    merge = 8 * query_batch * k
    return FLOAT_BYTES * (blocks + similarities + merge)


def knn_plan(bank_size, query_size, feature_dim, k,
             memory_bytes=MEMORY_BYTES, query_limit=QUERY_BATCH_LIMIT):
    """Block sizes that keep a step of the search under `memory_bytes`.

    Queries go `min(query_size, query_limit)` at a time (fewer when a
    block of the bank would not fit beside them); the bank block is the
    largest that fits, at least `k` rows.

    Args:
        bank_size: int, rows searched.
        query_size: int, rows whose neighbours are found.
        feature_dim: int.
        k: int, neighbours kept.
        memory_bytes: int, the budget of one step.
        query_limit: int, queries per block at most.

    Returns:
        A `KnnPlan`.

    Raises:
        ValueError: when not even `k` bank rows and one query fit.
    """
    sizes = (bank_size, query_size, feature_dim, k, memory_bytes,
             query_limit)
    if min(sizes) < 1:
        raise ValueError(
            "knn_plan needs positive sizes. Received: bank_size="
            f"{bank_size}, query_size={query_size}, feature_dim="
            f"{feature_dim}, k={k}, memory_bytes={memory_bytes}, "
            f"query_limit={query_limit}")
    k = min(k, bank_size)
    query_batch = min(query_size, query_limit)
    while True:
        fixed = step_bytes(query_batch, 0, feature_dim, k)
        per_bank_row = step_bytes(query_batch, 1, feature_dim, k) - fixed
        bank_batch = min(bank_size, (memory_bytes - fixed) // per_bank_row)
        if bank_batch >= k:
            break
        if query_batch == 1:
            raise ValueError(
                "One step of the kNN search does not fit: raise "
                "memory_bytes. Received: memory_bytes="
                f"{memory_bytes}, feature_dim={feature_dim}, k={k}")
        query_batch = max(1, query_batch // 2)
    bank_batch = int(bank_batch)
    return KnnPlan(
        query_batch=int(query_batch),
        bank_batch=bank_batch,
        step_bytes=step_bytes(query_batch, bank_batch, feature_dim, k),
        state_bytes=2 * FLOAT_BYTES * query_size * k,
        steps=math.ceil(query_size / query_batch)
        * math.ceil(bank_size / bank_batch),
    )


def unit_rows(x):
    """Rows of `x` as float32 vectors of length 1 (zero rows stay zero).

    Args:
        x: array `[N, features]`, any real dtype.

    Returns:
        float32 array `[N, features]`.
    """
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def nearest_neighbours(bank, queries, k, plan=None, progress=None):
    """The `k` most cosine-similar bank rows of every query.

    Args:
        bank: array `[N, features]`, any real dtype.
        queries: array `[M, features]`.
        k: int, neighbours (at most `N`).
        plan: a `KnnPlan`, or None for `knn_plan`'s default.
        progress: a `dim_keras.progress.Progress` set to the queries done,
            or None.

    Returns:
        `(similarities, indices)`: float32 and int64 arrays `[M, k]`,
        each row from the most similar down.
    """
    k = min(int(k), len(bank))
    if plan is None:
        plan = knn_plan(len(bank), len(queries), bank.shape[1], k)
    all_similarities = np.empty((len(queries), k), dtype=np.float32)
    all_indices = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), plan.query_batch):
        query = ops.convert_to_tensor(
            unit_rows(queries[start:start + plan.query_batch]))
        best, best_index = None, None
        for first in range(0, len(bank), plan.bank_batch):
            block = ops.convert_to_tensor(
                unit_rows(bank[first:first + plan.bank_batch]))
            similarity = ops.matmul(query, ops.transpose(block))
            values, index = ops.top_k(similarity, min(k, block.shape[0]))
            index = ops.cast(index, "int32") + first
            if best is not None:
                values = ops.concatenate([best, values], axis=1)
                index = ops.concatenate([best_index, index], axis=1)
                values, position = ops.top_k(values, k)
                index = ops.take_along_axis(index, position, axis=1)
            best, best_index = values, index
        stop = start + len(query)
        all_similarities[start:stop] = ops.convert_to_numpy(best)
        all_indices[start:stop] = ops.convert_to_numpy(best_index)
        if progress is not None:
            progress.update(stop)
    return all_similarities, all_indices


def weighted_vote(similarities, neighbour_labels, num_classes,
                  temperature):
    """The class of each query by its neighbours' weighted vote.

    Each neighbour votes for its class with weight
    `exp(similarity / temperature)` (shifted by the row's maximum, which
    leaves the vote unchanged); the largest total wins (the smallest class
    index of ties).

    Args:
        similarities: float array `[M, k]`.
        neighbour_labels: int array `[M, k]` of class indices in
            `[0, num_classes)`.
        num_classes: int.
        temperature: float > 0.

    Returns:
        int array `[M]`.
    """
    similarities = np.asarray(similarities, dtype=np.float64)
    weights = np.exp((similarities - similarities.max(axis=1, keepdims=True))
                     / temperature)
    votes = np.zeros((len(similarities), num_classes))
    rows = np.repeat(np.arange(len(similarities)), similarities.shape[1])
    np.add.at(votes, (rows, np.asarray(neighbour_labels).ravel()),
              weights.ravel())
    return np.argmax(votes, axis=1)


def device_name():
    """What Keras computes on: `"gpu"`, `"tpu"` or `"cpu"`."""
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
        if backend == "jax":
            import jax

            return jax.default_backend()
        if backend == "torch":
            import torch

            return "gpu" if torch.cuda.is_available() else "cpu"
    except (ImportError, RuntimeError):
        pass
    return "cpu"
