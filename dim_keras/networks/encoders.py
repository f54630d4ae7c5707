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

from dim_keras.choices import CHANNEL_SPLITS
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


# RGB (0-255) to the channel groups of CMC-style encoders, as the kernel
# and bias of a frozen 1x1 convolution: YDbDr's luminance Y scaled to
# [-1, 1], and its colour (Db, Dr) divided by 1.333 to [-1, 1]. (CMC used
# Lab's L and ab; Lab's conversion is nonlinear, a gamma curve and a cube
# root, which built-in layers cannot express, while YDbDr separates
# luminance from colour with a linear map, exactly, so the saved encoders
# still load in plain Keras.)
_LUMA = ([[2 * 0.299 / 255], [2 * 0.587 / 255], [2 * 0.114 / 255]], [-1.0])
_CHROMA = (
    [[-0.450 / 255 / 1.333, -1.333 / 255 / 1.333],
     [-0.883 / 255 / 1.333, 1.116 / 255 / 1.333],
     [1.333 / 255 / 1.333, 0.217 / 255 / 1.333]],
    [0.0, 0.0],
)
CHANNEL_GROUPS = {"luma": _LUMA, "chroma": _CHROMA}


def _image_input(image_size, channels=None):
    images = keras.Input(shape=(image_size, image_size, 3), name="images")
    if channels is None:
        # Raw pixels 0..255 -> [-1, 1]; part of the saved graph.
        scaled = layers.Rescaling(1.0 / 127.5, offset=-1.0,
                                  name="scale")(images)
        return images, scaled
    check_choice("channels", channels, tuple(CHANNEL_GROUPS))
    kernel, bias = CHANNEL_GROUPS[channels]
    colour = layers.Conv2D(
        len(bias), 1, trainable=False, name=f"{channels}_channels",
        kernel_initializer=keras.initializers.Constant([[kernel]]),
        bias_initializer=keras.initializers.Constant(bias),
    )
    return images, colour(images)


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


def basic32x32(image_size=32, representation_dim=64, name="basic32x32",
               channels=None):
    """DCGAN-like encoder of the paper's CIFAR experiments.

    conv 64 / 128 / 256 (4x4, stride 2, batch norm, ReLU), dense 1024 (batch
    norm, ReLU), dense `representation_dim` = Y. The local map is the output
    of the second conv block (8 x 8 x 128 at 32 x 32 input).

    Args:
        image_size: int, input height and width.
        representation_dim: int, size of Y.
        name: str, model name.
        channels: None (RGB), or `"luma"` / `"chroma"`: the encoder sees
            only that channel group of its RGB input (see
            `channel_split_encoder`).

    Returns:
        A Functional `keras.Model` with outputs `local`, `conv`, `fc`, `y`.
    """
    images, x = _image_input(image_size, channels)
    x = _conv_block(x, 64, 4, 2, "block1")
    local = _conv_block(x, 128, 4, 2, "block2")
    conv = _conv_block(local, 256, 4, 2, "block3")
    x = layers.Flatten(name="flatten")(conv)
    fc = _dense_block(x, 1024, "fc1")
    y = layers.Dense(representation_dim, name="y")(fc)
    outputs = {"local": local, "conv": conv, "fc": fc, "y": y}
    return keras.Model(images, outputs, name=name)


def alex64x64(image_size=64, representation_dim=64, name="alex64x64",
              channels=None):
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
        channels: None (RGB), or `"luma"` / `"chroma"`: the encoder sees
            only that channel group of its RGB input (see
            `channel_split_encoder`).

    Returns:
        A Functional `keras.Model` with outputs `local`, `conv`, `fc`, `y`.
    """
    images, x = _image_input(image_size, channels)
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


def build_encoder(name, image_size=None, representation_dim=64,
                  channel_split="none"):
    """Builds an encoder by name.

    Args:
        name: `"basic32x32"` or `"alex64x64"`.
        image_size: int or None; defaults to the architecture's own size.
        representation_dim: int, size of Y.
        channel_split: `"none"`, or `"luma-chroma"` for CMC's form (see
            `channel_split_encoder`).

    Returns:
        The Functional encoder.
    """
    check_choice("encoder", name, ENCODERS)
    check_choice("channel_split", channel_split, CHANNEL_SPLITS)
    image_size = image_size or ENCODER_IMAGE_SIZE[name]
    if channel_split != "none":
        return channel_split_encoder(name, image_size, representation_dim)
    return _BUILDERS[name](
        image_size=image_size, representation_dim=representation_dim
    )


def channel_split_encoder(name, image_size=None, representation_dim=64):
    """Two encoders on two channel groups, and their concatenation (CMC).

    Contrastive multiview coding (Tian et al., 2019) splits each image into
    luminance and colour and trains one encoder per group, each scoring its
    features against the other's. Here the groups are YDbDr's Y (`luma`)
    and Db, Dr (`chroma`), computed inside each encoder by a frozen 1x1
    convolution, so both still take raw RGB images, like every encoder.

    Args:
        name: the architecture of both encoders (`ENCODERS`).
        image_size: int or None; defaults to the architecture's own size.
        representation_dim: int, size of each encoder's Y.

    Returns:
        A Functional model, named `<name>_luma_chroma`, whose layers
        `luma_encoder` and `chroma_encoder` are the two encoders and whose
        outputs (`local`, `conv`, `fc`, `y`) concatenate theirs along the
        channels (Y has `2 * representation_dim` units).
    """
    check_choice("encoder", name, ENCODERS)
    image_size = image_size or ENCODER_IMAGE_SIZE[name]
    images = keras.Input(shape=(image_size, image_size, 3), name="images")
    parts = [
        _BUILDERS[name](image_size=image_size,
                        representation_dim=representation_dim,
                        name=f"{group}_encoder", channels=group)
        for group in ("luma", "chroma")
    ]
    features = [part(images) for part in parts]
    outputs = {
        key: layers.Concatenate(name=f"{key}_concat")(
            [f[key] for f in features])
        for key in OUTPUT_KEYS
    }
    return keras.Model(images, outputs, name=f"{name}_luma_chroma")


def channel_group_encoders(encoder):
    """The luminance and colour encoders of a `channel_split_encoder`.

    Args:
        encoder: a model built by `channel_split_encoder` (or loaded).

    Returns:
        `(luma_encoder, chroma_encoder)`, Functional models sharing the
        combined model's layers and weights.

    Raises:
        ValueError: if `encoder` has no such parts.
    """
    names = {layer.name for layer in encoder.layers}
    if not {"luma_encoder", "chroma_encoder"} <= names:
        raise ValueError(
            "Expected an encoder of two channel groups (its layers "
            "'luma_encoder' and 'chroma_encoder'). Received: "
            f"encoder={encoder.name!r}"
        )
    return (encoder.get_layer("luma_encoder"),
            encoder.get_layer("chroma_encoder"))
