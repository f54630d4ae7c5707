"""Hand FLOP counts against closed forms and TensorFlow's own op count."""

import keras
import numpy as np
import pytest

from dim_keras import flops
from dim_keras.model import DeepInfoMax
from dim_keras.networks.critics import EncodeAndDotCritic
from dim_keras.networks.encoders import build_encoder


def test_conv_and_dense_forward_flops_closed_form():
    conv = keras.layers.Conv2D(4, 3, padding="same")
    # 5x5 outputs x 4 filters x (3*3*2) multiply-adds, 2 FLOPs each.
    assert flops.layer_forward_flops(conv, (5, 5, 2), (5, 5, 4)) == (
        2 * 5 * 5 * 4 * 3 * 3 * 2
    )
    dense = keras.layers.Dense(7)
    assert flops.layer_forward_flops(dense, (3,), (7,)) == 2 * 3 * 7
    assert flops.layer_forward_flops(keras.layers.ReLU(), (3,), (3,)) == 0


def test_encode_and_dot_forward_flops_closed_form():
    critic = EncodeAndDotCritic(units=5)
    n, num_locations, channels, y_dim = 2, 3, 4, 6
    local_rows = n * num_locations * (2 * channels * 5 + 5 * 5)
    y_rows = n * (2 * y_dim * 5 + 5 * 5)
    scores = n * num_locations * n * 5
    expected = 2 * (local_rows + y_rows + scores)
    assert flops.local_critic_flops(
        critic, n, num_locations, channels, y_dim
    ) == expected


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow graph count"
)
@pytest.mark.parametrize("critic", ["encode_and_dot", "concat_and_convolve"])
def test_hand_count_matches_tensorflow_graph(critic):
    import tensorflow as tf

    encoder = build_encoder("basic32x32", image_size=16)
    model = DeepInfoMax(
        encoder, estimator="nce", gamma=0.0, local_critic=critic,
        local_critic_units=8,
    )
    model.compile(jit_compile=False)
    model.build((None, 16, 16, 3))
    model.build_optimizers()
    batch = 4
    step = tf.function(model.train_step).get_concrete_function(
        tf.TensorSpec((batch, 16, 16, 3), tf.uint8)
    )
    graph = flops.graph_matmul_flops(step)
    hand = flops.training_step_flops(model, batch)
    # The traced graph also holds the first conv's input gradient, which
    # TensorFlow prunes before running (nothing consumes it): one forward.
    first = model.encoder.get_layer("block1_conv")
    pruned = batch * flops.layer_forward_flops(
        first, first.input.shape[1:], first.output.shape[1:]
    )
    # It also holds the critic's small statistics products, which the
    # model's count leaves out.
    local = model.encoder.output["local"].shape
    statistics = 3 * flops.critic_statistics_flops(
        model.local_critic, batch, local[1] * local[2], local[3],
        model.representation_dim,
    )
    assert hand["total"] + pruned + statistics == graph["total"]
    assert hand["total"] == hand["encoder"] + hand["local_critic"]


def test_critic_statistics_flops_closed_form():
    critic = EncodeAndDotCritic(units=5)
    n, num_locations, channels, y_dim = 2, 3, 4, 6
    rows = n * num_locations
    expected = (
        2 * (channels * rows * channels + channels * channels * 5
             + channels * 5)
        + 2 * (y_dim * n * y_dim + y_dim * y_dim * 5 + y_dim * 5)
        + 2 * 5 * n
    )
    assert flops.critic_statistics_flops(
        critic, n, num_locations, channels, y_dim
    ) == expected


def test_training_flops_grow_as_n_squared_in_the_score_products():
    model = DeepInfoMax(
        build_encoder("basic32x32", image_size=24), alpha=1.0, beta=0.0,
        gamma=0.0,
    )
    model.build((None, 24, 24, 3))
    small = flops.training_step_flops(model, 4)["global_critic"]
    large = flops.training_step_flops(model, 8)["global_critic"]
    # Per-image parts double, the N x N pair parts quadruple.
    assert 2 * small < large < 4 * small
    assert np.isclose(
        large - 2 * small,
        2 * 3 * (8 * 8 - 2 * 4 * 4) * (512 * 512 + 512),
    )
