"""Few-label probes: what a representation is worth when labels are scarce.

An encoder trained without labels earns its keep where few are known. For
each rung *n* of a ladder of labels per class, `few_label_probes` draws *n*
labelled training images of every class (several seeded draws), fits a
probe on their features only, and scores it on the whole test split: the
semi-supervised evaluation of SSL papers (1% / 10% of the labels), as
labels per class so that it reads the same on every data set.

- linear: multinomial logistic regression (scikit-learn L-BFGS) at a fixed
  L2 strength `FEW_LABEL_C`, on features standardized with the statistics
  of the whole training split (its images are known, only their labels
  are scarce; the mean and spread of 1 image per class would be noise);
  with one or a few examples per class there is nothing to hold out to
  choose the strength on;
- kNN: the weighted cosine vote of `probes.knn_probe`, its `k` clipped to
  the labelled images.

Each result is a record like the full-label probes' (`probe`,
`representation`, `layer`, `accuracy`) with `labels_per_class`, `draws`,
the accuracy of every draw and their spread; `accuracy` is the mean over
draws.
"""

import time

import numpy as np

from dim_keras.choices import FEW_LABEL_PROBES

# Labels per class of the ladder; the rungs a training split allows run
# (fewer than its smallest class: "all" is the full-label probe).
LABEL_LADDER = (1, 10, 100)
# Random draws of the labelled images per rung.
FEW_LABEL_DRAWS = 5
# The linear probe's inverse L2 strength on standardized features.
FEW_LABEL_C = 0.1


def check_ladder(ladder):
    """Checks a ladder of labels per class.

    Args:
        ladder: sequence of labels per class.

    Raises:
        ValueError: for a rung that is not a positive int.
    """
    for n in ladder:
        if isinstance(n, bool) or not (
                isinstance(n, (int, np.integer)) and n >= 1):
            raise ValueError(
                "Labels per class must be positive integers. "
                f"Received: ladder={list(ladder)}")


def ladder_for(labels, ladder=LABEL_LADDER):
    """The rungs of `ladder` a training split allows.

    Args:
        labels: int array `[N]`, the training labels.
        ladder: sequence of positive ints, labels per class.

    Returns:
        Sorted tuple of the rungs smaller than the smallest class (a rung
        of a whole class would be the full-label probe).

    Raises:
        ValueError: for a rung that is not a positive int.
    """
    check_ladder(ladder)
    smallest = int(np.min(np.bincount(np.asarray(labels))
                          [np.unique(labels)]))
    return tuple(sorted({int(n) for n in ladder if n < smallest}))


def draw_labelled(labels, per_class, seed):
    """Indices of `per_class` random training images of every class.

    Args:
        labels: int array `[N]`.
        per_class: int, images drawn from each class (without
            replacement).
        seed: int, seeds the draw.

    Returns:
        Sorted int array of `per_class * classes` indices.

    Raises:
        ValueError: when a class has fewer than `per_class` images.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) < per_class:
            raise ValueError(
                f"Class {label} has {len(rows)} images, fewer than "
                f"{per_class} per class. Received: per_class={per_class}")
        chosen.append(rng.choice(rows, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def _standardizer(train_x):
    mean = train_x.mean(axis=0, dtype="float64").astype("float32")
    std = train_x.std(axis=0, dtype="float64").astype("float32")
    std = np.where(std > 1e-8, std, 1.0).astype("float32")
    return lambda x: (np.asarray(x, "float32") - mean) / std


def _linear(train_z, train_y, test_z, test_y, seed):
    from dim_keras.evaluation.probes import fit_logistic

    classifier = fit_logistic(train_z, train_y, FEW_LABEL_C,
                                           max_iter=200, seed=seed)
    return float(np.mean(classifier.predict(test_z) == test_y))


def _knn(train_x, train_y, test_x, test_y, k, temperature):
    from dim_keras.evaluation.probes import knn_probe

    return knn_probe(train_x, train_y, test_x, test_y, k=k,
                                 temperature=temperature)["accuracy"]


def few_label_probes(representation, features, train_y, test_y,
                     ladder=LABEL_LADDER, draws=FEW_LABEL_DRAWS, seed=0,
                     probes=FEW_LABEL_PROBES, knn_k=20, knn_temperature=0.07):
    """Linear and kNN probes fitted on few labelled images per class.

    Args:
        representation: str, what the features are of (`"dim"`,
            `"random"`, `"pixels"`), copied into each record.
        features: dict of layer name to `(train_x, test_x)` arrays `[N,
            ...]` and `[M, ...]` (flattened here).
        train_y: int array `[N]`, every training label (only the drawn
            ones are used to fit).
        test_y: int array `[M]`.
        ladder: labels per class (`ladder_for` keeps the rungs the split
            allows).
        draws: int, random draws per rung; draw `d` of rung `n` is the
            same images for every representation and layer.
        seed: int, seeds the draws and the linear probe.
        probes: some of `FEW_LABEL_PROBES`.
        knn_k: int, the kNN probe's neighbours (clipped to the labelled
            images).
        knn_temperature: float, its vote temperature.

    Returns:
        List of records, one per (layer, probe, rung): `probe`,
        `representation`, `layer`, `labels_per_class`, `draws`, `accuracy`
        (the mean over draws), `accuracy_std`, `accuracy_per_draw`,
        `train_size` (labelled images per draw), `test_size`, `seconds`,
        and the probe's settings.

    Raises:
        ValueError: for a probe other than `FEW_LABEL_PROBES` or fewer than
            one draw.
    """
    unknown = sorted(set(probes) - set(FEW_LABEL_PROBES))
    if unknown or draws < 1:
        raise ValueError(
            f"Few-label probes are some of {list(FEW_LABEL_PROBES)}, with at "
            f"least one draw. Received: probes={list(probes)}, "
            f"draws={draws}")
    train_y = np.asarray(train_y).astype("int64")
    test_y = np.asarray(test_y).astype("int64")
    rungs = ladder_for(train_y, ladder)
    subsets = {n: [draw_labelled(train_y, n, seed + 1000 * n + d)
                   for d in range(draws)] for n in rungs}
    records = []
    for layer, (train_x, test_x) in features.items():
        train_x = np.asarray(train_x).reshape(len(train_x), -1)
        test_x = np.asarray(test_x).reshape(len(test_x), -1)
        standardize = _standardizer(train_x) if "linear" in probes else None
        test_z = standardize(test_x) if standardize else None
        for n in rungs:
            for probe in probes:
                started = time.perf_counter()
                scores = []
                for rows in subsets[n]:
                    if probe == "linear":
                        scores.append(_linear(standardize(train_x[rows]),
                                              train_y[rows], test_z, test_y,
                                              seed))
                    else:
                        scores.append(_knn(train_x[rows], train_y[rows],
                                           test_x, test_y, knn_k,
                                           knn_temperature))
                settings = ({"C": FEW_LABEL_C, "standardized": "train split"}
                            if probe == "linear" else
                            {"k": min(knn_k, len(subsets[n][0])),
                             "temperature": float(knn_temperature)})
                records.append({
                    "probe": probe,
                    "representation": representation,
                    "layer": layer,
                    "labels_per_class": int(n),
                    "draws": int(draws),
                    "accuracy": float(np.mean(scores)),
                    "accuracy_std": float(np.std(scores)),
                    "accuracy_per_draw": [float(s) for s in scores],
                    "feature_dim": int(train_x.shape[1]),
                    "train_size": int(len(subsets[n][0])),
                    "test_size": int(len(test_y)),
                    **settings,
                    "seed": int(seed),
                    "seconds": round(time.perf_counter() - started, 2),
                })
    return records
