"""Default training recipes: the settings a run takes when it is not given them.

A recipe fills the `TrainConfig` settings of `RECIPE_FIELDS` that a user
left unset (`None`). Each dataset names its recipe
(`ImageDataset.default_settings`); settings it does not name come from
`REFERENCE`. Imports nothing, so the command line can show the recipes
before Keras is loaded.
"""

# Width of the encode-and-dot critic when none is given (the reference's).
ENCODE_AND_DOT_UNITS = 2048

# Settings a recipe may fill; `TrainConfig` leaves them `None` by default.
RECIPE_FIELDS = ("lr", "augment", "critic_units", "critic_norm", "view_crop")

# The paper's reference implementation: Adam lr 1e-4, the dataset's crops and
# flips, the encode-and-dot critic at its own width (2048) with batch norm
# and layer norm; two views (multi-view DIM) by AMDIM's random resized crop
# (its STL-10 and ImageNet transform).
REFERENCE = {
    "lr": 1e-4,
    "augment": True,
    "critic_units": None,
    "critic_norm": "batch_layer",
    "view_crop": "resized",
}

# 32x32 photographs (CIFAR-10/100, a folder of 32x32 images), measured on a
# 5k/1k real CIFAR-10 subset with benchmarks/quality.py (README, "Results on
# real data"): a 512-unit critic without normalization, lr 1e-3, no
# augmentation learned more in a laptop budget than the reference settings;
# two views by AMDIM's CIFAR-10 transform, a random translation of up to 4
# pixels (`dim_keras.data.views`).
CIFAR_LIKE = {
    "lr": 1e-3,
    "augment": False,
    "critic_units": 512,
    "critic_norm": "batch_layer",
    "view_crop": "translate",
}


def sqrt_width_temperature(local_critic, critic_units):
    """AMDIM's score temperature: the square root of the critic's width.

    Args:
        local_critic: the local critic's name.
        critic_units: its width, or None for the encode-and-dot default.

    Returns:
        float: `sqrt(U)` for the encode-and-dot critic (whose scores are
        dot products of U-unit layer-normalized embeddings), 1.0 for a
        critic whose scores are not dot products.
    """
    if local_critic != "encode_and_dot":
        return 1.0
    return float((critic_units or ENCODE_AND_DOT_UNITS) ** 0.5)


def describe(settings):
    """A recipe as `name=value` text, for messages and `dim-keras datasets`.

    Args:
        settings: dict of recipe settings (missing ones: `REFERENCE`).

    Returns:
        str.
    """
    values = dict(REFERENCE, **settings)
    return ", ".join(f"{name}={values[name]}" for name in RECIPE_FIELDS)
