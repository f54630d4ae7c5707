"""Tests of `dim_keras.data.pipeline`."""

import keras
import numpy as np
import pytest

from dim_keras.data.pipeline import ShuffledBatches
from dim_keras.data.pipeline import training_pipeline


def numbered_images(n):
    """Images whose every pixel holds the image's index."""
    return np.broadcast_to(
        np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 2, 2, 3)
    ).copy()


def ids(batch):
    return [int(image[0, 0, 0]) for image in np.asarray(batch)]


def test_each_epoch_is_a_permutation_cut_into_full_batches():
    batches = ShuffledBatches(numbered_images(11), 4, seed=0)
    assert len(batches) == 2  # 11 // 4; the last 3 images wait
    epochs = []
    for _ in range(3):
        seen = [ids(batches[i]) for i in range(len(batches))]
        assert all(len(b) == 4 for b in seen)
        flat = sum(seen, [])
        assert len(set(flat)) == 8 and set(flat) <= set(range(11))
        epochs.append(flat)
        batches.on_epoch_end()
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]
    assert batches[0].dtype == np.uint8 and batches[0].shape == (4, 2, 2, 3)


def test_same_seed_same_order_and_every_image_is_served():
    a = ShuffledBatches(numbered_images(8), 2, seed=3)
    b = ShuffledBatches(numbered_images(8), 2, seed=3)
    assert [ids(a[i]) for i in range(4)] == [ids(b[i]) for i in range(4)]
    assert sorted(sum((ids(a[i]) for i in range(4)), [])) == list(range(8))


def test_out_of_range_index_raises():
    with pytest.raises(IndexError, match="Received: index=2"):
        ShuffledBatches(numbered_images(4), 2)[2]


@pytest.mark.parametrize("batch_size", [1, 9])
def test_bad_batch_size_is_refused(batch_size):
    with pytest.raises(ValueError, match=f"Received: batch_size={batch_size}"):
        training_pipeline(numbered_images(8), batch_size)


@pytest.mark.backend
def test_pipeline_suits_the_backend():
    pipeline = training_pipeline(numbered_images(9), 4, seed=0)
    if keras.backend.backend() == "tensorflow":
        batches = [ids(b) for b in pipeline]
        assert len(batches) == 2
        assert len(set(sum(batches, []))) == 8
    else:
        assert isinstance(pipeline, ShuffledBatches)
