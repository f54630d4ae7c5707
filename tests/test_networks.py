"""Encoders, critics and the prior discriminator: shapes and maths."""

import numpy as np
import pytest
from keras import ops

from dim_keras import networks

# Every test here depends on the Keras backend: CI runs them on each.
pytestmark = pytest.mark.backend


def numpy(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize(
    "name, size, shapes",
    [
        (
            "basic32x32",
            32,
            {"local": (8, 8, 128), "conv": (4, 4, 256), "fc": (1024,), "y": (64,)},
        ),
        (
            "basic64x64",
            64,
            {"local": (8, 8, 256), "conv": (4, 4, 512), "fc": (1024,), "y": (64,)},
        ),
        (
            "alex64x64",
            64,
            {"local": (15, 15, 384), "conv": (7, 7, 192), "fc": (4096,), "y": (64,)},
        ),
    ],
)
def test_encoder_output_shapes(name, size, shapes):
    encoder = networks.build_encoder(name)
    images = np.random.default_rng(0).integers(0, 256, (2, size, size, 3))
    outputs = encoder(images.astype("uint8"))
    assert set(outputs) == {"local", "conv", "fc", "y"}
    for key, shape in shapes.items():
        assert tuple(outputs[key].shape) == (2,) + shape


def test_encoder_scales_raw_pixels_itself():
    encoder = networks.basic32x32()
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3))
    as_uint8 = numpy(encoder(images.astype("uint8"))["y"])
    as_float = numpy(encoder(images.astype("float32"))["y"])
    np.testing.assert_allclose(as_uint8, as_float, atol=1e-6)
    scale = encoder.get_layer("scale")
    np.testing.assert_allclose(
        numpy(scale(np.array([0.0, 255.0]))), [-1.0, 1.0], atol=1e-6
    )


def test_wave1d_maps_waveforms_to_time_maps_of_width_one():
    # Total stride 5 * 4 * 2 * 2 = 80 to the local map, 160 to conv.
    encoder = networks.build_encoder("wave1d", chunk_length=800)
    waves = np.random.default_rng(0).normal(size=(2, 800, 1))
    outputs = encoder(waves.astype("float32"))
    shapes = {"local": (10, 1, 256), "conv": (5, 1, 256), "fc": (512,),
              "y": (64,)}
    for key, shape in shapes.items():
        assert tuple(outputs[key].shape) == (2,) + shape


def test_wave1d_standardizes_each_chunk_itself():
    # Standardized over time, a chunk and 3 * chunk + 0.5 are the same input.
    encoder = networks.build_encoder("wave1d", chunk_length=320)
    waves = np.random.default_rng(0).normal(size=(2, 320, 1))
    waves = waves.astype("float32")
    y = numpy(encoder(waves)["y"])
    np.testing.assert_allclose(numpy(encoder(3 * waves + 0.5)["y"]), y,
                               rtol=1e-3, atol=1e-4)


def test_wave1d_refuses_short_chunks_and_channel_splits():
    with pytest.raises(ValueError, match="Received: chunk_length=100"):
        networks.build_encoder("wave1d", chunk_length=100)
    with pytest.raises(ValueError, match="channel_split='luma-chroma'"):
        networks.build_encoder("wave1d", channel_split="luma-chroma")


def test_unknown_encoder_is_refused():
    with pytest.raises(ValueError, match="Received: encoder='vgg'"):
        networks.build_encoder("vgg")


@pytest.mark.parametrize("training", [False, True])
def test_encode_and_dot_scores_are_dot_products_of_embeddings(training):
    critic = networks.EncodeAndDotCritic(units=8)
    rng = np.random.default_rng(0)
    local = rng.normal(size=(3, 2, 2, 5)).astype("float32")
    y = rng.normal(size=(3, 4)).astype("float32")
    critic.build(local.shape, y.shape)
    # Scale and offset away from 1 and 0: the critic moves the local layer
    # norm's onto Y's side of the dot product.
    for embedding in (critic.local_embedding, critic.global_embedding):
        embedding.layer_norm.gamma.assign(rng.uniform(0.5, 2, 8))
        embedding.layer_norm.beta.assign(rng.normal(size=8))
    scores = numpy(critic(local, y, training=training))
    assert scores.shape == (3, 4, 3)
    emb_local = numpy(critic.local_embedding(local, training=training))
    emb_y = numpy(critic.global_embedding(y, training=training))
    # scores[i, l, j] = <local_i[l], y_j>
    expected = np.einsum("ilu,ju->ilj", emb_local.reshape(3, 4, 8), emb_y)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("normalization", ["layer", "none"])
