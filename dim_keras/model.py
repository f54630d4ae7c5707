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
from dim_keras.backend.common import PROBE_LOSS_KEY
from dim_keras.choices import CHANNEL_SPLITS
from dim_keras.choices import check_choice
from dim_keras.choices import check_score_temperature
from dim_keras.choices import parse_scales
from dim_keras.networks.critics import GlobalCritic
from dim_keras.networks.critics import build_local_critic
from dim_keras.networks.encoders import channel_group_encoders
from dim_keras.networks.online_probe import OnlineProbeHead
from dim_keras.networks.prior import build_prior_discriminator

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
# The layers the online probe reads, and the names of its heads.
PROBED_ONLINE = ("y", "conv")
# The online probe's default optimizer: Adam at this learning rate (its
# heads standardize and scale their inputs so that it suits every width:
# `dim_keras.networks.online_probe`).
ONLINE_PROBE_LR = 1e-2


class _SymbolicDIMLosses(keras.Operation):
    """`model.compute_dim_losses` as an operation, to trace it symbolically.

    Calling a `keras.Operation` on `KerasTensor`s infers its outputs'
    shapes by tracing `call` without arithmetic (Keras's public route to
    its `compute_output_spec`), which creates every variable on the way.
    """

    def __init__(self, model):
        super().__init__(name="dim_losses")
        self.model = model

    def call(self, images):
        return self.model.compute_dim_losses(images, training=False)


def reference_optimizer(learning_rate=1e-4):
    """Adam with the reference implementation's settings.

    Args:
        learning_rate: float.

    Returns:
        `keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999)`.
    """
    return keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999)


def random_location(feature_map, seed):
    """One location of each image's feature map, drawn at random.

    AMDIM's 5-to-5 prediction scores one feature of a view's map against
    every feature of the other view's map; the location is drawn
    independently for every image.

    Args:
        feature_map: `[N, H, W, C]`.
        seed: a `keras.random.SeedGenerator` or int seed.

    Returns:
        `[N, C]`: `feature_map[i, h_i, w_i]` for random `(h_i, w_i)`.
    """
    shape = ops.shape(feature_map)
    n, locations = shape[0], shape[1] * shape[2]
    rows = ops.reshape(feature_map, (n, locations, shape[3]))
    index = keras.random.randint((n,), 0, locations, seed=seed)
    pick = ops.one_hot(index, locations, dtype=rows.dtype)
    return ops.einsum("nl,nlc->nc", pick, rows)


