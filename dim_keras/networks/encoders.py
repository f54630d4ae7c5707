"""The paper's encoders, as Functional models of built-in Keras layers only.

Each encoder takes raw images (pixel values 0-255, uint8 or float, NHWC,
3 channels) and scales them to [-1, 1] itself, so that a saved encoder is fed
images exactly as they are decoded. Its output is a dict:

- `"local"`: the M x M x C local feature map used by local DIM;
- `"conv"`: the last convolutional feature map (probed);
- `"fc"`: the second-to-last dense layer (probed);
- `"y"`: the global representation Y (probed, 64 units by default).

`wave1d` takes raw speech instead: float32 waveforms `[batch, chunk_length,
1]`, its local and conv maps shaped `[batch, T, 1, C]` (see `wave1d`).

Because only built-in layers are used, `encoder.keras` loads with plain
`keras.saving.load_model(path)` (safe mode) where `dim_keras` is absent.
"""

import keras
from keras import layers

from dim_keras.choices import CHANNEL_SPLITS
from dim_keras.choices import ENCODERS
from dim_keras.choices import check_choice


# Image size each architecture was designed for (height = width).
ENCODER_IMAGE_SIZE = {"basic32x32": 32, "basic64x64": 64, "alex64x64": 64}

# Encoders of raw waveforms `[batch, chunk_length, 1]` (not images).
AUDIO_ENCODERS = ("wave1d",)
# (kernel, stride, filters) of wave1d's strided convs, as wav2vec's feature
# encoder (total stride 160: one frame per 10 ms at 16 kHz).
WAVE1D_BLOCKS = ((10, 5, 128), (8, 4, 128), (4, 2, 256), (4, 2, 256),
                 (4, 2, 256))
# The wave1d block whose output is the local map (1-based).
WAVE1D_LOCAL_BLOCK = 4

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
        image_size: int, input height and width (for `AUDIO_ENCODERS`: the
            chunk length in samples).

    Returns:
        str.
    """
    if name in AUDIO_ENCODERS:
        return (
            f"DIM {name} speaker encoder. Input: float32 raw mono waveforms "
            f"[batch, {image_size}, 1] (any scale: each chunk is "
            "standardized inside). Outputs: dict with 'conv', 'fc', 'y' "
            "(representation) and 'local' (local feature map over time, "
            "[batch, T, 1, C])."
        )
    return (
        f"DIM {name} encoder. Input: float or uint8 images "
        f"[batch, {image_size}, {image_size}, 3], pixel values 0-255 "
        "(scaled inside). Outputs: dict with 'conv', 'fc', 'y' "
        "(representation) and 'local' (local feature map)."
    )


def _dcgan_like(image_size, representation_dim, name, channels, filters,
                local_block):
    # 4x4 stride-2 conv blocks of `filters`; the local map is block
    # `local_block`'s output (1-based), conv the last's; dense 1024, then Y.
    images, x = _image_input(image_size, channels)
    maps = []
    for i, width in enumerate(filters, 1):
        x = _conv_block(x, width, 4, 2, f"block{i}")
        maps.append(x)
    local, conv = maps[local_block - 1], maps[-1]
    x = layers.Flatten(name="flatten")(conv)
    fc = _dense_block(x, 1024, "fc1")
    y = layers.Dense(representation_dim, name="y")(fc)
    outputs = {"local": local, "conv": conv, "fc": fc, "y": y}
    return keras.Model(images, outputs, name=name)


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
    return _dcgan_like(image_size, representation_dim, name, channels,
                       (64, 128, 256), local_block=2)


def basic64x64(image_size=64, representation_dim=64, name="basic64x64",
               channels=None):
    """DCGAN-like 64x64 encoder of the reference implementation.

    `basic32x32` with a fourth conv block: conv 64 / 128 / 256 / 512 (4x4,
    stride 2, batch norm, ReLU), dense 1024 (batch norm, ReLU), dense
    `representation_dim` = Y. As in the reference (`local_idx=2`), the
    local map is the output of the third conv block (8 x 8 x 256 at 64 x 64
    input) and the conv map the fourth's (4 x 4 x 512). About a seventh of
    `alex64x64`'s multiply-adds and a sixth of its weights.

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
    return _dcgan_like(image_size, representation_dim, name, channels,
                       (64, 128, 256, 512), local_block=3)


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


def min_chunk_length(name="wave1d"):
    """The fewest samples a chunk of an audio encoder may hold: the
    product of its convs' strides (one frame of its last map).

    Args:
        name: one of `AUDIO_ENCODERS`.

    Returns:
        int (160 for wave1d: 10 ms at 16 kHz).
    """
    check_choice("encoder", name, AUDIO_ENCODERS)
    stride = 1
    for _, s, _ in WAVE1D_BLOCKS:
        stride *= s
    return stride


