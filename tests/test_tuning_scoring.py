"""Trial scoring: a validation split of the training data, never the test split."""

import keras
import numpy as np
import pytest

from dim_keras.data import ImageDataset
from dim_keras.tuning import scoring


class TrainOnlyDataset(ImageDataset):
    """Fails the test if anything reads its test split."""

    def arrays(self, split):
        assert split != "test", "the test split was read"
        return super().arrays(split)


def labelled_images(n, seed=0):
    """Images whose first row lights pixel `label`: linearly separable."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10)
    images = np.zeros((n, 32, 32, 3), dtype="uint8")
    images[np.arange(n), 0, labels, :] = 255
    images[np.arange(n), 31, 31, 0] = np.arange(n) % 256  # all distinct
    return images, labels.astype("int64")


def dataset(n=100):
    train = labelled_images(n)
    test = labelled_images(20, seed=1)
    return TrainOnlyDataset("fake", 32, 10, {"train": train, "test": test})


def pixel_encoder(scale=1.0):
    """A Functional 'encoder' whose `y` is the flattened image."""
    images = keras.Input((32, 32, 3))
    y = keras.layers.Flatten()(keras.layers.Rescaling(scale)(images))
    return keras.Model(images, {"y": y, "fc": y})


def test_validation_split_is_a_stratified_partition_of_train():
    data = dataset(100)
    train_x, train_y, val_x, val_y = scoring.validation_split(data, 0.2, 0)
    assert len(train_x) == 80 and len(val_x) == 20
    assert np.bincount(val_y).tolist() == [2] * 10
    seen = {x.tobytes() for x in np.concatenate([train_x, val_x])}
    assert seen == {x.tobytes() for x in data.splits["train"][0]}
    assert not {x.tobytes() for x in train_x} & {x.tobytes() for x in val_x}
    again = scoring.validation_split(data, 0.2, 0)
    assert np.array_equal(again[2], val_x)


@pytest.mark.parametrize("probe", ["linear", "knn"])
def test_probe_scores_separable_features_perfectly(probe):
    split = scoring.validation_split(dataset(200), 0.2, 0)
    result = scoring.ProbeScorer(split, probe=probe, layer="y")(pixel_encoder())
    assert result["probe"] == probe
    assert result["test_size"] == 40
    assert result["accuracy"] == 1.0


def test_mlp_probe_gets_the_split(monkeypatch):
    calls = []

    def fake_mlp_probe(train_x, train_y, test_x, test_y, seed):
        calls.append((train_x.shape, test_x.shape, seed))
        return {"probe": "mlp", "accuracy": 0.5}

    monkeypatch.setattr(scoring.probes, "mlp_probe", fake_mlp_probe)
    split = scoring.validation_split(dataset(100), 0.2, 0)
    result = scoring.ProbeScorer(split, "mlp", "fc", seed=7)(pixel_encoder())
    assert result["accuracy"] == 0.5
    assert calls == [((80, 3072), (20, 3072), 7)]


def test_chance_when_features_carry_no_label():
    split = scoring.validation_split(dataset(100), 0.2, 0)
    result = scoring.ProbeScorer(split, "linear", "y")(pixel_encoder(0.0))
    assert result["accuracy"] <= 0.3


def test_non_finite_features_raise():
    split = scoring.validation_split(dataset(40), 0.25, 0)
    scorer = scoring.ProbeScorer(split, "linear", "y")
    with pytest.raises(FloatingPointError, match="not all finite"):
        scorer(pixel_encoder(float("nan")))


@pytest.mark.parametrize(
    "probe, layer, message",
    [("svm", "y", "probe='svm'"), ("linear", "local", "layer='local'")],
)
def test_bad_probe_or_layer(probe, layer, message):
    with pytest.raises(ValueError, match=message):
        scoring.check_probe(probe, layer)


def test_bad_fraction():
    with pytest.raises(ValueError, match="val_fraction=1.5"):
        scoring.validation_split(dataset(20), 1.5, 0)


def test_a_few_label_score_fits_on_n_images_per_class():
    split = scoring.validation_split(dataset(200), 0.2, 0)
    for probe in ("linear", "knn"):
        result = scoring.ProbeScorer(split, probe, "y",
                                     labels_per_class=2)(pixel_encoder())
        # Each class lights its own pixel: 2 labelled images per class (20
        # of the 160) still tell every validation image.
        assert result["accuracy"] == 1.0
        assert (result["labels_per_class"], result["train_size"],
                result["test_size"], result["draws"]) == (2, 20, 40, 5)
    # Label-free features score near chance with few labels too.
    result = scoring.ProbeScorer(split, "linear", "y", labels_per_class=2)(
        pixel_encoder(0.0))
    assert result["accuracy"] <= 0.3


def test_a_few_label_score_is_checked():
    split = scoring.validation_split(dataset(100), 0.2, 0)
    with pytest.raises(ValueError, match="labels_per_class=0"):
        scoring.ProbeScorer(split, "linear", "y", labels_per_class=0)
    with pytest.raises(ValueError, match="probe='mlp', labels_per_class=2"):
        scoring.ProbeScorer(split, "mlp", "y", labels_per_class=2)
    # 8 training images per class: 8 labels per class is every label.
    scorer = scoring.ProbeScorer(split, "knn", "y", labels_per_class=8)
    with pytest.raises(ValueError, match="labels_per_class=8"):
        scorer(pixel_encoder())
