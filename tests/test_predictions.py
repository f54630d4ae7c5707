"""Which critic scores what: the predictions of each MI term."""

import keras
import numpy as np
import pytest
from keras import ops

from dim_keras.predictions import cross_view_predictions
from dim_keras.predictions import random_location

# Every test here depends on the Keras backend: CI runs them on each.
pytestmark = pytest.mark.backend


def _view(seed):
    rng = np.random.default_rng(seed)
    return {
        "local": ops.convert_to_tensor(
            rng.normal(size=(3, 2, 2, 4)).astype("float32")),
        "conv": ops.convert_to_tensor(
            rng.normal(size=(3, 1, 1, 4)).astype("float32")),
        "y": ops.convert_to_tensor(rng.normal(size=(3, 5)).astype("float32")),
    }


def numpy(x):
    return ops.convert_to_numpy(x)


def same(prediction, expected):
    """Whether a `(critic, source, target)` is `expected`, item by item."""
    return len(prediction) == len(expected) and all(
        a is b for a, b in zip(prediction, expected))


def test_two_views_make_every_prediction_both_ways():
    a, b = _view(0), _view(1)
    predictions = cross_view_predictions(
        [(a, b), (b, a)], "global", "local", "conv", "location",
        seed=keras.random.SeedGenerator(3))
    global_mi, local = predictions["global_mi"], predictions["local_mi"]
    assert len(global_mi) == 2 and len(local) == 6
    assert same(global_mi[0], ("global", a["local"], b["y"]))
    assert same(global_mi[1], ("global", b["local"], a["y"]))
    assert same(local[0], ("local", a["local"], b["y"]))
    assert same(local[1], ("conv", a["conv"], b["y"]))
    assert same(local[2][:2], ("location", a["local"]))
    assert same(local[3], ("local", b["local"], a["y"]))
    assert same(local[4], ("conv", b["conv"], a["y"]))
    assert same(local[5][:2], ("location", b["local"]))
    # One random location of the other view's map, drawn pair by pair.
    seed = keras.random.SeedGenerator(3)
    first = random_location(b["local"], seed)
    second = random_location(a["local"], seed)
    np.testing.assert_array_equal(numpy(local[2][2]), numpy(first))
    np.testing.assert_array_equal(numpy(local[5][2]), numpy(second))
    assert not np.array_equal(numpy(first), numpy(
        random_location(b["local"], keras.random.SeedGenerator(4))))


def test_missing_critics_make_no_predictions():
    a = _view(0)
    predictions = cross_view_predictions([(a, a)], local_critic="local")
    assert predictions["global_mi"] == []
    assert len(predictions["local_mi"]) == 1
    assert same(predictions["local_mi"][0], ("local", a["local"], a["y"]))
    assert cross_view_predictions([(a, a)]) == {
        "global_mi": [], "local_mi": []}


def test_random_location_draws_each_image_independently():
    maps = np.arange(50 * 3 * 3 * 1, dtype="float32").reshape(50, 3, 3, 1)
    picked = numpy(random_location(ops.convert_to_tensor(maps), 0))[:, 0]
    rows = maps.reshape(50, 9)
    positions = [int(np.flatnonzero(rows[i] == picked[i])[0])
                 for i in range(50)]
    assert len(set(positions)) > 3  # not one location for all images
