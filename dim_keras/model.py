"""`DeepInfoMax`: the encoder, its MI critics and the prior discriminator.

Who updates what (the min-max game of prior matching):

- the encoder and the MI critics (global and local) take one optimizer step
  on `-alpha * I_global - beta * I_local + gamma * L_prior`;
- the prior discriminator takes its own optimizer step on its GAN loss
  (plus the gradient penalty), with Y gradient-stopped.

The loss maths is shared `keras.ops` code (`compute_dim_losses`); only the
gradient and optimizer mechanics live in `dim_keras.backend`.
"""

import keras
from keras import ops

from dim_keras import estimators
from dim_keras import objective
from dim_keras.backend import Trainer
from dim_keras.networks.critics import GlobalCritic
from dim_keras.networks.critics import build_local_critic
from dim_keras.networks.prior import build_prior_discriminator

LOG_KEYS = (
    "loss",
    "global_mi",
    "local_mi",
    "prior_loss",
    "discriminator_loss",
    "gradient_penalty",
)


def reference_optimizer(learning_rate=1e-4):
    """Adam with the reference implementation's settings.

    Args:
        learning_rate: float.

    Returns:
        `keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999)`.
    """
    return keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999)


@keras.saving.register_keras_serializable(package="dim_keras")
class DeepInfoMax(Trainer, keras.Model):
    """Deep InfoMax training model.

    Example:

    ```python
    encoder = dim_keras.networks.basic32x32()
    model = DeepInfoMax(encoder, estimator="nce", alpha=0.0, beta=1.0)
    model.compile()
    model.fit(images_dataset, epochs=10)
    encoder.save("encoder.keras")
    ```

    Args:
        encoder: Functional encoder whose outputs include `"local"` and `"y"`.
        estimator: `"jsd"`, `"dv"` or `"nce"`.
        alpha: weight of global MI, I(X; Y).
        beta: weight of local MI, mean over locations of I(X_j; Y).
        gamma: weight of the adversarial prior matching term.
        local_critic: `"encode_and_dot"` or `"concat_and_convolve"`.
        local_critic_units: width of the local critic; None for its default
            (2048 for encode-and-dot, 512 for concat-and-convolve).
        global_critic_units: width of the global critic's dense layers.
        gradient_penalty: weight of the discriminator's gradient penalty
            (mean squared input-gradient norm on prior and encoded samples).
        seed: int or None, seeds the prior's samples.
        global_negatives: bool. Under a multi-replica strategy, gather the
            features of every replica so that each scores against the whole
            global batch (the loss is then that of one device with the
            global batch). False: negatives come from the replica's share.
        **kwargs: base `keras.Model` arguments.
    """

    def __init__(
        self,
        encoder,
        estimator="jsd",
        alpha=0.0,
        beta=1.0,
        gamma=0.1,
        local_critic="encode_and_dot",
        local_critic_units=None,
        global_critic_units=512,
        gradient_penalty=1.0,
        seed=None,
        global_negatives=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        estimators.check_estimator(estimator)
        objective.check_weights(alpha, beta, gamma)
        if gradient_penalty < 0:
            raise ValueError(
                "gradient_penalty must be non-negative. "
                f"Received: gradient_penalty={gradient_penalty}"
            )
        self.encoder = encoder
        self.estimator = estimator
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.local_critic_name = local_critic
        self.local_critic_units = local_critic_units
        self.global_critic_units = global_critic_units
        self.gradient_penalty = float(gradient_penalty)
        self.seed = seed
        self.global_negatives = bool(global_negatives)
        self.representation_dim = encoder.output["y"].shape[-1]
        self.global_critic = (
            GlobalCritic(units=global_critic_units, name="global_critic")
            if self.alpha > 0
            else None
        )
        self.local_critic = (
            build_local_critic(local_critic, local_critic_units)
            if self.beta > 0
            else None
        )
        self.prior_discriminator = (
            build_prior_discriminator(self.representation_dim)
            if self.gamma > 0
            else None
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {k: keras.metrics.Mean(name=k) for k in LOG_KEYS}
        self.discriminator_optimizer = None

    def call(self, images, training=False):
        return self.encoder(images, training=training)

    def build(self, input_shape):
        """Creates every variable by running the losses once on zeros."""
        images = ops.zeros((2,) + tuple(input_shape[1:]))
        self.compute_dim_losses(images, training=False)
        self.built = True

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def encoder_variables(self):
        """Trainable variables of the encoder and the MI critics."""
        variables = list(self.encoder.trainable_variables)
        for critic in (self.global_critic, self.local_critic):
            if critic is not None:
                variables += critic.trainable_variables
        return variables

    @property
    def discriminator_variables(self):
        """Trainable variables of the prior discriminator."""
        if self.prior_discriminator is None:
            return []
        return list(self.prior_discriminator.trainable_variables)

    def compile(
        self,
        optimizer=None,
        discriminator_optimizer=None,
        jit_compile="auto",
        **kwargs,
    ):
        """Configures training with two optimizers.

        Args:
            optimizer: optimizer of the encoder and MI critics; defaults to
                the reference Adam (lr 1e-4, betas 0.5 / 0.999).
            discriminator_optimizer: optimizer of the prior discriminator;
                same default.
            jit_compile: passed to `keras.Model.compile`.
            **kwargs: other `keras.Model.compile` arguments.
        """
        super().compile(
            optimizer=optimizer or reference_optimizer(),
            jit_compile=jit_compile,
            **kwargs,
        )
        self.discriminator_optimizer = (
            discriminator_optimizer or reference_optimizer()
        )

    def build_optimizers(self):
        """Creates both optimizers' variables for their own networks."""
        if not self.optimizer.built:
            self.optimizer.build(self.encoder_variables)
        if self.gamma > 0 and not self.discriminator_optimizer.built:
            self.discriminator_optimizer.build(self.discriminator_variables)

    def compute_dim_losses(self, images, training=True):
        """Every loss term of one batch, shared by all backends.

        Args:
            images: `[N, H, W, 3]` raw images.
            training: bool, batch-norm mode.

        Returns:
            Dict with `"loss"` (encoder + critics objective),
            `"discriminator_total"` (discriminator objective) and the logged
            terms of `LOG_KEYS`, all float32 scalars.
        """
        outputs = self.encoder(images, training=training)
        local = outputs["local"]
        y = outputs["y"]
        if self.global_negatives:  # Distribution: see `gather_replicas`.
            local = self.gather_replicas(local)
            y = self.gather_replicas(y)
        zero = ops.zeros((), dtype="float32")
        terms = {k: zero for k in LOG_KEYS}
        loss = zero
        if self.global_critic is not None:
            scores = self.global_critic(local, y, training=training)
            terms["global_mi"] = objective.global_mi(scores, self.estimator)
            loss = loss - self.alpha * terms["global_mi"]
        if self.local_critic is not None:
            scores = self.local_critic(local, y, training=training)
            terms["local_mi"] = objective.local_mi(scores, self.estimator)
            loss = loss - self.beta * terms["local_mi"]
        discriminator_total = zero
        if self.prior_discriminator is not None:
            code = ops.sigmoid(ops.cast(y, "float32"))
            terms["prior_loss"] = objective.generator_prior_loss(
                self.prior_discriminator(code, training=training)
            )
            loss = loss + self.gamma * terms["prior_loss"]
            prior_samples = keras.random.uniform(
                ops.shape(code), seed=self.seed_generator
            )
            fake = ops.stop_gradient(code)
            terms["discriminator_loss"] = objective.discriminator_loss(
                self.prior_discriminator(prior_samples, training=training),
                self.prior_discriminator(fake, training=training),
            )
            discriminator_total = terms["discriminator_loss"]
            if self.gradient_penalty > 0:
                samples = ops.concatenate([prior_samples, fake], axis=0)
                terms["gradient_penalty"] = self.input_gradient_penalty(
                    self.prior_discriminator, samples
                )
                discriminator_total = (
                    discriminator_total
                    + self.gradient_penalty * terms["gradient_penalty"]
                )
        terms["loss"] = loss
        terms["discriminator_total"] = discriminator_total
        return terms

    def update_trackers(self, terms):
        """Updates the epoch means and returns the logs of this step."""
        for key, tracker in self.trackers.items():
            tracker.update_state(terms[key])
        return {key: tracker.result() for key, tracker in self.trackers.items()}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "estimator": self.estimator,
                "alpha": self.alpha,
                "beta": self.beta,
                "gamma": self.gamma,
                "local_critic": self.local_critic_name,
                "local_critic_units": self.local_critic_units,
                "global_critic_units": self.global_critic_units,
                "gradient_penalty": self.gradient_penalty,
                "seed": self.seed,
                "global_negatives": self.global_negatives,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(
            config["encoder"]
        )
        return cls(**config)
