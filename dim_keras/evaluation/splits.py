"""A seeded held-out split of labelled examples, stratified where possible."""

import numpy as np


def stratified_split(x, y, fraction, seed):
    """Seeded split holding out `fraction`, stratified where possible.

    The split keeps the class proportions when every class can be on both
    sides of it (at least two examples each, and no more classes than
    examples on either side); otherwise it is a plain random split.

    Args:
        x: array `[N, ...]`.
        y: int labels `[N]`.
        fraction: float in (0, 1), share held out.
        seed: int.

    Returns:
        `(kept_x, held_x, kept_y, held_y)`, as scikit-learn's
        `train_test_split`.

    Raises:
        ValueError: from scikit-learn, when a side would be empty.
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    counts = np.unique(y, return_counts=True)[1]
    held_out = int(np.ceil(fraction * len(y)))
    stratify = y if (counts.min() >= 2 and
                     len(counts) <= min(held_out, len(y) - held_out)) else None
    return train_test_split(
        x, y, test_size=fraction, random_state=seed, stratify=stratify
    )
