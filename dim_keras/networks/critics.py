"""Critics T(x, y) that score pairs of (local or global) features and Y.

Every critic returns the full score matrix for a batch: a positive pair is
an image with its own Y, a negative pair an image with another image's Y.

- `EncodeAndDotCritic` (local, the reference default): a 1x1-conv network
  with a linear shortcut embeds every location of the local map and,
  separately, Y; scores are dot products of every Y with every location.
  Returns `[N, L, N]` (image of the location, location, image of Y).
- `ConcatAndConvolveCritic` (local): Y is tiled over the map, concatenated to
  it and scored by 1x1 convs. The first 1x1 conv of a concatenation is the
  sum of one applied to each part, so all N x N pairings are formed by
  broadcasting without tiling N copies of the map. Returns `[N, L, N]`.
- `GlobalCritic`: convs on the local map, flatten, concatenate Y, dense
  layers; the first dense layer is split the same way. Returns `[N, N]`.
"""

import keras
from keras import layers
from keras import ops

from dim_keras.choices import CRITIC_NORMS
from dim_keras.choices import LOCAL_CRITICS as LOCAL_CRITIC_NAMES
from dim_keras.choices import check_choice
from dim_keras.networks.normalization import linear_batch_norm_relu
from dim_keras.networks.normalization import standardize
from dim_keras.networks.normalization import standardized_dot
from dim_keras.recipes import ENCODE_AND_DOT_UNITS


@keras.saving.register_keras_serializable(package="dim_keras")
class MIEmbedding(keras.layers.Layer):
    """Per-location embedding of the encode-and-dot critic.

    `dense(relu(bn(dense(x)))) + linear(x)`, then layer normalization, over
    the last axis (a 1x1 convolution when applied to a feature map). The
    linear shortcut starts as the identity where the sizes allow it, as in
    the reference implementation. Both normalizations run through
    `dim_keras.networks.normalization` (same values, fewer passes over the
    embeddings), with the sublayers' own variables.

    `normalization` chooses which of the two normalizations are used:
    `"batch_layer"` (the reference: batch norm on the hidden layer, layer
    norm on the output), `"layer"` (layer norm only) or `"none"`
    (`dense(relu(dense(x))) + linear(x)`).

    Args:
        units: int, embedding width U.
        normalization: `"batch_layer"`, `"layer"` or `"none"`.
        **kwargs: base layer arguments.
    """

    def __init__(self, units, normalization="batch_layer", **kwargs):
        super().__init__(**kwargs)
        check_choice("critic_norm", normalization, CRITIC_NORMS)
        self.units = units
        self.normalization = normalization
        batch_norm = normalization == "batch_layer"
        self.hidden = layers.Dense(units, use_bias=not batch_norm,
                                   name="hidden")
        self.norm = (layers.BatchNormalization(name="hidden_bn")
                     if batch_norm else None)
        self.out = layers.Dense(units, name="out")
        self.layer_norm = (layers.LayerNormalization(name="layer_norm")
                           if normalization != "none" else None)
        self.shortcut = None

    def build(self, input_shape):
        channels = input_shape[-1]
        initializer = (
            keras.initializers.Identity()
            if self.units >= channels
            else "glorot_uniform"
        )
        self.shortcut = layers.Dense(
            self.units,
            use_bias=False,
            kernel_initializer=initializer,
            name="shortcut",
        )
        # The sublayers work on rows [M, C]; `call` flattens any leading
        # axes into M, so a feature map is embedded by 2-D matmuls.
        self.hidden.build((None, channels))
        if self.norm is not None:
            self.norm.build((None, self.units))
        self.out.build((None, self.units))
        if self.layer_norm is not None:
            self.layer_norm.build((None, self.units))
        self.shortcut.build((None, channels))

    def call(self, x, training=None):
        shape = ops.shape(x)
        rows = ops.reshape(x, (-1, shape[-1]))
        out = self.embed_unnormalized(rows, training=training)
        if self.layer_norm is not None:
            standardized = standardize(out, self.layer_norm.epsilon)
            out = ops.cast(
                standardized * ops.cast(self.layer_norm.gamma, "float32")
                + ops.cast(self.layer_norm.beta, "float32"),
                self.compute_dtype,
            )
        if len(shape) == 2:
            return out
        return ops.reshape(out, tuple(shape[:-1]) + (self.units,))

    def embed_unnormalized(self, rows, training=None):
        """The embedding before its layer norm.

        Args:
            rows: `[M, C]`.
            training: bool, batch-norm mode.

        Returns:
            `[M, U]` rows in the layer's compute dtype.
        """
        if self.norm is None:
            h = ops.relu(self.hidden(rows))
        elif self.norm.synchronized:
            # Statistics all-reduced across replicas: the layer does that.
            h = ops.relu(self.norm(self.hidden(rows), training=training))
        else:
            h = linear_batch_norm_relu(
                rows, self.hidden, self.norm, training=training
            )
        return self.out(h) + self.shortcut(rows)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units,
                       "normalization": self.normalization})
        return config


