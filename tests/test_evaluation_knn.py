"""The batched kNN search: exactly the brute-force neighbours, in a budget."""

import math

import numpy as np
import pytest

from dim_keras.evaluation import knn
from dim_keras.evaluation.knn import KnnPlan
from dim_keras.evaluation.knn import knn_plan
from dim_keras.evaluation.knn import nearest_neighbours
from dim_keras.evaluation.probes import knn_probe


def _brute_force(bank, queries, k):
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    similarity = queries.astype(np.float64) @ bank.astype(np.float64).T
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(similarity, order, axis=1), order


def _brute_force_probe(train_x, train_y, test_x, k, temperature):
    similarity, nearest = _brute_force(train_x, test_x, k)
    weights = np.exp((similarity - similarity[:, :1]) / temperature)
    votes = np.zeros((len(test_x), train_y.max() + 1))
    for row in range(len(test_x)):
        for j in range(k):
            votes[row, train_y[nearest[row, j]]] += weights[row, j]
    return np.argmax(votes, axis=1)


def test_batched_search_equals_brute_force_exactly():
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(300, 24)).astype("float32")
    queries = rng.normal(size=(50, 24)).astype("float32")
    # Blocks of 8 queries and 32 bank rows: 7 x 10 steps, a short last one
    # of each.
    plan = KnnPlan(query_batch=8, bank_batch=32, step_bytes=0,
                   state_bytes=0, steps=70)
    similarities, indices = nearest_neighbours(bank, queries, 7, plan=plan)
    expected_similarities, expected = _brute_force(bank, queries, 7)
    # No near-ties: float32 and float64 order these neighbours alike.
    top = _brute_force(bank, queries, 8)[0]
    assert np.min(-np.diff(top, axis=1)) > 1e-5
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(similarities, expected_similarities,
                               atol=1e-5)


def test_the_probe_votes_as_a_brute_force_knn():
    rng = np.random.default_rng(1)
    train_x = rng.normal(size=(400, 10)).astype("float32")
    train_y = rng.integers(5, size=400)
    test_x = rng.normal(size=(120, 10)).astype("float32")
    test_y = _brute_force_probe(train_x, train_y, test_x, 20, 0.07)
    # Every test label is the brute-force prediction: accuracy 1 exactly,
    # with blocks far smaller than the data.
    result = knn_probe(train_x, train_y, test_x, test_y, chunk_size=16,
                       memory_bytes=40_000)
    assert result["accuracy"] == 1.0
    assert result["query_batch"] <= 16 and result["bank_batch"] < 400
    assert result["solver"] == "batched"


def test_labels_need_not_be_contiguous_and_pixels_stay_uint8():
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(60, 4, 4, 3), dtype=np.uint8)
    labels = np.where(np.arange(60) % 2 == 0, 7, 3)
    result = knn_probe(pixels, labels, pixels, labels, k=1)
    assert result["accuracy"] == 1.0  # each image is its own neighbour
    assert pixels.dtype == np.uint8


def test_the_plan_of_100k_by_10k_fits_a_gpu_and_covers_every_pair():
    gib = 2 ** 30
    plan = knn_plan(100_000, 10_000, 9408, 20, memory_bytes=2 * gib,
                    query_limit=4096)
    assert plan.step_bytes <= 2 * gib
    assert plan.step_bytes == knn.step_bytes(plan.query_batch,
                                             plan.bank_batch, 9408, 20)
    # Never the 100,000 x 10,000 similarities (4 GB of float32, more than
    # the budget) at once: a tenth of them at most.
    assert 4 * 100_000 * 10_000 > 2 * gib
    assert plan.query_batch * plan.bank_batch <= 100_000 * 10_000 // 8
    assert plan.steps == (math.ceil(10_000 / plan.query_batch)
                          * math.ceil(100_000 / plan.bank_batch))
    assert plan.state_bytes == 2 * 4 * 10_000 * 20
    # The default budget on the same data: smaller blocks, more steps.
    small = knn_plan(100_000, 10_000, 9408, 20)
    assert small.step_bytes <= knn.MEMORY_BYTES < plan.step_bytes
    assert small.steps > plan.steps


def test_a_budget_too_small_for_one_step_is_refused():
    with pytest.raises(ValueError, match="Received: memory_bytes=1000"):
        knn_plan(100, 10, 9408, 20, memory_bytes=1000)
    with pytest.raises(ValueError, match="Received: bank_size=0"):
        knn_plan(0, 10, 8, 1)
