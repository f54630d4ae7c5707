"""`DeepInfoMax`: the encoder, its MI critics and the prior discriminator.

Who updates what (the min-max game of prior matching):

- the encoder and the MI critics (global and local) take one optimizer step
  on `-alpha * I_global - beta * I_local + gamma * L_prior`;
- the prior discriminator takes its own optimizer step on its GAN loss
  (plus the gradient penalty), with Y gradient-stopped.

The loss maths is shared `keras.ops` code (`compute_dim_losses`): how a
batch becomes views is its view scheme's (`dim_keras.view_schemes`), which
critic scores what is `dim_keras.predictions`', the loss terms are
`dim_keras.objective`'s; the discriminator's side and the online probe
are mixins (`dim_keras.prior_matching`, `dim_keras.online_probe`). Only
the gradient and optimizer mechanics live in `dim_keras.backend`.
"""

import keras
from keras import ops

from dim_keras import checks
from dim_keras import estimators
from dim_keras import objective
from dim_keras import online_probe
from dim_keras import symbolic
from dim_keras.backend import Trainer
from dim_keras.backend.common import PROBE_LOSS_KEY
from dim_keras.networks.critics import GlobalCritic
from dim_keras.networks.critics import build_local_critic
from dim_keras.networks.prior import build_prior_discriminator
from dim_keras.online_probe import OnlineProbeMixin
from dim_keras.predictions import cross_view_predictions
from dim_keras.predictions import random_location  # noqa: F401
from dim_keras.prior_matching import PriorMatchingMixin
from dim_keras.view_schemes import occlude  # noqa: F401
from dim_keras.view_schemes import view_scheme

LOG_KEYS = (
    "loss",
    "global_mi",
    "local_mi",
    "prior_loss",
    "discriminator_loss",
    "gradient_penalty",
)
# Logged too when the online probe is on (`PROBE_LOSS_KEY`): its training
# cross-entropy (the sum over the probed layers) on each batch's labelled
# images.


def reference_optimizer(learning_rate=1e-4):
    """Adam with the reference implementation's settings.

    Args:
        learning_rate: float, or a `keras.optimizers.schedules`
            schedule (`dim_keras.learning_rate`).

    Returns:
        `keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999)`.
    """
    return keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999)