@keras.saving.register_keras_serializable(package="dim_keras")
class EncodeAndDotCritic(keras.layers.Layer):
    """Local critic: dot products of embedded locations and embedded Y.

    Args:
        units: int, embedding width U (2048 in the reference).
        normalization: `"batch_layer"` (the reference), `"layer"` or
            `"none"`: the normalizations of both embeddings (`MIEmbedding`).
        **kwargs: base layer arguments.

    Call arguments:
        local: `[N, H, W, C]` local feature map.
        y: `[N, D]` global representation.

    Returns:
        Scores `[N, H*W, N]`: `scores[i, l, j] = T(local_i[l], y_j)`.
    """

    def __init__(self, units=ENCODE_AND_DOT_UNITS, normalization="batch_layer",
                 **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.normalization = normalization
        self.local_embedding = MIEmbedding(units, normalization,
                                           name="local_embedding")
        self.global_embedding = MIEmbedding(units, normalization,
                                            name="global_embedding")

    def build(self, local_shape, y_shape):
        self.local_embedding.build(local_shape)
        self.global_embedding.build(y_shape)

    def call(self, local, y, training=None):
        n = ops.shape(local)[0]
        # Every location is a row: the 1x1 convs are plain 2-D matmuls on
        # [N*L, C], and the scores one [N*L, U] x [U, N] matmul whose
        # gradients are plain matmuls too (a batched einsum here would
        # broadcast Y over the batch and reduce its gradient afterwards).
        local = ops.reshape(local, (-1, ops.shape(local)[-1]))
        local = self.local_embedding.embed_unnormalized(
            local, training=training
        )
        y = self.global_embedding(y, training=training)
        norm = self.local_embedding.layer_norm
        if norm is None:
            return ops.reshape(ops.matmul(local, ops.transpose(y)),
                               (n, -1, n))
        # The local layer norm's scale and offset move to Y's side:
        # (x_hat * g + b) . y = x_hat . (g * y) + b . y, an [N, U] product
        # instead of two passes over the [N*L, U] embeddings; its
        # standardization's row scale goes to the [N*L, N] scores.
        scale = ops.cast(norm.gamma, y.dtype)
        offset = ops.cast(norm.beta, y.dtype)
        scores = standardized_dot(local, y * scale, norm.epsilon)
        scores = scores + ops.matmul(offset[None, :], ops.transpose(y))
        return ops.reshape(scores, (n, -1, n))

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units,
                       "normalization": self.normalization})
        return config


