"""Few-label probes: the ladder, the draws and hand-derived accuracies."""

import numpy as np
import pytest

from dim_keras.evaluation import few_labels


def test_ladder_keeps_rungs_below_the_smallest_class():
    labels = np.array([0] * 3 + [1] * 5)
    assert few_labels.ladder_for(labels, (1, 10, 100)) == (1,)
    # A rung of a whole class (3) is the full-label probe: left out.
    assert few_labels.ladder_for(labels, (3, 2, 1)) == (1, 2)
    with pytest.raises(ValueError, match=r"Received: ladder=\[0, 1\]"):
        few_labels.ladder_for(labels, (0, 1))


def test_draw_takes_n_distinct_images_of_every_class_seeded():
    labels = np.repeat(np.arange(4), 10)
    rows = few_labels.draw_labelled(labels, 3, seed=7)
    assert len(set(rows.tolist())) == 12
    assert np.bincount(labels[rows]).tolist() == [3, 3, 3, 3]
    np.testing.assert_array_equal(rows,
                                  few_labels.draw_labelled(labels, 3, 7))
    assert not np.array_equal(rows, few_labels.draw_labelled(labels, 3, 8))
    with pytest.raises(ValueError, match="Received: per_class=11"):
        few_labels.draw_labelled(labels, 11, seed=0)


def _two_prototypes():
    # Every class-0 training image is [1, 0], every class-1 one [0, 1]: any
    # draw gives the same fit. Of the four test points, the first two lie
    # next to their own class's prototype, the last two next to the other.
    train_x = np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3, "float32")
    train_y = np.array([0, 0, 0, 1, 1, 1])
    test_x = np.array([[1.0, 0.1], [0.1, 1.0], [1.0, 0.2], [0.2, 1.0]],
                      "float32")
    test_y = np.array([0, 1, 1, 0])
    return train_x, train_y, test_x, test_y


def test_records_hold_each_rung_and_the_mean_of_its_draws():
    train_x, train_y, test_x, test_y = _two_prototypes()
    records = few_labels.few_label_probes(
        "dim", {"y": (train_x, test_x)}, train_y, test_y, ladder=(1, 2, 3),
        draws=3, seed=0)
    got = {(r["probe"], r["labels_per_class"]): r for r in records}
    assert sorted(got) == [("knn", 1), ("knn", 2), ("linear", 1),
                           ("linear", 2)]
    for (probe, n), record in got.items():
        # Nearest prototype (kNN) and the separating line (linear) both
        # get the first two test points right and the last two wrong.
        assert record["accuracy"] == pytest.approx(0.5)
        assert record["accuracy_per_draw"] == [0.5, 0.5, 0.5]
        assert record["accuracy_std"] == 0.0
        assert (record["draws"], record["train_size"]) == (3, 2 * n)
        assert (record["representation"], record["layer"]) == ("dim", "y")
    assert got[("knn", 1)]["k"] == 2


def test_informative_features_beat_label_free_noise_with_one_label():
    rng = np.random.default_rng(0)
    classes, per_class, dim = 5, 20, 16
    centres = 4.0 * rng.normal(size=(classes, dim))
    labels = np.repeat(np.arange(classes), per_class)
    informative = centres[labels] + rng.normal(size=(len(labels), dim))
    noise = rng.normal(size=(len(labels), dim))
    test = np.arange(len(labels)) % 2 == 1
    for features, low, high in ((informative, 0.9, 1.0),
                                (noise, 0.0, 0.5)):
        records = few_labels.few_label_probes(
            "x", {"y": (features[~test], features[test])}, labels[~test],
            labels[test], ladder=(1,), draws=4, seed=1)
        for record in records:
            assert low <= record["accuracy"] <= high, record


def test_refuses_unknown_probes_and_no_draws():
    train_x, train_y, test_x, test_y = _two_prototypes()
    with pytest.raises(ValueError, match=r"probes=\['mlp'\]"):
        few_labels.few_label_probes("dim", {"y": (train_x, test_x)},
                                    train_y, test_y, probes=("mlp",))
    with pytest.raises(ValueError, match="draws=0"):
        few_labels.few_label_probes("dim", {"y": (train_x, test_x)},
                                    train_y, test_y, draws=0)
