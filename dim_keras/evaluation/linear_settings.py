"""The linear probe's settings: its grid of C, its solver by size, their text.

`dim_keras.evaluation.probes` fits the probe; this module, which imports
only NumPy, holds what the evaluation's settings, its report and the speech
evaluation need to know of it.
"""

import numpy as np

from dim_keras.choices import LINEAR_SOLVERS
from dim_keras.choices import check_choice


# With C fixed at 1, logistic regression fitted the 5,000 training images of
# a CIFAR-10 subset perfectly on every 1024- and 4096-wide layer (82% of them
# on raw pixels), and its test accuracy understated what a chosen C finds by
# 3-12 points (raw pixels: 25% at C=1, 37% at C=3e-4).
LINEAR_C_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)


def check_linear_c(C):
    """The linear probe's `C` as a sorted tuple, refusing bad values.

    Args:
        C: a positive number, or a non-empty sequence of them.

    Returns:
        tuple of floats, ascending.

    Raises:
        ValueError: naming `C` when it is empty or not all positive.
    """
    try:
        grid = (C,) if np.ndim(C) == 0 else tuple(C)
        grid = tuple(float(c) for c in grid)
    except (TypeError, ValueError):
        grid = ()
    if not grid or not all(np.isfinite(c) and c > 0 for c in grid):
        raise ValueError(
            "C must be a positive number or a non-empty sequence of them. "
            f"Received: C={C!r}")
    return tuple(sorted(grid))


# The linear probe's solvers (`LINEAR_SOLVERS`): "lbfgs" (scikit-learn,
# exact, on the CPU), "minibatch" (`linear_minibatch`, Adam on the training
# device) or "auto", which takes L-BFGS up to `LBFGS_LIMIT` training
# examples x features x classes and the minibatch probe above it.
# Measured on the CIFAR-10 subset (4,500 training images x 64, 1,024 and
# 4,096 features x 10 classes, 9 values of C) on a 2-core CPU, CPU time:
# L-BFGS (one thread) 1.0, 14.8 and 55.9 s, about 3.2e-7 s per example x
# feature x class; the minibatch probe (two threads) 5.0, 8.2 and 16.6 s,
# a few seconds of set-up and tracing before it is faster: they take as
# long near 1e7.
LBFGS_LIMIT = 10_000_000


def linear_solver(train_size, feature_dim, num_classes, solver="auto"):
    """The solver of a linear probe of that size.

    Args:
        train_size: int, training examples.
        feature_dim: int, features.
        num_classes: int, classes.
        solver: one of `LINEAR_SOLVERS`; anything but "auto" is returned.

    Returns:
        `"lbfgs"` when `solver` is "auto" and `train_size * feature_dim *
        num_classes <= LBFGS_LIMIT`, else `"minibatch"` (or `solver`).

    Raises:
        ValueError: for an unknown `solver`.
    """
    check_choice("solver", solver, LINEAR_SOLVERS, what="linear solver")
    if solver != "auto":
        return solver
    size = int(train_size) * int(feature_dim) * int(num_classes)
    return "lbfgs" if size <= LBFGS_LIMIT else "minibatch"


def linear_probe_settings(settings):
    """The linear probe's settings as one Markdown list item.

    Args:
        settings: dict with `linear_c` (a number, or a list to choose
            from), `linear_max_iter` and `validation_fraction`.

    Returns:
        str.
    """
    grid = check_linear_c(settings["linear_c"])
    if len(grid) > 1:
        chosen = (f"C chosen from {', '.join(f'{v:g}' for v in grid)} on "
                  f"{100 * settings['validation_fraction']:.0f}% of train "
                  "held out, then refitted on all of train")
    else:
        chosen = f"C={grid[0]:g}"
    return (f"- Linear: multinomial logistic regression on standardized "
            f"features, {chosen}, at most {settings['linear_max_iter']} "
            "L-BFGS iterations or "
            f"{settings.get('linear_epochs') or 'at least 15'} epochs "
            "of minibatch Adam (by size).")
