"""The compiled `DeepInfoMax` model a `TrainConfig` describes."""

import keras


def describe_encoder(config):
    """The encoder and its local MI predictions, for the run's log line."""
    text = config.encoder
    if config.channel_split != "none":
        text = (f"two {config.encoder} encoders (luminance, colour) "
                "scored against each other")
    if config.scales != "y-local":
        text += f", local MI predictions {config.scales}"
    return text


def describe_critic(config):
    """The local critic and its score transforms, for the run's log line."""
    width = f", {config.critic_units} units" if config.critic_units else ""
    text = (f"{config.local_critic} critic{width}, "
            f"{config.critic_norm} normalization")
    scores = []
    if config.score_temperature not in (None, 1.0):
        scores.append(f"divided by {config.score_temperature:.3g}")
    if config.score_clip:
        scores.append(f"soft-clipped at {config.score_clip:g}")
    if config.score_penalty:
        scores.append(f"penalty {config.score_penalty:g}")
    if scores:
        text += f", scores {', '.join(scores)}"
    return text


def build_model(config, image_size=None, jit_compile=None, num_classes=0,
                chunk_length=None, total_steps=None):
    """Builds and compiles the `DeepInfoMax` model a config describes.

    Call it under the wanted dtype policy and distribution scope.

    Args:
        config: a validated `TrainConfig` with `encoder` set.
        image_size: int, input height and width (None for speech).
        jit_compile: bool or None; None takes `config.jit_compile` (and
            None there: Keras's "auto", XLA on a GPU only).
        num_classes: int, classes of the online probe (0: none; it is
            also off when `config.online_probe` is).
        chunk_length: int, samples per chunk of a speech encoder
            (`AUDIO_ENCODERS`), whose inputs are `[chunk_length, 1]`.
        total_steps: int or None, the optimizer steps of the whole run,
            over which `config.lr_schedule` runs (None: a constant rate).

    Returns:
        A compiled, built `DeepInfoMax` with both optimizers built.
    """
    from dim_keras.learning_rate import learning_rate
    from dim_keras.model import DeepInfoMax
    from dim_keras.model import reference_optimizer
    from dim_keras.networks.encoders import build_encoder

    # The reference's recipe and DIM's single view where still unset.
    config = config.with_recipe().with_scheme()
    encoder = build_encoder(config.encoder, image_size=image_size,
                            channel_split=config.channel_split,
                            chunk_length=chunk_length)
    model = DeepInfoMax(
        encoder,
        estimator=config.estimator,
        alpha=config.alpha,
        beta=config.beta,
        gamma=config.gamma,
        local_critic=config.local_critic,
        local_critic_units=config.critic_units,
        critic_norm=config.critic_norm,
        gradient_penalty=config.gradient_penalty,
        occlusion=config.occlusion,
        seed=config.seed,
        global_negatives=config.global_negatives,
        views=config.views,
        score_temperature=config.score_temperature,
        score_clip=config.score_clip,
        score_penalty=config.score_penalty,
        scales=config.scales,
        channel_split=config.channel_split,
        online_probe_classes=int(num_classes or 0) if config.online_probe
        else 0,
    )
    if jit_compile is None:
        jit_compile = config.jit_compile
    rate = learning_rate(config.lr, config.lr_schedule, total_steps)
    optimizers = [reference_optimizer(rate) for _ in range(2)]
    if config.precision == "mixed_float16":
        # float16 gradients underflow without dynamic loss scaling.
        optimizers = [keras.optimizers.LossScaleOptimizer(o) for o in optimizers]
    model.compile(
        optimizer=optimizers[0],
        discriminator_optimizer=optimizers[1],
        jit_compile="auto" if jit_compile is None else jit_compile,
    )
    view = tuple(encoder.input.shape[1:])  # (H, W, 3), or (samples, 1)
    model.build((None,) + model.view_scheme.batch_shape(view))
    model.build_optimizers()
    return model
