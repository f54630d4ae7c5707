"""A picture of the representation: a 2-D t-SNE map of Y, by class.

`embedding_map` places a seeded subsample (at most `max_points` rows) of
the test split's representations `Y` in the plane with scikit-learn's
t-SNE; `plot_embeddings` draws one such map per encoder side by side
(the trained DIM encoder beside the same network with random weights),
each point coloured by its class, or all alike for unlabelled data.
"""

import numpy as np

from dim_keras.evaluation.figures import new_figure
from dim_keras.evaluation.figures import save_figure

# t-SNE costs about quadratically in the points: a bounded subsample.
MAX_POINTS = 2000
PERPLEXITY = 30.0


def subsample_rows(n, max_points, seed):
    """Seeded, sorted row indices of at most `max_points` of `n` rows.

    Args:
        n: int, rows available.
        max_points: int, rows wanted at most.
        seed: int.

    Returns:
        int array of sorted indices (all rows when `n <= max_points`).
    """
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng([seed, 3])
    return np.sort(rng.choice(n, max_points, replace=False))


def embedding_map(y, labels=None, max_points=MAX_POINTS, seed=0,
                  perplexity=PERPLEXITY):
    """2-D t-SNE coordinates of (a subsample of) representations.

    Example:

    >>> import numpy as np
    >>> y = np.random.default_rng(0).normal(size=(50, 8))
    >>> embedding_map(y, max_points=20)["coordinates"].shape
    (20, 2)

    Args:
        y: array `[N, ...]` of representations (flattened).
        labels: int array `[N]` or None (unlabelled data).
        max_points: int, points at most (a seeded subsample beyond).
        seed: int, seeds the subsample and t-SNE.
        perplexity: float, t-SNE perplexity (lowered for few points, as
            t-SNE needs fewer than the points).

    Returns:
        Dict with `coordinates` `[M, 2]`, `rows` (the indices of `y`
        mapped), `labels` `[M]` (or None) and the settings.

    Raises:
        ValueError: for fewer than 3 rows, labels of another length or
            `max_points` below 3.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    y = np.asarray(y, dtype="float32")
    y = y.reshape(len(y), -1)
    if labels is not None and len(labels) != len(y):
        raise ValueError(
            "y and labels need the same number of rows. "
            f"Received: y.shape={y.shape}, labels.shape={np.shape(labels)}"
        )
    if max_points < 3 or len(y) < 3:
        raise ValueError(
            "A map needs at least 3 points. "
            f"Received: max_points={max_points}, y.shape={y.shape}"
        )
    rows = subsample_rows(len(y), max_points, seed)
    points = y[rows]
    perplexity = float(min(perplexity, (len(points) - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca",
                learning_rate="auto", random_state=seed)
    # One BLAS thread, as for the probes: small matrices beside TensorFlow.
    with threadpool_limits(limits=1, user_api="blas"):
        coordinates = tsne.fit_transform(points)
    return {
        "coordinates": np.asarray(coordinates, dtype="float32"),
        "rows": rows,
        "labels": None if labels is None else np.asarray(labels)[rows],
        "points": int(len(rows)),
        "of": int(len(y)),
        "perplexity": perplexity,
        "seed": int(seed),
    }


def plot_embeddings(maps, path, title="t-SNE of Y, test split"):
    """Draws maps side by side, points coloured by class, as a PNG.

    Args:
        maps: dict of panel title (e.g. `"DIM"`, `"Random weights"`) to a
            result of `embedding_map`.
        path: str, the PNG to write.
        title: str, the figure's title (the number of points is added).
    """
    if not maps:
        raise ValueError("maps must hold at least one map. Received: {}")
    figure = new_figure(5 * len(maps), 5)
    legend = {}
    for i, (name, found) in enumerate(maps.items()):
        axes = figure.add_subplot(1, len(maps), i + 1)
        xy, labels = found["coordinates"], found["labels"]
        if labels is None:
            axes.scatter(xy[:, 0], xy[:, 1], s=6, color="tab:blue",
                         alpha=0.7, linewidths=0)
        else:
            classes = np.unique(labels)
            colours = _class_colours(len(classes))
            for c, colour in zip(classes, colours):
                keep = labels == c
                handle = axes.scatter(xy[keep, 0], xy[keep, 1], s=6,
                                      color=colour, alpha=0.8,
                                      linewidths=0, label=str(c))
                legend.setdefault(str(c), handle)
        axes.set_title(name)
        axes.set_xticks([])
        axes.set_yticks([])
    first = next(iter(maps.values()))
    figure.suptitle(f"{title} ({first['points']} of {first['of']} points)")
    if legend and len(legend) <= 20:
        figure.legend(legend.values(), legend.keys(), loc="center right",
                      title="class", fontsize="small", markerscale=2)
        save_figure(figure, path, rect=(0, 0, 0.9, 1))
    else:
        save_figure(figure, path)


def _class_colours(count):
    from matplotlib import colormaps

    name = "tab10" if count <= 10 else "tab20" if count <= 20 else "turbo"
    cmap = colormaps[name]
    if count <= 20:
        return [cmap(i) for i in range(count)]
    return [cmap(i / max(1, count - 1)) for i in range(count)]