def wave1d(chunk_length=16000, representation_dim=64, name="wave1d"):
    """Raw-waveform speaker encoder (Ravanelli & Bengio, 2019, in spirit).

    Each chunk is standardized over time (zero mean, unit variance: a
    `LayerNormalization` over the time axis without learned scale or
    offset), then five strided 1-D convs (kernel/stride 10/5, 8/4, 4/2,
    4/2, 4/2 as wav2vec's feature encoder; 128, 128, 256, 256, 256
    filters; batch norm, ReLU) give one frame per 160 samples (10 ms at
    16 kHz). The local map is the fourth conv's output, the conv map the
    fifth's; their mean over time feeds dense 512 (`fc`, batch norm, ReLU)
    and dense `representation_dim` (`y`).

    So that the image critics apply unchanged, the local and conv maps are
    returned as `[batch, T, 1, C]` (time as height, width 1): at 16000
    samples, local is `[batch, 200, 1, 256]` and conv `[batch, 100, 1,
    256]`.

    Args:
        chunk_length: int, samples per input chunk (at least 160).
        representation_dim: int, size of Y.
        name: str, model name.

    Returns:
        A Functional `keras.Model` from float32 `[batch, chunk_length, 1]`
        to a dict with outputs `local`, `conv`, `fc`, `y`.

    Raises:
        ValueError: for a chunk shorter than the convs' total stride.
    """
    stride = min_chunk_length("wave1d")
    if chunk_length is None or int(chunk_length) < stride:
        raise ValueError(
            f"wave1d needs chunks of at least {stride} samples. "
            f"Received: chunk_length={chunk_length}"
        )
    waves = keras.Input(shape=(int(chunk_length), 1), name="waveforms")
    # Over (time, channel): the one channel makes it the time axis, and
    # the normalized axes are the last ones, which PyTorch's layer norm
    # needs (axis=1 alone fails there).
    x = layers.LayerNormalization(axis=(1, 2), center=False, scale=False,
                                  name="standardize")(waves)
    maps = []
    for i, (kernel, strides, filters) in enumerate(WAVE1D_BLOCKS, 1):
        x = layers.Conv1D(filters, kernel, strides=strides, padding="same",
                          use_bias=False, name=f"block{i}_conv")(x)
        x = layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = layers.ReLU(name=f"block{i}_relu")(x)
        maps.append(x)
    local, conv = maps[WAVE1D_LOCAL_BLOCK - 1], maps[-1]
    x = layers.GlobalAveragePooling1D(name="pool")(conv)
    fc = _dense_block(x, 512, "fc1")
    y = layers.Dense(representation_dim, name="y")(fc)
    outputs = {
        "local": layers.Reshape((local.shape[1], 1, local.shape[2]),
                                name="local_map")(local),
        "conv": layers.Reshape((conv.shape[1], 1, conv.shape[2]),
                               name="conv_map")(conv),
        "fc": fc,
        "y": y,
    }
    return keras.Model(waves, outputs, name=name)


_BUILDERS = {"basic32x32": basic32x32, "basic64x64": basic64x64,
             "alex64x64": alex64x64}


def build_encoder(name, image_size=None, representation_dim=64,
                  channel_split="none", chunk_length=None):
    """Builds an encoder by name.

    Args:
        name: one of `ENCODERS` (`"basic32x32"`, `"basic64x64"`,
            `"alex64x64"`, `"wave1d"`).
        image_size: int or None; defaults to the architecture's own size
            (images only).
        representation_dim: int, size of Y.
        channel_split: `"none"`, or `"luma-chroma"` for CMC's form (see
            `channel_split_encoder`; images only).
        chunk_length: int, samples per chunk of an audio encoder
            (`AUDIO_ENCODERS`; None: 16000).

    Returns:
        The Functional encoder.

    Raises:
        ValueError: for an unknown name, or a channel split of audio.
    """
    check_choice("encoder", name, ENCODERS)
    check_choice("channel_split", channel_split, CHANNEL_SPLITS)
    if name in AUDIO_ENCODERS:
        if channel_split != "none":
            raise ValueError(
                "channel_split splits image colour channels; audio encoders "
                f"have none. Received: encoder={name!r}, "
                f"channel_split={channel_split!r}"
            )
        return wave1d(chunk_length=chunk_length or 16000,
                      representation_dim=representation_dim)
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
    check_choice("encoder", name, tuple(_BUILDERS), what="image encoder")
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
