"""MINE and NDM come out near closed-form values on Gaussians."""

import numpy as np

from dim_keras.evaluation.mine import mine
from dim_keras.evaluation.ndm import ndm
from dim_keras.evaluation.ndm import shuffle_dimensions


def _correlated(n, dim, rho, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    y = rho * x + np.sqrt(1.0 - rho**2) * rng.normal(size=(n, dim))
    return x.astype("float32"), y.astype("float32")


def test_mine_correlated_gaussians():
    dim, rho = 2, 0.8
    true = -0.5 * dim * np.log(1.0 - rho**2)  # 1.02 nats
    x, y = _correlated(3000, dim, rho, seed=0)
    result = mine(x[:2000], y[:2000], x[2000:], y[2000:], steps=300,
                  batch_size=128, units=64, seed=0)
    assert abs(result["estimate"] - true) < 0.2
    assert result["units"] == "nats" and result["eval_size"] == 1000


def test_mine_independent_is_near_zero():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 2)).astype("float32")
    y = rng.normal(size=(2000, 2)).astype("float32")
    result = mine(x[:1500], y[:1500], x[1500:], y[1500:], steps=150,
                  batch_size=128, units=32, seed=0)
    assert abs(result["estimate"]) < 0.1


def test_ndm_total_correlation_of_gaussians():
    rho = 0.8
    cov = np.array([[1.0, rho, 0.0], [rho, 1.0, 0.0], [0.0, 0.0, 1.0]])
    true = -0.5 * np.log(np.linalg.det(cov))  # 0.51 nats
    rng = np.random.default_rng(2)
    y = rng.multivariate_normal(np.zeros(3), cov, size=3000)
    result = ndm(y[:2000], y[2000:], steps=300, learning_rate=1e-3,
                 hidden_units=(256, 64), seed=0)
    assert abs(result["estimate"] - true) < 0.15
    independent = rng.normal(size=(3000, 3))
    result = ndm(independent[:2000], independent[2000:], steps=150,
                 learning_rate=1e-3, hidden_units=(256, 64), seed=0)
    assert abs(result["estimate"]) < 0.08


def test_shuffle_dimensions_keeps_marginals_breaks_pairs():
    rng = np.random.default_rng(3)
    y = np.stack([np.arange(1000.0), np.arange(1000.0)], axis=1)
    shuffled = shuffle_dimensions(y, rng)
    for k in range(2):
        assert sorted(shuffled[:, k]) == sorted(y[:, k])
    assert abs(np.corrcoef(shuffled.T)[0, 1]) < 0.1
