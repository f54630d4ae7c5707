"""Probes: near 100% on separable features, near chance on random labels."""

import numpy as np
import pytest

from dim_keras.evaluation.probes import knn_probe
from dim_keras.evaluation.probes import linear_probe
from dim_keras.evaluation.probes import mlp_probe


def _separable(n, classes=4, dim=16, seed=0):
    """Gaussian blobs around well separated class means."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=6.0, size=(classes, dim))
    labels = rng.integers(classes, size=n)
    features = means[labels] + rng.normal(size=(n, dim))
    return features.astype("float32"), labels


def _random_labels(n, classes=4, dim=16, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, dim)).astype("float32"),
            rng.integers(classes, size=n))


def test_linear_probe_separable_and_random():
    x, y = _separable(600)
    result = linear_probe(x[:400], y[:400], x[400:], y[400:])
    assert result["accuracy"] >= 0.99
    assert result["feature_dim"] == 16 and result["test_size"] == 200
    x, y = _random_labels(2000)
    result = linear_probe(x[:1000], y[:1000], x[1000:], y[1000:])
    # Chance is 1/4; 1000 test labels: standard deviation about 0.014.
    assert abs(result["accuracy"] - 0.25) < 0.06


def test_linear_probe_chooses_c_on_held_out_training_data():
    x, y = _random_labels(400, dim=64)
    y[:200] = (x[:200, 0] > 0).astype(int)  # half the labels carry signal
    result = linear_probe(x[:300], y[:300], x[300:], y[300:], seed=3)
    grid = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
    assert result["C_grid"] == grid
    scores = result["validation_accuracy"]
    assert [float(c) for c in scores] == grid
    assert result["validation_size"] == 30  # 10% of the 300 training rows
    best = max(scores.values())
    # The most accurate on the held-out rows, the smallest of ties.
    assert result["C"] == min(c for c in grid if scores[repr(c)] == best)
    # Then refitted on all 300 training rows: the same probe as one given
    # that C alone.
    fixed = linear_probe(x[:300], y[:300], x[300:], y[300:], seed=3,
                         C=result["C"])
    assert result["train_size"] == fixed["train_size"] == 300
    assert result["accuracy"] == fixed["accuracy"]
    assert result["train_accuracy"] == fixed["train_accuracy"]
    assert "C_grid" not in fixed and fixed["C"] == result["C"]


def test_linear_probe_ties_take_the_strongest_regularization():
    x, y = _separable(300)
    result = linear_probe(x[:200], y[:200], x[200:], y[200:],
                          C=[1.0, 0.01, 0.1])
    assert set(result["validation_accuracy"].values()) == {1.0}
    assert result["C"] == 0.01 and result["C_grid"] == [0.01, 0.1, 1.0]
    assert result["accuracy"] >= 0.99


@pytest.mark.parametrize("C", [0.0, -1.0, [], [0.1, float("nan")], "big"])
def test_linear_probe_refuses_bad_c(C):
    x, y = _separable(40)
    with pytest.raises(ValueError, match="Received: C="):
        linear_probe(x[:30], y[:30], x[30:], y[30:], C=C)


def test_linear_probe_refuses_a_bad_validation_fraction():
    x, y = _separable(40)
    with pytest.raises(ValueError, match="Received: validation_fraction=1"):
        linear_probe(x[:30], y[:30], x[30:], y[30:], validation_fraction=1)


def test_linear_probe_too_small_to_choose_c_says_so():
    # Two examples of two classes: the held-out one leaves a single class
    # to fit, which scikit-learn refuses with its own error.
    x = np.array([[0.0, 1.0], [1.0, 0.0]])
    y = np.array([0, 1])
    with pytest.raises(ValueError, match="Received: train_size=2"):
        linear_probe(x, y, x, y)
    # With one C fixed there is nothing to choose: it fits both classes.
    assert linear_probe(x, y, x, y, C=1.0)["accuracy"] == 1.0


def test_knn_probe_separable_and_random():
    x, y = _separable(600)
    result = knn_probe(x[:400], y[:400], x[400:], y[400:], k=5)
    assert result["accuracy"] >= 0.99
    x, y = _random_labels(2000)
    result = knn_probe(x[:1000], y[:1000], x[1000:], y[1000:])
    assert abs(result["accuracy"] - 0.25) < 0.06


def test_knn_probe_uses_cosine_similarity():
    # Same direction, different lengths: cosine neighbours agree.
    train_x = np.array([[1.0, 0.0], [10.0, 0.0], [0.0, 1.0], [0.0, 9.0]])
    train_y = np.array([0, 0, 1, 1])
    test_x = np.array([[100.0, 1.0], [0.1, 5.0]])
    result = knn_probe(train_x, train_y, test_x, np.array([0, 1]), k=2)
    assert result["accuracy"] == 1.0


def test_mlp_probe_separable_and_random():
    x, y = _separable(600)
    result = mlp_probe(x[:400], y[:400], x[400:], y[400:], epochs=30,
                       patience=5, learning_rate=1e-2)
    assert result["accuracy"] >= 0.97
    assert result["train_size"] + result["validation_size"] == 400
    assert 1 <= result["best_epoch"] <= result["epochs_run"] <= 30
    x, y = _random_labels(1200)
    result = mlp_probe(x[:600], y[:600], x[600:], y[600:], epochs=10,
                       patience=3, learning_rate=1e-2)
    assert abs(result["accuracy"] - 0.25) < 0.08


def test_probes_refuse_mismatched_inputs():
    x, y = _separable(20)
    with pytest.raises(ValueError, match="Received"):
        linear_probe(x, y[:10], x, y)
    with pytest.raises(ValueError, match="same number of features"):
        knn_probe(x, y, x[:, :3], y)


def test_mlp_probe_holds_out_a_validation_set_from_tiny_data():
    # 10 examples, 2 classes: 10% held out is 1 example, too few to stratify.
    rng = np.random.default_rng(0)
    train_y = np.array([0, 1] * 5)
    train_x = rng.normal(size=(10, 4)).astype("float32") + train_y[:, None]
    result = mlp_probe(train_x, train_y, train_x[:4], train_y[:4], epochs=2,
                       patience=1, num_classes=2)
    assert 0.0 <= result["accuracy"] <= 1.0
