"""Tiny data and command lines shared by the tuning tests."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = "digits_tiny"
TINY_TRAIN = 96


def tiny_digits():
    """The first 96 training and 32 test images of `digits`."""
    from dim_keras.data import registry

    full = registry.load_digits()
    x, y = full.arrays("train")
    x_test, y_test = full.arrays("test")
    return registry.ImageDataset(
        TINY, image_size=32, num_classes=10,
        splits={"train": (x[:TINY_TRAIN], y[:TINY_TRAIN]),
                "test": (x_test[:32], y_test[:32])},
        default_epochs=1,
    )


def tiny_spec():
    """The `DatasetSpec` of `digits_tiny`."""
    from dim_keras.data import registry

    return registry.DatasetSpec(
        TINY, 32, {"train": TINY_TRAIN, "test": 32}, 10,
        registry.augment.NONE, "the first images of digits (tests)",
        lambda data_dir=None, image_size=None: tiny_digits(),
    )


def register():
    """Makes `--dataset digits_tiny` known in this (sub)process."""
    from dim_keras.data import registry

    registry.DATASETS[TINY] = tiny_spec()


# Tiny trials: 96 images, batch 32, critic width 16, no XLA.
TINY_ARGS = ["--dataset", TINY, "--epochs-per-trial", "1", "--batch-size",
             "32", "--critic-units", "16", "--no-jit", "--val-fraction",
             "0.25"]

LAUNCH = (
    "import tests.tuning_helpers as h; h.register(); "
    "from dim_keras.apps.cli import main; main()"
)


def cli_command(*args):
    """`dim-keras` with `digits_tiny` registered, as a subprocess argv."""
    return [sys.executable, "-c", LAUNCH, *args]


def cli_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.update(extra)
    return env
