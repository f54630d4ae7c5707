"""The baselines an encoder is measured against: the same network with
random weights (raw pixels need no code of their own)."""


def random_encoder(encoder, seed):
    """The same architecture as `encoder`, with freshly initialized weights.

    Args:
        encoder: a Functional encoder.
        seed: int, seeds the initializers.

    Returns:
        A new `keras.Model` (inference-mode batch norm statistics are
        the initial ones: mean 0, variance 1).
    """
    import keras

    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(encoder)
