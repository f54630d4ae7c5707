"""Tiny settings and data shared by the tests.

Every test that trains uses these settings unless it is about one of them:
digits, batches of 8, two steps per epoch, a 16-unit critic, no XLA, and the
online monitors off (the tests of the monitors turn them on). A training of
one epoch with them takes a few seconds on a 2-core CPU.
"""

import os

import numpy as np

from dim_keras.config import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = dict(
    dataset="digits",
    batch_size=8,
    critic_units=16,
    steps_per_epoch=2,
    epochs=1,
    jit_compile=False,
    online_probe=False,
    knn_every=0,
)

# The session's trained run (`trained_run` in conftest): two tiny epochs
# with the online monitors on (as by default), so that its history has
# their columns.
TRAINED_RUN = dict(TINY, epochs=2, online_probe=True, knn_every=None)

# The trained run's settings as `dim-keras train` options (but --epochs).
TRAINED_RUN_CLI = [
    "--dataset", "digits", "--batch-size", "8", "--critic-units", "16",
    "--steps-per-epoch", "2", "--no-jit",
]

# The tiny settings as `dim-keras train` options (but --epochs).
TINY_CLI = TRAINED_RUN_CLI + ["--no-online-probe", "--knn-every", "0"]


def tiny_config(**overrides):
    """A `TrainConfig` with the tiny settings, `overrides` applied."""
    return TrainConfig(**dict(TINY, **overrides))


def trained_run_config(**overrides):
    """The settings of the session's trained run, `overrides` applied."""
    return TrainConfig(**dict(TRAINED_RUN, **overrides))


def quiet(message):
    """A `log` for `train` that prints nothing."""


def replace_file(path, content):
    """Writes `content` (bytes) as a new file at `path`.

    The old file is replaced, not written into, so a hard link to it (a
    `run_copy` of the session's run) keeps its content.
    """
    temporary = path + ".replacing"
    with open(temporary, "wb") as f:
        f.write(content)
    os.replace(temporary, path)


def speakers_folder(root, speakers=3, per_speaker=4, seconds=1.1,
                    rate=16000):
    """Tone-and-noise 'voices': speaker k hums at 150 * (k + 1) Hz.

    Args:
        root: str, a folder to create.
        speakers: int, sub-folders, one per speaker.
        per_speaker: int, WAV files per speaker.
        seconds: float, length of each file.
        rate: int, their sample rate.

    Returns:
        The `--dataset` value, `folder:root`.
    """
    import soundfile

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    for k in range(speakers):
        os.makedirs(os.path.join(root, f"spk{k}"))
        for u in range(per_speaker):
            wave = 0.3 * np.sin(2 * np.pi * 150 * (k + 1) * t)
            wave += 0.05 * rng.normal(size=len(t))
            soundfile.write(os.path.join(root, f"spk{k}", f"u{u}.wav"),
                            wave, rate)
    return f"folder:{root}"


def image_folder(root, per_class=6):
    """Two classes of tiny 20x20 PNG images, `per_class` each, in `root`."""
    from PIL import Image

    for k, name in enumerate(["a", "b"]):
        os.makedirs(os.path.join(root, name))
        for i in range(per_class):
            Image.new("RGB", (20, 20), (k * 200, i * 30, 50)).save(
                os.path.join(root, name, f"{i}.png"))


def tiny_encoder(image_size=32, representation_dim=64):
    """A small encoder of the paper's shape, for tests of shapes and maths.

    basic32x32's layout (three 4x4 stride-2 conv blocks, a dense block, Y)
    with 8 / 16 / 16 filters and 32 dense units: the same outputs
    (`local` 8x8x16, `conv` 4x4x16, `fc` 32, `y`) at a fraction of the
    weights, built from Keras's own layers.

    Args:
        image_size: int, input height and width.
        representation_dim: int, size of Y.

    Returns:
        A Functional `keras.Model` with outputs `local`, `conv`, `fc`, `y`.
    """
    import keras
    from keras import layers

    images = keras.Input((image_size, image_size, 3), name="images")
    x = layers.Rescaling(2.0 / 255.0, offset=-1.0)(images)

    def block(x, filters, name):
        x = layers.Conv2D(filters, 4, strides=2, padding="same",
                          use_bias=False, name=f"{name}_conv")(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    x = block(x, 8, "block1")
    local = block(x, 16, "block2")
    conv = block(local, 16, "block3")
    fc = layers.Dense(32, use_bias=False, name="fc1_dense")(
        layers.Flatten(name="flatten")(conv))
    fc = layers.ReLU(name="fc1_relu")(
        layers.BatchNormalization(name="fc1_bn")(fc))
    y = layers.Dense(representation_dim, name="y")(fc)
    return keras.Model(
        images, {"local": local, "conv": conv, "fc": fc, "y": y},
        name="tiny_encoder")