@keras.saving.register_keras_serializable(package="dim_keras")
class DeepInfoMax(PriorMatchingMixin, OnlineProbeMixin, Trainer,
                  keras.Model):
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
        critic_norm: normalizations of the encode-and-dot critic:
            `"batch_layer"` (the reference), `"layer"` or `"none"`.
        global_critic_units: width of the global critic's dense layers.
        gradient_penalty: weight of the discriminator's gradient penalty
            (mean squared input-gradient norm on prior and encoded samples).
        occlusion: bool; in training, Y is computed from the images with a
            random square block (half the image side) set to mid-grey,
            while the local features come from the clean images ("DIM +
            occlusion"). Runs the encoder twice per step.
        seed: int or None, seeds the prior's samples and the occlusion.
        global_negatives: bool. Under a multi-replica strategy, gather the
            features of every replica so that each scores against the whole
            global batch (the loss is then that of one device with the
            global batch). False: negatives come from the replica's share.
        views: 1 (DIM), or 2 (multi-view DIM, as AMDIM): the model takes
            `[N, 2, H, W, 3]` batches, two views of each image, and scores
            each view's local map against the other view's Y (both
            directions, averaged), the batch's other images being the
            negatives.
        score_temperature: float > 0; every critic score is divided by
            it before the penalty, the clipping and the estimator.
            AMDIM divides its dot products by the square root of the
            embedding width (about 22.6 for a 512-unit critic). 1 leaves
            the scores as they are.
        score_clip: float; soft-clip every critic score to
            `clip * tanh(score / clip)` before the estimator (AMDIM: 20).
            0 turns it off.
        score_penalty: float, weight of `mean(score ** 2)` of the raw
            critic scores in the loss (AMDIM: 0.05). 0 turns it off.
        scales: the predictions of local MI, a comma-separated string or
            sequence of `"y-local"` (Y against the local map: DIM's),
            `"y-conv"` (Y against the coarser map of the last conv
            layer) and `"local-local"` (one random location of a view's
            local map against every location of the other view's map;
            needs two views). Each prediction has its own local critic;
            `local_mi` is their mean (AMDIM's 1-to-5, 1-to-7 and 5-to-5).
        channel_split: `"none"`, or `"luma-chroma"` (CMC's form): `encoder`
            is a `dim_keras.networks.channel_split_encoder`, whose two
            encoders see the luminance and the colour of each image; each
            one's local map is scored against the other's Y (both
            directions, averaged), and prior matching sees the combined Y.
        online_probe_classes: int; above 0, linear classifiers of that
            many classes (`online_probe_y`, `online_probe_conv`) learn
            from the gradient-stopped Y and conv of each training batch's
            labelled images (label -1: unlabelled) with their own
            optimizer, leaving the encoder's update unchanged (the online
            probe of solo-learn). 0 is off.
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
        critic_norm="batch_layer",
        global_critic_units=512,
        gradient_penalty=1.0,
        occlusion=False,
        seed=None,
        global_negatives=False,
        views=1,
        score_temperature=1.0,
        score_clip=0.0,
        score_penalty=0.0,
        scales="y-local",
        channel_split="none",
        online_probe_classes=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not (isinstance(online_probe_classes, int)
                and online_probe_classes >= 0):
            raise ValueError(
                "online_probe_classes must be a number of classes (0 is "
                f"off). Received: online_probe_classes={online_probe_classes!r}"
            )
        checks.check_views(views)  # set: a model has no unset settings
        scales = checks.check_view_scheme(views, occlusion, channel_split,
                                          scales)
        checks.check_score_temperature(score_temperature)
        checks.check_non_negative("score_clip", score_clip, "0 is off")
        checks.check_non_negative("score_penalty", score_penalty, "0 is off")
        estimators.check_estimator(estimator)
        checks.check_weights(alpha, beta, gamma)
        checks.check_non_negative("gradient_penalty", gradient_penalty)
        self.encoder = encoder
        self.estimator = estimator
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.local_critic_name = local_critic
        self.local_critic_units = local_critic_units
        self.critic_norm = critic_norm
        self.global_critic_units = global_critic_units
        self.gradient_penalty = float(gradient_penalty)
        self.occlusion = bool(occlusion)
        self.seed = seed
        self.global_negatives = bool(global_negatives)
        self.views = int(views)
        self.score_temperature = float(score_temperature)
        self.score_clip = float(score_clip)
        self.score_penalty = float(score_penalty)
        self.scales = scales
        self.channel_split = channel_split
        # How a batch becomes views (checks a channel split's encoder).
        self.view_scheme = view_scheme(encoder, views, occlusion,
                                       channel_split)
        self.representation_dim = encoder.output["y"].shape[-1]
        self.global_critic = (
            GlobalCritic(units=global_critic_units, name="global_critic")
            if self.alpha > 0
            else None
        )
        # One local critic per prediction (the DIM one keeps its name).
        self.local_critic, self.conv_critic, self.location_critic = (
            build_local_critic(local_critic, local_critic_units, critic_norm,
                               layer_name=layer_name)
            if self.beta > 0 and scale in scales
            else None
            for scale, layer_name in (("y-local", "local_critic"),
                                      ("y-conv", "conv_critic"),
                                      ("local-local", "location_critic"))
        )
        self.prior_discriminator = (
            build_prior_discriminator(self.representation_dim)
            if self.gamma > 0
            else None
        )
        self.online_probe_classes = online_probe_classes
        self.online_probe_y, self.online_probe_conv = (
            online_probe.probe_heads(online_probe_classes))
        self.seed_generator = keras.random.SeedGenerator(seed)
        keys = LOG_KEYS + ((PROBE_LOSS_KEY,) if online_probe_classes else ())
        self.trackers = {k: keras.metrics.Mean(name=k) for k in keys}
        self.discriminator_optimizer = None
        self.probe_optimizer = None

    def call(self, images, training=False):
        return self.encoder(images, training=training)

    def build(self, input_shape):
        """Creates every variable by tracing the losses symbolically once.

        Shapes only, no arithmetic: on JAX an eager first run would compile
        every operation one by one.

        Args:
            input_shape: the batch shape, `(N,) + view` or, with `views=2`,
                `(N, 2) + view`, a view being the encoder's input shape
                (`(H, W, 3)` images, `(samples, 1)` speech); with `views=2`
                the shape of one view is also taken.
        """
        shape = self.view_scheme.batch_shape(input_shape[1:])
        symbolic.trace(
            lambda images: self.compute_dim_losses(images, training=False),
            (2,) + shape, name="dim_losses")
        self.build_online_probe(self.view_scheme.encoders)
        self.built = True
        if getattr(self, "discriminator_optimizer", None) is not None:
            # Compiled before built: give each optimizer its own variables
            # now (`fit` would build `optimizer` for every variable).
            self.build_optimizers()

    @property
    def channel_encoders(self):
        """The luminance and colour encoders of a channel split, or None.

        Looked up in `encoder` (not tracked twice as attributes).
        """
        return self.view_scheme.channel_encoders

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def encoder_variables(self):
        """Trainable variables of the encoder and the MI critics."""
        variables = list(self.encoder.trainable_variables)
        for critic in (self.global_critic, self.local_critic,
                       self.conv_critic, self.location_critic):
            if critic is not None:
                variables += critic.trainable_variables
        return variables

    def compile(
        self,
        optimizer=None,
        discriminator_optimizer=None,
        jit_compile="auto",
        probe_optimizer=None,
        **kwargs,
    ):
        """Configures training with two optimizers (three with the probe).

        Args:
            optimizer: optimizer of the encoder and MI critics; defaults to
                the reference Adam (lr 1e-4, betas 0.5 / 0.999).
            discriminator_optimizer: optimizer of the prior discriminator;
                same default.
            probe_optimizer: optimizer of the online probe's heads;
                defaults to `online_probe.probe_optimizer()` (Adam, lr
                `ONLINE_PROBE_LR`, with a moving average of the weights).
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
        self.probe_optimizer = None
        if self.online_probe_classes:
            self.probe_optimizer = (
                probe_optimizer or online_probe.probe_optimizer()
            )
        if self.built:
            self.build_optimizers()

    def build_optimizers(self):
        """Creates both optimizers' variables for their own networks."""
        if not self.optimizer.built:
            self.optimizer.build(self.encoder_variables)
        if self.gamma > 0 and not self.discriminator_optimizer.built:
            self.discriminator_optimizer.build(self.discriminator_variables)
        if self.probe_optimizer is not None and not self.probe_optimizer.built:
            self.probe_optimizer.build(self.probe_variables)

    def compute_dim_losses(self, images, training=True, prior_samples=None,
                           labels=None, probe_images=None):
        """Every loss term of one batch, shared by all backends.

        The encoder side and the discriminator side are computed by
        `compute_encoder_losses` and `compute_discriminator_losses`; a
        backend that needs them apart (JAX's stateless step) calls them
        itself.

        Args:
            images: `[N, H, W, 3]` raw images.
            training: bool, batch-norm mode.
            prior_samples: `[N, D]` samples of the prior, or None to draw
                them from Uniform[0, 1]^D with the model's seed generator.
            labels: `[N]` int class ids (-1: unlabelled), or None; with
                the online probe on, its loss is `PROBE_LOSS_KEY`.
            probe_images: `[N, H, W, 3]` the same images un-augmented, or
                None (see `compute_encoder_losses`).

        Returns:
            Dict with `"loss"` (encoder + critics objective),
            `"discriminator_total"` (discriminator objective), the logged
            terms of `LOG_KEYS` and, with the online probe on,
            `PROBE_LOSS_KEY` (zero without labels), all float32 scalars.
        """
        terms, code, features = self.compute_encoder_losses(
            images, training=training, return_features=True,
            probe_images=probe_images)
        if self.online_probe_classes:
            terms.update(self.compute_probe_losses(features, labels))
        if code is not None:
            code = ops.stop_gradient(code)
        terms.update(self.compute_discriminator_losses(
            code, training=training, prior_samples=prior_samples))
        return terms

    def compute_encoder_losses(self, images, training=True,
                               return_features=False, probe_images=None):
        """The objective of the encoder and the MI critics.

        Args:
            images: `[N, H, W, 3]` raw images; with `views=2`,
                `[N, 2, H, W, 3]`, two views of each image.
            training: bool, batch-norm mode.
            return_features: bool, also return what the online probe
                reads.
            probe_images: `[N, H, W, 3]` the same images un-augmented, or
                None. Given, the online probe reads their features
                (`ViewScheme.probe_views`: the clean images it is scored
                on, in the batch-norm mode it is scored in) instead of the
                first view's; the encoder's objective is the same either
                way.

        Returns:
            `(terms, code)`: `terms` holds `"loss"`, `"global_mi"`,
            `"local_mi"` and `"prior_loss"` (float32 scalars); `code` is
            sigmoid(Y), `[N, D]` float32 (the discriminator's fake samples,
            or None when `gamma` is 0). With `return_features`, `(terms,
            code, features)`: `features` maps `"y"` and `"conv"` to the
            first view's (or both encoders' side by side) gradient-stopped
            float32 `[N, width]`, or is `{}` with the online probe off.
        """
        views = self.view_scheme.encode(images, self._encoded_keys,
                                        training, self.seed_generator)
        features = {}
        if self.online_probe_classes:
            probed = (
                self.view_scheme.probed(views) if probe_images is None
                else self.view_scheme.probe_views(
                    probe_images, online_probe.PROBED_ONLINE))
            features = online_probe.probe_features(probed)
        if self.global_negatives:  # Distribution: see `gather_replicas`.
            views = [{k: self.gather_replicas(x) for k, x in view.items()}
                     for view in views]
        predictions = cross_view_predictions(
            self.view_scheme.pairs(views), self.global_critic,
            self.local_critic, self.conv_critic, self.location_critic,
            seed=self.seed_generator)
        scores = {key: [critic(source, target, training=training)
                        for critic, source, target in triples]
                  for key, triples in predictions.items()}
        estimates, loss = objective.mi_loss(
            scores, {"global_mi": self.alpha, "local_mi": self.beta},
            self.estimator, self.score_temperature, self.score_clip,
            self.score_penalty)
        zero = ops.zeros((), dtype="float32")
        terms = {"global_mi": zero, "local_mi": zero, "prior_loss": zero}
        terms.update(estimates)
        code = None
        if self.prior_discriminator is not None:
            code = ops.sigmoid(
                ops.cast(self.view_scheme.prior_y(views), "float32"))
            terms["prior_loss"] = objective.generator_prior_loss(
                self.prior_discriminator(code, training=training))
            loss = loss + self.gamma * terms["prior_loss"]
        terms["loss"] = loss
        if return_features:
            return terms, code, features
        return terms, code

    @property
    def _encoded_keys(self):
        """The encoder outputs each view keeps."""
        if self.conv_critic is not None or self.online_probe_classes:
            return ("local", "conv", "y")
        return ("local", "y")

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
                "critic_norm": self.critic_norm,
                "global_critic_units": self.global_critic_units,
                "gradient_penalty": self.gradient_penalty,
                "occlusion": self.occlusion,
                "seed": self.seed,
                "global_negatives": self.global_negatives,
                "views": self.views,
                "score_temperature": self.score_temperature,
                "score_clip": self.score_clip,
                "score_penalty": self.score_penalty,
                "scales": ",".join(self.scales),
                "channel_split": self.channel_split,
                "online_probe_classes": self.online_probe_classes,
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