def occlude(images, seed, block_fraction=0.5):
    """Sets a random square block of each image to mid-grey (127.5).

    Args:
        images: `[N, H, W, C]` raw images (0-255).
        seed: a `keras.random.SeedGenerator` or int.
        block_fraction: block side as a fraction of the image side.

    Returns:
        float32 images of the same shape; each has one `b x b` block
        (`b = round(block_fraction * H)`), placed uniformly at random
        inside the image, equal to 127.5 (0 after the encoder's scaling).
    """
    images = ops.cast(images, "float32")
    height, width = images.shape[1], images.shape[2]
    block_h = max(1, int(round(block_fraction * height)))
    block_w = max(1, int(round(block_fraction * width)))
    batch = ops.shape(images)[0]
    corners = keras.random.uniform((batch, 2), seed=seed)
    top = ops.floor(corners[:, 0] * (height - block_h + 1))
    left = ops.floor(corners[:, 1] * (width - block_w + 1))
    rows = ops.arange(height, dtype="float32")[None, :]
    cols = ops.arange(width, dtype="float32")[None, :]
    top, left = top[:, None], left[:, None]
    in_rows = ops.logical_and(rows >= top, rows < top + block_h)
    in_cols = ops.logical_and(cols >= left, cols < left + block_w)
    mask = ops.logical_and(in_rows[:, :, None], in_cols[:, None, :])
    return ops.where(mask[..., None], 127.5, images)


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
        scales = parse_scales(scales)
        check_choice("channel_split", channel_split, CHANNEL_SPLITS)
        split = channel_split != "none"
        if split and (views != 1 or occlusion):
            raise ValueError(
                "channel_split's two encoders see two channel groups of one "
                "view; it does not combine with views=2 or occlusion. "
                f"Received: channel_split={channel_split!r}, views={views!r}, "
                f"occlusion={occlusion!r}"
            )
        if "local-local" in scales and views != 2 and not split:
            raise ValueError(
                "The local-local prediction scores one view's local map "
                "against another view's; it needs views=2 or a channel "
                f"split. Received: scales={','.join(scales)!r}, "
                f"views={views!r}"
            )
        if views not in (1, 2):
            raise ValueError(
                "views must be 1 (DIM) or 2 (multi-view DIM). "
                f"Received: views={views!r}"
            )
        if views == 2 and occlusion:
            raise ValueError(
                "occlusion is a single-view objective; multi-view DIM "
                "already scores each view against another. Received: "
                "views=2, occlusion=True"
            )
        for name, value in (("score_clip", score_clip),
                            ("score_penalty", score_penalty)):
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(
                    f"{name} must be a non-negative number. "
                    f"Received: {name}={value!r}"
                )
        check_score_temperature(score_temperature)
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
        if split:
            channel_group_encoders(encoder)  # checks that it has both
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
            OnlineProbeHead(online_probe_classes, name=f"online_probe_{k}")
            if online_probe_classes else None
            for k in PROBED_ONLINE
        )
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
        shape = tuple(input_shape[1:])
        view_rank = len(self.encoder.input.shape) - 1  # 3 images, 2 speech
        if self.views == 2 and len(shape) == view_rank:
            shape = (2,) + shape  # given the shape of one view
        images = keras.KerasTensor((2,) + shape, "float32")
        _SymbolicDIMLosses(self)(images)
        if self.online_probe_classes:
            for layer, head in self.online_probe_heads.items():
                width = self._probe_width[layer]
                head.build((None, width))
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
        if self.channel_split == "none":
            return None
        return channel_group_encoders(self.encoder)

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

    @property
    def online_probe_heads(self):
        """`{"y": Dense, "conv": Dense}` of the online probe, or `{}`."""
        if not self.online_probe_classes:
            return {}
        return {"y": self.online_probe_y, "conv": self.online_probe_conv}

    @property
    def probe_variables(self):
        """Trainable variables of the online probe's heads."""
        variables = []
        for head in self.online_probe_heads.values():
            variables += head.trainable_variables
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
                defaults to Adam (lr `ONLINE_PROBE_LR`).
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
                probe_optimizer or keras.optimizers.Adam(ONLINE_PROBE_LR)
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
                           labels=None):
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

        Returns:
            Dict with `"loss"` (encoder + critics objective),
            `"discriminator_total"` (discriminator objective), the logged
            terms of `LOG_KEYS` and, with the online probe on,
            `PROBE_LOSS_KEY` (zero without labels), all float32 scalars.
        """
        terms, code, features = self.compute_encoder_losses(
            images, training=training, return_features=True)
        if self.online_probe_classes:
            terms.update(self.compute_probe_losses(features, labels))
        if code is not None:
            code = ops.stop_gradient(code)
        terms.update(
            self.compute_discriminator_losses(
                code,
                training=training,
                prior_samples=prior_samples,
            )
        )
        return terms

    def compute_encoder_losses(self, images, training=True,
                               return_features=False):
        """The objective of the encoder and the MI critics.

        Args:
            images: `[N, H, W, 3]` raw images; with `views=2`,
                `[N, 2, H, W, 3]`, two views of each image.
            training: bool, batch-norm mode.
            return_features: bool, also return what the online probe
                reads.

        Returns:
            `(terms, code)`: `terms` holds `"loss"`, `"global_mi"`,
            `"local_mi"` and `"prior_loss"` (float32 scalars); `code` is
            sigmoid(Y), `[N, D]` float32 (the discriminator's fake samples,
            or None when `gamma` is 0). With `return_features`, `(terms,
            code, features)`: `features` maps `"y"` and `"conv"` to the
            first view's (or both encoders' side by side) gradient-stopped
            float32 `[N, width]`, or is `{}` with the online probe off.
        """
        probing = bool(self.online_probe_classes)
        keys = (("local", "conv", "y") if self.conv_critic or probing
                else ("local", "y"))
        if self.channel_encoders is not None:
            # One view, two encoders: luminance and colour.
            views = []
            for part in self.channel_encoders:
                outputs = part(images, training=training)
                views.append({k: outputs[k] for k in keys})
        elif self.views == 2:
            # Both views in one pass (one set of batch-norm statistics).
            both = ops.concatenate([images[:, 0], images[:, 1]], axis=0)
            outputs = self.encoder(both, training=training)
            halves = {k: ops.split(outputs[k], 2, axis=0) for k in keys}
            views = [{k: halves[k][v] for k in keys} for v in range(2)]
        else:
            outputs = self.encoder(images, training=training)
            view = {k: outputs[k] for k in keys}
            if self.occlusion and training:
                occluded = occlude(images, self.seed_generator)
                view["y"] = self.encoder(occluded, training=training)["y"]
            views = [view]
        features = {}
        if probing:
            parts = views if self.channel_encoders is not None else views[:1]
            for key in PROBED_ONLINE:
                flat = [ops.reshape(ops.cast(part[key], "float32"),
                                    (ops.shape(part[key])[0], -1))
                        for part in parts]
                features[key] = ops.stop_gradient(
                    ops.concatenate(flat, axis=-1) if len(flat) > 1
                    else flat[0])
        if self.global_negatives:  # Distribution: see `gather_replicas`.
            views = [{k: self.gather_replicas(x) for k, x in view.items()}
                     for view in views]
        # Each view's maps against the other view (one view: itself).
        pairs = list(zip(views, reversed(views)))
        zero = ops.zeros((), dtype="float32")
        terms = {"global_mi": zero, "local_mi": zero, "prior_loss": zero}
        loss = zero
        predictions = {"global_mi": [], "local_mi": []}
        for view, other in pairs:
            if self.global_critic is not None:
                predictions["global_mi"].append(
                    (self.global_critic, view["local"], other["y"]))
            for critic, source, target in (
                (self.local_critic, view.get("local"), other["y"]),
                (self.conv_critic, view.get("conv"), other["y"]),
                (self.location_critic, view["local"],
                 None if self.location_critic is None
                 else random_location(other["local"], self.seed_generator)),
            ):
                if critic is not None:
                    predictions["local_mi"].append((critic, source, target))
        for key, estimate, weight in (
            ("global_mi", objective.global_mi, self.alpha),
            ("local_mi", objective.local_mi, self.beta),
        ):
            if not predictions[key]:
                continue
            estimates = []
            for critic, source, target in predictions[key]:
                scores = critic(source, target, training=training)
                if self.score_temperature != 1.0:
                    scores = (ops.cast(scores, "float32")
                              / self.score_temperature)
                if self.score_penalty:
                    loss = loss + (
                        self.score_penalty / len(predictions[key])
                    ) * objective.score_penalty(scores)
                scores = objective.soft_clip(scores, self.score_clip)
                estimates.append(estimate(scores, self.estimator))
            terms[key] = sum(estimates[1:], estimates[0]) / len(estimates)
            loss = loss - weight * terms[key]
        ys = [view["y"] for view in views]
        if len(ys) == 1:
            y = ys[0]
        else:  # both views' Y; the two encoders' Y side by side
            axis = -1 if self.channel_encoders is not None else 0
            y = ops.concatenate(ys, axis=axis)
        code = None
        if self.prior_discriminator is not None:
            code = ops.sigmoid(ops.cast(y, "float32"))
            terms["prior_loss"] = objective.generator_prior_loss(
                self.prior_discriminator(code, training=training)
            )
            loss = loss + self.gamma * terms["prior_loss"]
        terms["loss"] = loss
        if return_features:
            return terms, code, features
        return terms, code

    @property
    def _probe_width(self):
        """Input width of each online probe head (flattened features)."""
        widths = {}
        parts = self.channel_encoders or (self.encoder,)
        for key in PROBED_ONLINE:
            total = 0
            for part in parts:
                size = 1
                for dim in part.output[key].shape[1:]:
                    size *= int(dim)
                total += size
            widths[key] = total
        return widths

    def compute_probe_losses(self, features, labels):
        """The online probe's cross-entropy on the labelled images.

        Args:
            features: `compute_encoder_losses`'s gradient-stopped features.
            labels: `[N]` int class ids, -1 for unlabelled images, or None.

        Returns:
            `{PROBE_LOSS_KEY: loss}`: the sum over the probed layers of the
            mean cross-entropy of the labelled images (0 without any).
        """
        zero = ops.zeros((), dtype="float32")
        if labels is None or not self.online_probe_classes:
            return {PROBE_LOSS_KEY: zero}
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        labelled = ops.cast(labels >= 0, "float32")
        safe = ops.where(labels >= 0, labels, ops.zeros_like(labels))
        count = ops.maximum(ops.sum(labelled), 1.0)
        loss = zero
        for key, head in self.online_probe_heads.items():
            logits = ops.cast(head(features[key]), "float32")
            cross_entropy = keras.losses.sparse_categorical_crossentropy(
                safe, logits, from_logits=True)
            loss = loss + ops.sum(cross_entropy * labelled) / count
        return {PROBE_LOSS_KEY: loss}

    def sample_prior(self, shape):
        """Samples of the prior, Uniform[0, 1]^D, from the seed generator."""
        return keras.random.uniform(shape, seed=self.seed_generator)

    def compute_discriminator_losses(
        self, code, training=True, prior_samples=None
    ):
        """The prior discriminator's objective on gradient-stopped codes.

        Args:
            code: `[N, D]` sigmoid(Y) with its gradient stopped, or None
                when `gamma` is 0.
            training: bool, passed to the discriminator.
            prior_samples: `[N, D]` prior samples, or None to draw them.

        Returns:
            Dict with `"discriminator_loss"`, `"gradient_penalty"` and
            `"discriminator_total"` (float32 scalars; zeros when `gamma`
            is 0).
        """
        zero = ops.zeros((), dtype="float32")
        terms = {
            "discriminator_loss": zero,
            "gradient_penalty": zero,
            "discriminator_total": zero,
        }
        if self.prior_discriminator is None:
            return terms
        if prior_samples is None:
            prior_samples = self.sample_prior(ops.shape(code))
        prior_samples = ops.cast(prior_samples, "float32")
        terms["discriminator_loss"] = objective.discriminator_loss(
            self.prior_discriminator(prior_samples, training=training),
            self.prior_discriminator(code, training=training),
        )
        total = terms["discriminator_loss"]
        if self.gradient_penalty > 0:
            samples = ops.concatenate([prior_samples, code], axis=0)
            terms["gradient_penalty"] = self.input_gradient_penalty(
                self.prior_discriminator, samples
            )
            total = total + self.gradient_penalty * terms["gradient_penalty"]
        terms["discriminator_total"] = total
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
