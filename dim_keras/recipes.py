"""Default training recipes: the settings a run takes when it is not given them.

A recipe fills the `TrainConfig` settings of `RECIPE_FIELDS` that a user
left unset (`None`). Each dataset names its recipe
(`ImageDataset.default_settings`); settings it does not name come from
`REFERENCE`. Imports nothing, so the command line can show the recipes
before Keras is loaded.
"""

# Settings a recipe may fill; `TrainConfig` leaves them `None` by default.
RECIPE_FIELDS = ("lr", "augment", "critic_units", "critic_norm")

# The paper's reference implementation: Adam lr 1e-4, the dataset's crops and
# flips, the encode-and-dot critic at its own width (2048) with batch norm
# and layer norm.
REFERENCE = {
    "lr": 1e-4,
    "augment": True,
    "critic_units": None,
    "critic_norm": "batch_layer",
}

# 32x32 photographs (CIFAR-10/100, a folder of 32x32 images), measured on a
# 5k/1k real CIFAR-10 subset with benchmarks/quality.py (README, "Results on
# real data"): a 512-unit critic without normalization, lr 1e-3, no
# augmentation learned more in a laptop budget than the reference settings.
CIFAR_LIKE = {
    "lr": 1e-3,
    "augment": False,
    "critic_units": 512,
    "critic_norm": "batch_layer",
}


def describe(settings):
    """A recipe as `name=value` text, for messages and `dim-keras datasets`.

    Args:
        settings: dict of recipe settings (missing ones: `REFERENCE`).

    Returns:
        str.
    """
    values = dict(REFERENCE, **settings)
    return ", ".join(f"{name}={values[name]}" for name in RECIPE_FIELDS)
