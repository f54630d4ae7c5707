"""Prior discriminator of DIM's adversarial prior matching."""

import keras
from keras import layers


def build_prior_discriminator(representation_dim=64, name="prior_discriminator"):
    """Dense 1000 -> ReLU -> 200 -> ReLU -> 1 logit.

    It tells samples of the prior, Uniform[0, 1]^D, from sigmoid(Y).

    Args:
        representation_dim: int, size D of Y.
        name: str, model name.

    Returns:
        A Functional `keras.Model` mapping `[N, D]` to logits `[N, 1]`.
    """
    inputs = keras.Input(shape=(representation_dim,), name="code")
    x = layers.Dense(1000, activation="relu", name="dense1")(inputs)
    x = layers.Dense(200, activation="relu", name="dense2")(x)
    logits = layers.Dense(1, name="logit")(x)
    return keras.Model(inputs, logits, name=name)
