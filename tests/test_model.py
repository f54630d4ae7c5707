"""DeepInfoMax: who updates what, the gradient penalty, and that it learns."""

import keras
import numpy as np
import pytest
from keras import ops

from dim_keras import DeepInfoMax
from dim_keras import networks
from dim_keras.data import get_dataset


def make_model(**kwargs):
    settings = dict(
        estimator="jsd", alpha=0.5, beta=1.0, gamma=0.1, local_critic_units=16
    )
    settings.update(kwargs)
    compile_args = settings.pop("compile", {})
    model = DeepInfoMax(networks.basic32x32(), seed=0, **settings)
    model.compile(jit_compile=False, **compile_args)
    model.build((None, 32, 32, 3))
    model.build_optimizers()
    return model


def weights(variables):
    return [ops.convert_to_numpy(v).copy() for v in variables]


def changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_gradient_penalty_of_a_linear_discriminator_is_its_squared_norm():
    model = make_model()
    linear = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    w = np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    linear.layers[0].kernel.assign(w)
    samples = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    penalty = model.input_gradient_penalty(linear, ops.convert_to_tensor(samples))
    assert float(ops.convert_to_numpy(penalty)) == pytest.approx(5.25, rel=1e-6)


def test_each_optimizer_updates_only_its_own_networks():
    model = make_model(
        compile=dict(
            discriminator_optimizer=keras.optimizers.Adam(learning_rate=0.0)
        )
    )
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3))
    images = images.astype("float32")
    encoder_before = weights(model.encoder_variables)
    critic_before = weights(model.local_critic.trainable_variables)
    disc_before = weights(model.discriminator_variables)
    model.train_on_batch(images)
    assert changed(encoder_before, weights(model.encoder_variables))
    assert changed(critic_before, weights(model.local_critic.trainable_variables))
    # The encoder's loss flows through the discriminator, but only the
    # discriminator's own optimizer (learning rate 0 here) may move it.
    assert not changed(disc_before, weights(model.discriminator_variables))


def test_discriminator_trains_on_its_own_loss():
    model = make_model()
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3))
    before = weights(model.discriminator_variables)
    model.train_on_batch(images.astype("float32"))
    assert changed(before, weights(model.discriminator_variables))


def test_unused_networks_are_not_built():
    model = make_model(alpha=0.0, gamma=0.0)
    assert model.global_critic is None and model.prior_discriminator is None
    assert model.discriminator_variables == []


@pytest.mark.parametrize("estimator", ["jsd", "nce"])
def test_short_training_lowers_the_loss_on_real_data(estimator):
    keras.utils.set_random_seed(0)
    images = get_dataset("digits").training_images()[:256]
    model = make_model(estimator=estimator, gamma=0.0)
    batch = images[:32].astype("float32")

    def objective():
        # Batch statistics (training=True): after 24 steps the moving
        # averages of inference mode still lag far behind the weights.
        return float(
            ops.convert_to_numpy(model.compute_dim_losses(batch, True)["loss"])
        )

    before = objective()
    model.fit(images, batch_size=32, epochs=3, verbose=0, shuffle=True)
    after = objective()
    assert after < before - 0.1 * abs(before)


def test_config_round_trip_lists_every_argument():
    model = make_model(estimator="dv", alpha=1.0, beta=0.0, gamma=1.0)
    restored = DeepInfoMax.from_config(model.get_config())
    for name in (
        "estimator", "alpha", "beta", "gamma", "local_critic_units",
        "global_critic_units", "gradient_penalty", "seed",
    ):
        assert getattr(restored, name) == getattr(model, name), name
    assert restored.encoder.name == model.encoder.name
