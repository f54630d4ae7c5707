"""NDM comes out near the closed-form total correlation of Gaussians."""

import numpy as np

from dim_keras.evaluation.ndm import ndm
from dim_keras.evaluation.ndm import shuffle_dimensions


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
