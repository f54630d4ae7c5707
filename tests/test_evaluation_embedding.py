"""The t-SNE map of Y: which points, their coordinates, the PNG."""

import numpy as np
import pytest

from dim_keras.evaluation import embedding

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _clusters(n_per_class=15, classes=3, dim=6, seed=0):
    # Classes far apart in Y: a faithful map keeps them apart.
    rng = np.random.default_rng(seed)
    centres = 20.0 * rng.normal(size=(classes, dim))
    labels = np.repeat(np.arange(classes), n_per_class)
    y = centres[labels] + rng.normal(size=(len(labels), dim))
    return y.astype("float32"), labels


def _assert_png(path, min_bytes=5000):
    with open(path, "rb") as f:
        content = f.read()
    assert content.startswith(PNG_SIGNATURE)
    assert len(content) > min_bytes


def test_subsample_is_seeded_sorted_and_bounded():
    rows = embedding.subsample_rows(100, 10, seed=0)
    assert len(rows) == 10 and len(set(rows)) == 10
    assert np.all(np.diff(rows) > 0) and rows.max() < 100
    np.testing.assert_array_equal(rows, embedding.subsample_rows(100, 10, 0))
    assert not np.array_equal(rows, embedding.subsample_rows(100, 10, 1))
    np.testing.assert_array_equal(embedding.subsample_rows(7, 10, 0),
                                  np.arange(7))


def test_map_keeps_known_classes_apart():
    y, labels = _clusters()
    found = embedding.embedding_map(y, labels, seed=0)
    xy = found["coordinates"]
    assert xy.shape == (len(y), 2) and np.all(np.isfinite(xy))
    np.testing.assert_array_equal(found["labels"], labels)
    # Each point's nearest neighbour on the map is of its own class.
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    nearest = labels[np.argmin(distances, axis=1)]
    assert np.mean(nearest == labels) > 0.95
    # Seeded: the same map twice.
    np.testing.assert_allclose(
        embedding.embedding_map(y, labels, seed=0)["coordinates"], xy)


def test_map_of_a_subsample_keeps_rows_and_labels_paired():
    y, labels = _clusters(n_per_class=20)
    found = embedding.embedding_map(y, labels, max_points=25, seed=3)
    assert found["coordinates"].shape == (25, 2)
    assert found["points"] == 25 and found["of"] == 60
    np.testing.assert_array_equal(found["labels"], labels[found["rows"]])
    assert found["perplexity"] < 25 / 3


def test_map_refuses_mismatched_labels():
    y, labels = _clusters()
    with pytest.raises(ValueError, match="Received: y.shape"):
        embedding.embedding_map(y, labels[:-1])


def test_plot_side_by_side_and_unlabelled(tmp_path):
    y, labels = _clusters()
    labelled = embedding.embedding_map(y, labels)
    path = str(tmp_path / "embedding.png")
    embedding.plot_embeddings({"DIM": labelled, "Random": labelled}, path)
    _assert_png(path)
    unlabelled = embedding.embedding_map(y, None)
    assert unlabelled["labels"] is None
    other = str(tmp_path / "unlabelled.png")
    embedding.plot_embeddings({"DIM": unlabelled}, other)
    _assert_png(other)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "embedding.png", "unlabelled.png"]  # no temporary files left
