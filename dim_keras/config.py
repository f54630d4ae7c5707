"""`TrainConfig`: every setting of a training run, validated and resolved.

This is the one place where the defaults of a run are written: the
command line (`dim-keras train`, `dim-keras tune`) reads them from here.
The module imports no Keras, so the command line can read it before the
backend is chosen.
A config is never changed in place: `resolved(dataset)` returns a new one
with the dataset's defaults filled in: its encoder, its epochs, its
training recipe and its view scheme's settings (`dim_keras.recipes`) for the
settings left unset (`None`). The library, `dim-keras train` and every
trial of `dim-keras tune` resolve a config through it, so the same settings
given give the same run. The checks of single settings are
`dim_keras.checks`.
"""

import dataclasses

from dim_keras import checks
from dim_keras.choices import CRITIC_NORMS
from dim_keras.choices import ENCODERS
from dim_keras.choices import ESTIMATORS
from dim_keras.choices import LOCAL_CRITICS
from dim_keras.choices import LR_SCHEDULES
from dim_keras.choices import PRECISIONS
from dim_keras.choices import RECIPES
from dim_keras.choices import STRATEGIES
from dim_keras.choices import VIEW_CROPS
from dim_keras.choices import check_choice
from dim_keras.recipes import FORCED
from dim_keras.recipes import PER_SPEAKER
from dim_keras.recipes import RECIPE_FIELDS
from dim_keras.recipes import REFERENCE
from dim_keras.recipes import SCHEME_FIELDS
from dim_keras.recipes import SQRT_WIDTH
from dim_keras.recipes import named
from dim_keras.recipes import scheme_settings
from dim_keras.recipes import speech_batch_size
from dim_keras.recipes import sqrt_width_temperature


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run.

    Args:
        dataset: str, dataset name (see `dim_keras.data.DATASETS`) or
            `folder:PATH`.
        data_dir: str or None, where downloaded datasets live.
        encoder: str or None, encoder architecture; None picks the
            dataset's default.
        estimator: `"jsd"`, `"dv"` or `"nce"`, or None: the view scheme's
            (`dim_keras.recipes.scheme_settings`: JSD for one view, NCE for
            two views, a channel split and speech).
        alpha: weight of global MI.
        beta: weight of local MI.
        gamma: weight of prior matching.
        epochs: int or None; None picks the dataset's default.
        batch_size: int, at least 2, or None: the view scheme's (64; 32
            images, 64 views, for two views of images; for speech one pair
            of chunks per training speaker, at most 64).
        lr: float or None, Adam learning rate of both optimizers; None
            takes the dataset's recipe (`dim_keras.recipes`).
        lr_schedule: `"constant"` or `"cosine"` (a warm-up over the first
            5% of the run's steps, then a cosine decay to 0 by its last:
            `dim_keras.learning_rate`), or None for the dataset's recipe.
        seed: int, seeds weights, shuffling and prior samples.
        local_critic: `"encode_and_dot"` or `"concat_and_convolve"`.
        critic_units: int or None, local critic width (None: the
            dataset's recipe, else the critic's own default).
        critic_norm: normalizations of the encode-and-dot critic:
            `"batch_layer"` (the reference's batch norm and layer norm),
            `"layer"`, `"none"`, or None for the dataset's recipe.
        gradient_penalty: float, prior discriminator's gradient penalty.
        jit_compile: bool or None, XLA-compile the train step; None
            (auto) compiles it on a GPU but not on a CPU, where XLA ran
            the mixed_bfloat16 step 1.4-1.6x slower than TensorFlow's own
            kernels and the float32 step within 10% of them, either way
            (see benchmarks/README.md). Off under tf.distribute
            strategies.
        augment: bool or None, apply the dataset's training augmentation
            (random crops and flips where the paper used them); None takes
            the dataset's recipe.
        occlusion: bool, compute Y from images with a random block
            masked while local features come from the clean images.
        steps_per_epoch: int or None, batches per epoch; None runs one
            pass over the training images per epoch.
        distribute: how to spread training over devices and hosts, one of
            `dim_keras.distribute.STRATEGIES`; `batch_size` is the global
            batch, split over the replicas.
        global_negatives: bool, every replica scores against the whole
            global batch (default: against its own share).
        precision: `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`
            (Keras dtype policy; estimators always compute in float32).
        views: 1 (DIM) or 2 (multi-view DIM: two augmented views of each
            image, each view's local map scored against the other's Y; see
            `dim_keras.data.views` for the augmentation), or None: 1 for
            images; speech always trains two chunks of one speaker.
        score_temperature: float > 0, every critic score is divided by it
            (AMDIM: the square root of the critic's width, about 22.6 for
            512 units); 1 leaves the scores as they are. None takes the
            view scheme's: 1, or for two views of images AMDIM's, once the
            critic's width is known (`with_recipe`).
        score_clip: float, soft clipping `c * tanh(s / c)` of the critic
            scores (AMDIM: 20); 0 is off. None: the view scheme's (20 for
            two views of images, else 0).
        score_penalty: float, weight of the mean squared raw critic score
            in the loss (AMDIM: 0.05); 0 is off. None: the view scheme's
            (0.05 for two views of images, else 0).
        scales: str, the predictions of local MI, comma-separated:
            `"y-local"` (DIM's), `"y-conv"` (Y against the last conv
            map), `"local-local"` (a location of one view against the
            other view's local map; needs `views=2`). See
            `dim_keras.DeepInfoMax`. None: the view scheme's (`"y-local"`;
            `"y-local,y-conv"` for two views of images).
        channel_split: `"none"`, or `"luma-chroma"` (CMC's form: two
            encoders, one on each image's luminance, one on its colour,
            each scored against the other; the run saves both and their
            concatenation as `encoder.keras`).
        view_crop: str or None, how each of two views is cropped:
            `"resized"` (AMDIM's random resized crop) or `"translate"`
            (AMDIM's CIFAR-10 shift of up to 4 pixels); None takes the
            dataset's recipe (`dim_keras.data.views`).
        online_probe: bool, train linear classifiers on the detached Y
            and conv during training (labelled data only), each with its
            own optimizer, and log their accuracy on a held-out part of
            the training split every epoch (`dim_keras.monitors`).
        knn_every: int or None, the kNN monitor's period in epochs (kNN
            accuracy of Y and conv on the held-out part); None picks one
            that costs under a tenth of the training time; 0 is off.
        chunk_seconds: float or None, speech only: the length of the
            chunks the encoder reads, in seconds (utterances shorter than a
            chunk are padded by repeating them); None takes the dataset's
            recipe (`dim_keras.recipes.SPEECH`). Recorded in the run's
            config, so resuming and evaluating use the same.
        recipe: str or None, the recipe of the settings left unset: None
            or `"default"`, the dataset's (the best measured for its kind
            of data, `dim-keras datasets` lists them); `"paper"`, the
            paper's single-view DIM (`dim_keras.recipes.REFERENCE`).
    """

    dataset: str = "digits"
    data_dir: str = None
    encoder: str = None
    estimator: str = None
    alpha: float = 0.0
    beta: float = 1.0
    gamma: float = 0.1
    epochs: int = None
    batch_size: int = None
    lr: float = None
    lr_schedule: str = None
    seed: int = 0
    local_critic: str = "encode_and_dot"
    critic_units: int = None
    critic_norm: str = None
    gradient_penalty: float = 1.0
    jit_compile: bool = None
    augment: bool = None
    occlusion: bool = False
    steps_per_epoch: int = None
    distribute: str = "auto"
    global_negatives: bool = False
    precision: str = "float32"
    views: int = None
    score_temperature: float = None
    score_clip: float = None
    score_penalty: float = None
    scales: str = None
    channel_split: str = "none"
    view_crop: str = None
    online_probe: bool = True
    knn_every: int = None
    chunk_seconds: float = None
    recipe: str = None

    def validate(self, check_dataset=True):
        """Checks every setting that can be checked without loading data.

        Settings left unset (`None`) are checked once resolved.

        Args:
            check_dataset: bool, also check that `dataset` names a dataset
                this process knows (off when reading back a run, which may
                have used a dataset registered by another program).

        Returns:
            The config itself.

        Raises:
            ValueError: naming the bad setting and its value.
        """
        from dim_keras.data import check_name

        if check_dataset:
            check_name(self.dataset)
        elif not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(
                f"dataset must be a name. Received: dataset={self.dataset!r}"
            )
        if self.encoder is not None:
            check_choice("encoder", self.encoder, ENCODERS)
        check_choice("local_critic", self.local_critic, LOCAL_CRITICS)
        if self.critic_norm is not None:
            check_choice("critic_norm", self.critic_norm, CRITIC_NORMS)
        if (self.local_critic != "encode_and_dot"
                and self.critic_norm not in (None, "batch_layer")):
            raise ValueError(
                "critic_norm applies to the encode_and_dot critic only. "
                f"Received: local_critic={self.local_critic!r}, "
                f"critic_norm={self.critic_norm!r}"
            )
        if self.estimator is not None:
            check_choice("estimator", self.estimator, ESTIMATORS)
        checks.check_weights(self.alpha, self.beta, self.gamma)
        if self.batch_size is not None and self.batch_size < 2:
            raise ValueError(
                "batch_size must be at least 2 (negatives are the other "
                f"images of the batch). Received: batch_size={self.batch_size}"
            )
        for name in ("epochs", "steps_per_epoch", "critic_units"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(
                    f"{name} must be at least 1. Received: {name}={value}"
                )
        check_choice("distribute", self.distribute, STRATEGIES,
                     what="distribution strategy")
        check_choice("precision", self.precision, PRECISIONS)
        if self.lr is not None:
            checks.check_lr(self.lr)
        checks.check_non_negative("gradient_penalty", self.gradient_penalty)
        checks.check_score_transforms(self.score_temperature,
                                      self.score_clip, self.score_penalty)
        checks.check_view_scheme(self.views, self.occlusion,
                                 self.channel_split, self.scales,
                                 beta=self.beta)
        if self.view_crop is not None:
            check_choice("view_crop", self.view_crop, VIEW_CROPS)
        if self.lr_schedule is not None:
            check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.recipe is not None:
            check_choice("recipe", self.recipe, RECIPES)
        if self.online_probe not in (True, False):
            raise ValueError(
                "online_probe must be true or false. "
                f"Received: online_probe={self.online_probe!r}"
            )
        if self.knn_every is not None and not (
                isinstance(self.knn_every, int) and self.knn_every >= 0):
            raise ValueError(
                "knn_every must be a number of epochs (0 is off). "
                f"Received: knn_every={self.knn_every!r}"
            )
        if self.chunk_seconds is not None:
            checks.check_chunk_seconds(self.chunk_seconds)
        if self.jit_compile not in (None, True, False):
            raise ValueError(
                "jit_compile must be true, false or null (auto). "
                f"Received: jit_compile={self.jit_compile!r}"
            )
        return self

    def resolved(self, dataset, recipe=None):
        """This config with the dataset's defaults filled in.

        The one resolution of a run's settings: `dim_keras.training.train`
        calls it for the library, the command line and every trial of a
        search alike.

        Args:
            dataset: the dataset the run trains on (an `ImageDataset` or
                an `AudioDataset`).
            recipe: dict or None, recipe settings to use instead of the
                dataset's (those of a run being resumed).

        Returns:
            A new, validated `TrainConfig` whose `encoder` and `epochs` are
            set, whose unset view-scheme settings
            (`dim_keras.recipes.SCHEME_FIELDS`) are the scheme's for the
            dataset's modality (speech: always two views, a batch of one
            pair per speaker up to 64), and whose unset
            recipe settings (`dim_keras.recipes.RECIPE_FIELDS`) come from
            the dataset's recipe.
        """
        config = self.with_dataset(dataset, recipe).with_scheme(
            dataset.modality)
        if config.batch_size == PER_SPEAKER:
            config = dataclasses.replace(
                config, batch_size=speech_batch_size(dataset.num_classes))
        return config.validate()

    def with_dataset(self, dataset, recipe=None):
        """This config with the dataset's encoder, epochs and recipe.

        Args:
            dataset: the dataset the run trains on.
            recipe: dict or None, recipe settings to use instead of those
                `recipe` names (`dim_keras.recipes.named`).

        Returns:
            A new `TrainConfig`: the encoder given, else the recipe's, else
            the dataset's; the epochs given, else the dataset's; unset
            recipe settings from the recipe. View-scheme settings stay
            unset (`with_scheme`).
        """
        if recipe is None:
            recipe = named(self.recipe, dataset.default_settings)
        return dataclasses.replace(
            self,
            encoder=(self.encoder or recipe.get("encoder")
                     or dataset.default_encoder),
            epochs=self.epochs or dataset.default_epochs,
        ).with_recipe(recipe)

    def with_recipe(self, settings=None):
        """This config with its unset recipe settings filled in.

        Args:
            settings: dict of recipe settings, or None; what it does not
                name comes from `dim_keras.recipes.REFERENCE`.

        Returns:
            A new `TrainConfig`. The critic normalization of a recipe only
            applies to the encode-and-dot critic (the others have none);
            its views only where occlusion and a channel split (both one
            view) are off.
        """
        recipe = dict(REFERENCE, **(settings or {}))
        if self.local_critic != "encode_and_dot":
            recipe["critic_norm"] = "batch_layer"
        if self.occlusion or self.channel_split != "none":
            recipe["views"] = 1  # both are schemes of one view
        return dataclasses.replace(
            self, **{name: recipe[name] for name in RECIPE_FIELDS
                     if getattr(self, name) is None})

    def with_scheme(self, modality="image"):
        """This config with its unset view-scheme settings filled in.

        Args:
            modality: `"image"` or `"audio"` (speech always trains two
                views: two chunks of one speaker).

        Returns:
            A new `TrainConfig` (`dim_keras.recipes.scheme_settings`). A
            score temperature left to two views of images becomes AMDIM's
            for the critic's width (`dim_keras.recipes.sqrt_width_temperature`),
            so fill the recipe's critic width first (`with_recipe`).
        """
        scheme = scheme_settings(self.views, self.channel_split, modality)
        changes = {name: scheme[name] for name in SCHEME_FIELDS
                   if getattr(self, name) is None}
        changes.update(FORCED.get(modality, {}))
        if changes.get("score_temperature") == SQRT_WIDTH:
            changes["score_temperature"] = sqrt_width_temperature(
                self.local_critic, self.critic_units)
        return dataclasses.replace(self, **changes)

    def replace(self, **changes):
        """A copy of this config with `changes` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """The settings as a JSON-serializable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Builds a config from a dict, refusing unknown keys.

        Args:
            values: dict of setting name to value (a subset is enough).

        Returns:
            A `TrainConfig` (not yet validated).

        Raises:
            ValueError: naming the unknown keys.
        """
        if not isinstance(values, dict):
            raise ValueError(
                "A config must be a JSON object of settings. "
                f"Received: {type(values).__name__}"
            )
        unknown = sorted(set(values) - set(field_names()))
        if unknown:
            raise ValueError(
                f"Unknown config keys; expected some of {sorted(field_names())}."
                f" Received: {unknown}"
            )
        values = dict(values)
        if isinstance(values.get("scales"), (list, tuple)):
            values["scales"] = ",".join(map(str, values["scales"]))
        return cls(**values)


def field_names():
    """Names of every `TrainConfig` setting, in declaration order."""
    return [f.name for f in dataclasses.fields(TrainConfig)]


def default(name):
    """The default value of the `TrainConfig` setting `name`.

    Args:
        name: str, a setting name.

    Returns:
        Its default value.
    """
    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}[name]
