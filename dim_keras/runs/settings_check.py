"""The resume check: a run continues only with the settings it started with.

`check_same_settings` compares the settings asked for now with a run's
`config.json`, leaving out those that may change between a run and its
resumption (`RESUMABLE_CHANGES`).
"""

import os

from dim_keras.config import TrainConfig
from dim_keras.recipes import RECIPE_FIELDS
from dim_keras.recipes import SCHEME_FIELDS
from dim_keras.runs.files import RunError
from dim_keras.runs.files import read_config
from dim_keras.runs.files import run_paths

# Settings that may change between a run and its resumption.
RESUMABLE_CHANGES = ("epochs", "data_dir", "distribute", "jit_compile",
                     "knn_every")


def _comparable(config_dict, recorded=True):
    # Fill in defaults, so runs written before a setting existed compare;
    # a recipe setting a recorded run lacks is the reference's it used.
    if recorded and "online_probe" not in config_dict:
        # Runs recorded before the online probe existed trained without it
        # (their checkpoints hold no probe weights).
        config_dict = dict(config_dict, online_probe=False)
    config = TrainConfig.from_dict(config_dict)
    if recorded:
        config = config.with_recipe().with_scheme()
    settings = config.to_dict()
    for name in RESUMABLE_CHANGES:
        settings.pop(name, None)
    return settings


def check_same_settings(run_dir, config):
    """Refuses to continue a run of `run_dir` with other settings.

    Args:
        run_dir: str.
        config: the `TrainConfig` asked for now.

    Returns:
        True if `run_dir` holds a run config, False for a new run.

    Raises:
        RunError: if `run_dir` holds a run with other settings.
        DamagedFileError: if its `config.json` is damaged.
    """
    path = run_paths(run_dir)["config"]
    if not os.path.exists(path):
        return False
    previous = _comparable(read_config(path))
    current = _comparable(config.to_dict(), recorded=False)
    # An encoder, recipe or view-scheme setting left unset means the
    # default, which the run recorded when it started (the dataset itself
    # is compared; `training.train` resolves a config before it resumes).
    for name in ("encoder",) + RECIPE_FIELDS + SCHEME_FIELDS:
        if current.get(name) is None:
            current[name] = previous.get(name)
    if previous != current:
        changed = sorted(
            k for k in set(previous) | set(current)
            if previous.get(k) != current.get(k)
        )
        raise RunError(
            f"{run_dir} holds a run with other settings ({', '.join(changed)}); "
            "use another --out, or the same settings to resume it."
        )
    return True