def test_critic_normalizations_compute_what_they_say(normalization):
    critic = networks.EncodeAndDotCritic(units=8, normalization=normalization)
    rng = np.random.default_rng(1)
    local = rng.normal(size=(3, 2, 2, 5)).astype("float32")
    y = rng.normal(size=(3, 4)).astype("float32")
    scores = numpy(critic(local, y, training=True))
    assert critic.local_embedding.norm is None  # no batch norm
    # The embedding by hand: dense(relu(dense(x))) + shortcut(x), then
    # layer norm (gamma 1, beta 0 at the start) where asked for.
    def embed(embedding, x):
        hidden, out = embedding.hidden, embedding.out
        h = relu(x @ numpy(hidden.kernel) + numpy(hidden.bias))
        e = (h @ numpy(out.kernel) + numpy(out.bias)
             + x @ numpy(embedding.shortcut.kernel))
        if normalization == "layer":
            e = (e - e.mean(-1, keepdims=True)) / np.sqrt(
                e.var(-1, keepdims=True) + 1e-3)
        return e

    emb_local = embed(critic.local_embedding, local.reshape(-1, 5))
    emb_y = embed(critic.global_embedding, y)
    expected = (emb_local @ emb_y.T).reshape(3, 4, 3)
    np.testing.assert_allclose(scores, expected, rtol=1e-3, atol=1e-3)


def test_critic_norm_is_checked():
    with pytest.raises(ValueError, match="Received: critic_norm='batch'"):
        networks.EncodeAndDotCritic(units=4, normalization="batch")
    with pytest.raises(ValueError, match="encode_and_dot critic only"):
        networks.build_local_critic("concat_and_convolve", 4, "none")


def test_mi_embedding_shortcut_starts_as_identity():
    embedding = networks.MIEmbedding(6)
    embedding.build((None, 4))
    kernel = numpy(embedding.shortcut.kernel)
    np.testing.assert_allclose(kernel, np.eye(4, 6))


def relu(x):
    return np.maximum(x, 0)


def test_concat_and_convolve_equals_explicit_concatenation():
    critic = networks.ConcatAndConvolveCritic(units=6)
    rng = np.random.default_rng(0)
    local = rng.normal(size=(2, 2, 3, 4)).astype("float32")
    y = rng.normal(size=(2, 5)).astype("float32")
    scores = numpy(critic(local, y))
    assert scores.shape == (2, 6, 2)
    # The paper's form: y_j tiled over the map, concatenated, 1x1 convs.
    w_in = np.concatenate(
        [numpy(critic.local_in.kernel), numpy(critic.y_in.kernel)], axis=0
    )
    b_in = numpy(critic.local_in.bias)
    w_h, b_h = numpy(critic.hidden.kernel), numpy(critic.hidden.bias)
    w_s, b_s = numpy(critic.score.kernel), numpy(critic.score.bias)
    for i in range(2):
        for j in range(2):
            tiled = np.broadcast_to(y[j], (2, 3, 5))
            x = np.concatenate([local[i], tiled], axis=-1).reshape(6, 9)
            h = relu(relu(x @ w_in + b_in) @ w_h + b_h)
            expected = (h @ w_s + b_s)[:, 0]
            np.testing.assert_allclose(scores[i, :, j], expected, rtol=1e-4, atol=1e-4)


def test_global_critic_equals_explicit_concatenation():
    critic = networks.GlobalCritic(units=6, conv_filters=(3,))
    rng = np.random.default_rng(0)
    local = rng.normal(size=(3, 4, 4, 2)).astype("float32")
    y = rng.normal(size=(3, 5)).astype("float32")
    scores = numpy(critic(local, y))
    assert scores.shape == (3, 3)
    features = numpy(critic.flatten(critic.convs[0](local)))
    w_in = np.concatenate(
        [numpy(critic.features_in.kernel), numpy(critic.y_in.kernel)], axis=0
    )
    b_in = numpy(critic.features_in.bias)
    w_h, b_h = numpy(critic.hidden.kernel), numpy(critic.hidden.bias)
    w_s, b_s = numpy(critic.score.kernel), numpy(critic.score.bias)
    for i in range(3):
        for j in range(3):
            x = np.concatenate([features[i], y[j]])
            h = relu(relu(x @ w_in + b_in) @ w_h + b_h)
            assert scores[i, j] == pytest.approx(float((h @ w_s + b_s)[0]), abs=1e-4)


def test_prior_discriminator_shape():
    discriminator = networks.build_prior_discriminator(64)
    assert [l.units for l in discriminator.layers[1:]] == [1000, 200, 1]
    assert numpy(discriminator(np.zeros((5, 64)))).shape == (5, 1)


def test_critic_configs_list_every_argument():
    critic = networks.GlobalCritic(units=7, conv_filters=(4, 2))
    restored = networks.GlobalCritic.from_config(critic.get_config())
    assert restored.units == 7 and restored.conv_filters == (4, 2)
    for cls in (networks.EncodeAndDotCritic, networks.ConcatAndConvolveCritic):
        assert cls.from_config(cls(units=9).get_config()).units == 9
    critic = networks.EncodeAndDotCritic(units=5, normalization="layer")
    restored = networks.EncodeAndDotCritic.from_config(critic.get_config())
    assert restored.normalization == "layer"
