"""The minibatch linear probe: sklearn's accuracy, C chosen on held-out data."""

import io

import keras
import numpy as np
import pytest

from dim_keras.evaluation import linear_minibatch
from dim_keras.evaluation.linear_minibatch import ColumnL2
from dim_keras.evaluation.linear_minibatch import RowBatches
from dim_keras.evaluation.linear_minibatch import feature_statistics
from dim_keras.evaluation.linear_minibatch import learning_rate_for
from dim_keras.evaluation.linear_minibatch import minibatch_linear_probe
from dim_keras.evaluation.probes import LBFGS_LIMIT
from dim_keras.evaluation.probes import linear_probe
from dim_keras.evaluation.probes import linear_solver
from dim_keras.progress import Progress


def _blobs(n, classes=4, dim=16, spread=2.5, seed=0):
    """Overlapping Gaussian blobs: a linear probe gets most, not all."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=spread, size=(classes, dim)) + 3.0
    labels = rng.integers(classes, size=n)
    features = means[labels] + rng.normal(scale=2.0, size=(n, dim))
    return features.astype("float32"), labels


def test_it_reaches_the_accuracy_scikit_learn_reaches():
    x, y = _blobs(1400, spread=1.1)
    train, test = slice(0, 400), slice(400, None)
    exact = linear_probe(x[train], y[train], x[test], y[test], C=1.0,
                         solver="lbfgs")
    minibatch = linear_probe(x[train], y[train], x[test], y[test], C=1.0,
                             solver="minibatch", epochs=30, batch_size=64)
    assert exact["solver"] == "lbfgs" and minibatch["solver"] == "minibatch"
    assert 0.7 < exact["accuracy"] < 0.99  # not trivially separable
    # Within a point, on 1000 test points.
    assert abs(minibatch["accuracy"] - exact["accuracy"]) <= 0.01
    assert minibatch["C"] == 1.0 and "C_grid" not in minibatch


def test_c_is_chosen_on_the_held_out_part_then_refitted():
    x, y = _blobs(600, dim=64, spread=0.5, seed=1)
    grid = (1e-4, 1e-2, 1.0)
    result = linear_probe(x[:400], y[:400], x[400:], y[400:], C=grid,
                          solver="minibatch", epochs=8, seed=3)
    scores = result["validation_accuracy"]
    assert result["C_grid"] == list(grid) and list(scores) == [
        repr(c) for c in grid]
    assert result["validation_size"] == 40  # 10% of the 400
    best = max(scores.values())
    assert result["C"] == min(c for c in grid if scores[repr(c)] == best)
    # The strongest penalty leaves the probe near chance on the held-out
    # part; a weaker one learns.
    assert scores["0.0001"] < best
    assert result["train_size"] == 400 and result["test_size"] == 200


def test_each_candidate_is_penalized_by_its_own_strength():
    kernel = np.ones((3, 4), dtype="float32")
    kernel[:, 2:] = 2.0
    penalty = ColumnL2([0.5, 0.5, 0.1, 0.1])(keras.ops.convert_to_tensor(
        kernel))
    # Columns 0-1: 3 rows x 1 x 0.5 each; columns 2-3: 3 x 4 x 0.1 each.
    assert float(penalty) == pytest.approx(2 * 1.5 + 2 * 1.2)


def test_statistics_and_batches_read_uint8_rows_without_copying_them():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(50, 12), dtype=np.uint8)
    rows = np.arange(3, 47)
    mean, variance = feature_statistics(pixels, rows, chunk=7)
    np.testing.assert_allclose(mean, pixels[rows].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(variance, pixels[rows].var(axis=0),
                               rtol=1e-4)
    constant = np.zeros((10, 2), dtype=np.uint8)
    assert feature_statistics(constant, np.arange(10))[1].tolist() == [1, 1]
    batches = RowBatches(pixels, rows, np.arange(50), batch_size=16, seed=0)
    assert len(batches) == 3
    seen = []
    for i in range(len(batches)):
        features, labels = batches[i]
        assert features.dtype == np.float32 and len(features) <= 16
        np.testing.assert_array_equal(features, pixels[labels])
        seen += labels.tolist()
    assert sorted(seen) == rows.tolist()  # every row once, shuffled
    assert seen != rows.tolist()
    assert pixels.dtype == np.uint8
    # Several passes in one epoch: every row once per pass, each pass in an
    # order of its own, no batch across two passes.
    batches = RowBatches(pixels, rows, np.arange(50), batch_size=16, seed=0,
                         passes=3)
    assert len(batches) == 9
    passes = [np.concatenate([batches[3 * p + i][1] for i in range(3)])
              for p in range(3)]
    for labels in passes:
        assert sorted(labels.tolist()) == rows.tolist()
    assert passes[0].tolist() != passes[1].tolist()


def test_the_learning_rate_goes_as_one_over_the_width():
    assert learning_rate_for(16) == learning_rate_for(64) == 0.1
    assert learning_rate_for(6400) == pytest.approx(1e-3)
    assert learning_rate_for(128, base=1.0) == pytest.approx(0.5)


def test_the_solver_is_chosen_by_size():
    assert linear_solver(100, 100, 10) == "lbfgs"
    assert linear_solver(LBFGS_LIMIT, 1, 1) == "lbfgs"
    assert linear_solver(LBFGS_LIMIT + 1, 1, 1) == "minibatch"
    # Tiny ImageNet's conv map at 5,000 images and 200 classes.
    assert linear_solver(5000, 9408, 200) == "minibatch"
    assert linear_solver(5000, 9408, 200, "lbfgs") == "lbfgs"
    with pytest.raises(ValueError, match="Received: solver='sgd'"):
        linear_solver(1, 1, 1, "sgd")


def test_progress_counts_the_epochs_of_both_fits():
    x, y = _blobs(120)
    line = Progress("linear", stream=io.StringIO())
    result = minibatch_linear_probe(x[:80], y[:80], x[80:], y[80:],
                                    (0.1, 1.0), epochs=3, progress=line)
    assert (line.total, line.unit, line.done) == (6, "epochs", 6)
    assert result["epochs"] == 3
    exact = Progress("linear", stream=io.StringIO())
    linear_probe(x[:80], y[:80], x[80:], y[80:], C=(0.1, 1.0),
                 progress=exact)
    assert (exact.total, exact.unit, exact.done) == (3, "fits", 3)


def test_the_model_holds_one_slice_of_logits_per_candidate():
    model = linear_minibatch.build_linear_candidates(
        np.zeros(5, "float32"), np.ones(5, "float32"), num_classes=3,
        strengths=[0.1, 0.2])
    assert model.output.shape == (None, 2, 3)
    logits = model(np.ones((4, 5), "float32"))
    assert np.all(keras.ops.convert_to_numpy(logits) == 0.0)  # zero start


def test_cheap_fits_get_more_epochs_to_take_300_steps():
    epochs_for = linear_minibatch.epochs_for
    # CIFAR-10 subset, conv map, 5 candidates of 10 classes: 9 steps an
    # epoch, 34 epochs for 300 steps, about 3e10 multiply-adds.
    assert epochs_for(4500, 512, features=4096, outputs=50) == 34
    # Tiny ImageNet's conv map, 200 classes: 15 epochs cost enough.
    assert epochs_for(4500, 512, features=9408, outputs=1000) == 15
    assert epochs_for(100_000, 512) == 15  # 196 steps an epoch
    assert epochs_for(10, 512, min_steps=20) == 20


def test_a_long_grid_is_thinned_to_five_evenly_spaced_values():
    candidates = linear_minibatch.candidates
    grid = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
    assert candidates(grid) == (1e-4, 1e-3, 1e-2, 0.1, 1.0)
    assert candidates(grid[:3]) == grid[:3]
    assert candidates(tuple(range(1, 8))) == (1, 3, 5, 7)
    assert candidates(tuple(range(1, 9))) == (1, 3, 5, 7, 8)