@keras.saving.register_keras_serializable(package="dim_keras")
class ConcatAndConvolveCritic(keras.layers.Layer):
    """Local critic: Y tiled over the map, concatenated, 1x1 convs.

    Memory grows as N^2 * H * W * units: meant for small batches.

    Args:
        units: int, width of the two hidden 1x1 convs (512 in the paper).
        **kwargs: base layer arguments.

    Call arguments:
        local: `[N, H, W, C]` local feature map.
        y: `[N, D]` global representation.

    Returns:
        Scores `[N, H*W, N]`: `scores[i, l, j] = T(local_i[l], y_j)`.
    """

    def __init__(self, units=512, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.local_in = layers.Dense(units, name="local_in")
        self.y_in = layers.Dense(units, use_bias=False, name="y_in")
        self.hidden = layers.Dense(units, activation="relu", name="hidden")
        self.score = layers.Dense(1, name="score")

    def build(self, local_shape, y_shape):
        self.local_in.build(local_shape)
        self.y_in.build(y_shape)
        self.hidden.build((None, self.units))
        self.score.build((None, self.units))

    def call(self, local, y, training=None):
        n = ops.shape(local)[0]
        a = ops.reshape(self.local_in(local), (n, -1, 1, self.units))
        b = ops.reshape(self.y_in(y), (1, 1, n, self.units))
        h = self.hidden(ops.relu(a + b))  # [N, L, N, units]
        return ops.squeeze(self.score(h), axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config


@keras.saving.register_keras_serializable(package="dim_keras")
class GlobalCritic(keras.layers.Layer):
    """Global critic: convs on the local map, flatten, concat Y, dense.

    Args:
        units: int, width of the two hidden dense layers (512).
        conv_filters: tuple of ints, filters of the 3x3 convs on the map.
        **kwargs: base layer arguments.

    Call arguments:
        local: `[N, H, W, C]` local feature map.
        y: `[N, D]` global representation.

    Returns:
        Scores `[N, N]`: `scores[i, j] = T(local_i, y_j)`.
    """

    def __init__(self, units=512, conv_filters=(64, 32), **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.conv_filters = tuple(conv_filters)
        self.convs = [
            layers.Conv2D(f, 3, activation="relu", name=f"conv{i + 1}")
            for i, f in enumerate(self.conv_filters)
        ]
        self.flatten = layers.Flatten(name="flatten")
        self.features_in = layers.Dense(units, name="features_in")
        self.y_in = layers.Dense(units, use_bias=False, name="y_in")
        self.hidden = layers.Dense(units, activation="relu", name="hidden")
        self.score = layers.Dense(1, name="score")

    def build(self, local_shape, y_shape):
        shape = tuple(local_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        flat = 1
        for dim in shape[1:]:
            flat *= dim
        self.features_in.build((None, flat))
        self.y_in.build(y_shape)
        self.hidden.build((None, self.units))
        self.score.build((None, self.units))

    def call(self, local, y, training=None):
        h = local
        for conv in self.convs:
            h = conv(h)
        a = self.features_in(self.flatten(h))  # [N, units]
        b = self.y_in(y)  # [N, units]
        h = ops.relu(a[:, None, :] + b[None, :, :])  # [N, N, units]
        return ops.squeeze(self.score(self.hidden(h)), axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"units": self.units, "conv_filters": list(self.conv_filters)}
        )
        return config


LOCAL_CRITICS = {
    "encode_and_dot": EncodeAndDotCritic,
    "concat_and_convolve": ConcatAndConvolveCritic,
}


def build_local_critic(name, units=None, normalization="batch_layer",
                       layer_name="local_critic"):
    """Builds a local critic by name.

    Args:
        name: `"encode_and_dot"` or `"concat_and_convolve"`.
        units: int or None; None takes the critic's default width.
        normalization: the encode-and-dot critic's normalizations
            (`"batch_layer"`, `"layer"` or `"none"`); the
            concat-and-convolve critic has none and takes only
            `"batch_layer"`, the default.
        layer_name: str, the layer's name.

    Returns:
        The critic layer.

    Raises:
        ValueError: for an unknown name or normalization, or one the
            critic does not have.
    """
    check_choice("local_critic", name, LOCAL_CRITIC_NAMES)
    check_choice("critic_norm", normalization, CRITIC_NORMS)
    kwargs = {"units": units} if units else {}
    if name == "encode_and_dot":
        kwargs["normalization"] = normalization
    elif normalization != "batch_layer":
        raise ValueError(
            "critic_norm applies to the encode_and_dot critic only. "
            f"Received: local_critic={name!r}, critic_norm={normalization!r}"
        )
    return LOCAL_CRITICS[name](name=layer_name, **kwargs)
