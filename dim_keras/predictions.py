"""The predictions of DIM's objective: which critic scores what.

For each pair of views `(view, other)` of a `dim_keras.view_schemes`
scheme (one view meets itself), global MI scores `view`'s local map
against `other`'s Y, and local MI makes up to three predictions, each with
its own critic (AMDIM's 1-to-5, 1-to-7 and 5-to-5): `other`'s Y against
`view`'s local map (DIM's), against `view`'s last conv map (coarser), and
one random location of `other`'s local map against every location of
`view`'s local map. `dim_keras.objective.mean_estimate` turns each term's
critic scores into its estimate.
"""

import keras
from keras import ops


def random_location(feature_map, seed):
    """One location of each image's feature map, drawn at random.

    AMDIM's 5-to-5 prediction scores one feature of a view's map against
    every feature of the other view's map; the location is drawn
    independently for every image.

    Args:
        feature_map: `[N, H, W, C]`.
        seed: a `keras.random.SeedGenerator` or int seed.

    Returns:
        `[N, C]`: `feature_map[i, h_i, w_i]` for random `(h_i, w_i)`.
    """
    shape = ops.shape(feature_map)
    n, locations = shape[0], shape[1] * shape[2]
    rows = ops.reshape(feature_map, (n, locations, shape[3]))
    index = keras.random.randint((n,), 0, locations, seed=seed)
    pick = ops.one_hot(index, locations, dtype=rows.dtype)
    return ops.einsum("nl,nlc->nc", pick, rows)


def cross_view_predictions(pairs, global_critic=None, local_critic=None,
                           conv_critic=None, location_critic=None,
                           seed=None):
    """The `(critic, source, target)` of every prediction, per MI term.

    The local-local prediction draws one location of each image from
    `seed` per pair, in the order of `pairs`.

    Args:
        pairs: list of `(view, other)`, views being dicts of `"local"`,
            `"y"` and (for `conv_critic`) `"conv"` features.
        global_critic: critic of `view`'s local map against `other`'s Y,
            or None.
        local_critic: critic of `view`'s local map against `other`'s Y,
            or None.
        conv_critic: critic of `view`'s conv map against `other`'s Y, or
            None.
        location_critic: critic of `view`'s local map against a random
            location of `other`'s local map, or None.
        seed: a `keras.random.SeedGenerator`, for the random locations.

    Returns:
        `{"global_mi": [...], "local_mi": [...]}`: lists of `(critic,
        source, target)`, the critic to call on `(source, target)`; pair
        by pair, and within a pair in the order of the arguments.
    """
    predictions = {"global_mi": [], "local_mi": []}
    for view, other in pairs:
        if global_critic is not None:
            predictions["global_mi"].append(
                (global_critic, view["local"], other["y"]))
        if local_critic is not None:
            predictions["local_mi"].append(
                (local_critic, view["local"], other["y"]))
        if conv_critic is not None:
            predictions["local_mi"].append(
                (conv_critic, view["conv"], other["y"]))
        if location_critic is not None:
            predictions["local_mi"].append(
                (location_critic, view["local"],
                 random_location(other["local"], seed)))
    return predictions
