"""The paper's encoders, as Functional models of built-in Keras layers only.

Each encoder takes raw images (pixel values 0-255, uint8 or float, NHWC,
3 channels) and scales them to [-1, 1] itself, so that a saved encoder is fed
images exactly as they are decoded. Its output is a dict:

- `"local"`: the M x M x C local feature map used by local DIM;
- `"conv"`: the last convolutional feature map (probed);
- `"fc"`: the second-to-last dense layer (probed);
- `"y"`: the global representation Y (probed, 64 units by default).

Because only built-in layers are used, `encoder.keras` loads with plain
`keras.saving.load_model(path)` (safe mode) where `dim_keras` is absent.
"""

import keras
from keras import layers

from dim_keras.choices import ENCODERS
from dim_keras.choices import check_choice


# Image size each architecture was designed for (height = width).
ENCODER_IMAGE_SIZE = {"basic32x32": 32, "alex64x64": 64}

OUTPUT_KEYS = ("local", "conv", "fc", "y")


def _conv_block(x, filters, kernel_size, strides, name):
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _dense_block(x, units, name):
    x = layers.Dense(units, use_bias=False, name=f"{name}_dense")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _image_input(image_size):
    images = keras.Input(shape=(image_size, image_size, 3), name="images")
    # Raw pixels 0..255 -> [-1, 1]; part of the saved graph.
    scaled = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(images)
    return images, scaled


def encoder_description(name, image_size):
    """One sentence on an encoder's input and outputs (saved with it).

    Args:
        name: str, architecture name.
        image_size: int, input height and width.

    Returns:
        str.
    """
    return (
        f"DIM {name} encoder. Input: float or uint8 images "
        f"[batch, {image_size}, {image_size}, 3], pixel values 0-255 "
        "(scaled inside). Outputs: dict with 'conv', 'fc', 'y' "
        "(representation) and 'local' (local feature map)."
    )


def basic32x32(image_size=32, representation_dim=64, name="basic32x32"):
    """DCGAN-like encoder of the paper's CIFAR experiments.

    conv 64 / 128 / 256 (4x4, stride 2, batch norm, ReLU), dense 1024 (batch
    norm, ReLU), dense `representation_dim` = Y. The local map is the output
    of the second conv block (8 x 8 x 128 at 32 x 32 input).

    Args:
        image_size: int, input height and width.
        representation_dim: int, size of Y.
        name: str, model name.

    Returns:
        A Functional `keras.Model` with outputs `local`, `conv`, `fc`, `y`.
    """
    images, x = _image_input(image_size)
    x = _conv_block(x, 64, 4, 2, "block1")
    local = _conv_block(x, 128, 4, 2, "block2")
    conv = _conv_block(local, 256, 4, 2, "block3")
    x = layers.Flatten(name="flatten")(conv)
    fc = _dense_block(x, 1024, "fc1")
    y = layers.Dense(representation_dim, name="y")(fc)
    outputs = {"local": local, "conv": conv, "fc": fc, "y": y}
    return keras.Model(images, outputs, name=name)


def alex64x64(image_size=64, representation_dim=64, name="alex64x64"):
    """AlexNet-like encoder of the paper's STL-10 and Tiny ImageNet runs.

    3x3 convs 96, 192, 384, 384, 192 (batch norm, ReLU), 3x3 / 2 max-pooling
    after convs 1, 2 and 5; dense 4096, 4096 (batch norm, ReLU); dense
    `representation_dim` = Y. Following the reference implementation
    (`local_task_idx=2`), the local map is the output of the conv that
    follows the second pooled block: 15 x 15 x 384 at 64 x 64 input.

    Args:
        image_size: int, input height and width.
        representation_dim: int, size of Y.
        name: str, model name.

    Returns:
        A Functional `keras.Model` with outputs `local`, `conv`, `fc`, `y`.
    """
    images, x = _image_input(image_size)
    x = _conv_block(x, 96, 3, 1, "block1")
    x = layers.MaxPooling2D(3, 2, name="block1_pool")(x)
    x = _conv_block(x, 192, 3, 1, "block2")
    x = layers.MaxPooling2D(3, 2, name="block2_pool")(x)
    local = _conv_block(x, 384, 3, 1, "block3")
    x = _conv_block(local, 384, 3, 1, "block4")
    x = _conv_block(x, 192, 3, 1, "block5")
    conv = layers.MaxPooling2D(3, 2, name="block5_pool")(x)
    x = layers.Flatten(name="flatten")(conv)
    x = _dense_block(x, 4096, "fc1")
    fc = _dense_block(x, 4096, "fc2")
    y = layers.Dense(representation_dim, name="y")(fc)
    outputs = {"local": local, "conv": conv, "fc": fc, "y": y}
    return keras.Model(images, outputs, name=name)


_BUILDERS = {"basic32x32": basic32x32, "alex64x64": alex64x64}


def build_encoder(name, image_size=None, representation_dim=64):
    """Builds an encoder by name.

    Args:
        name: `"basic32x32"` or `"alex64x64"`.
        image_size: int or None; defaults to the architecture's own size.
        representation_dim: int, size of Y.

    Returns:
        The Functional encoder.
    """
    check_choice("encoder", name, ENCODERS)
    image_size = image_size or ENCODER_IMAGE_SIZE[name]
    return _BUILDERS[name](
        image_size=image_size, representation_dim=representation_dim
    )
