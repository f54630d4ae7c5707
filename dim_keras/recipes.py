"""Default training recipes: the settings a run takes when it is not given them.

Every default of a run that depends on what it trains is written here, in
two layers, and `TrainConfig.resolved` (library, command line and tuner
alike) applies them to the settings a user left unset (`None`):

- the dataset's recipe fills `RECIPE_FIELDS` (learning rate, augmentation,
  critic): each dataset names its recipe (`ImageDataset.default_settings`);
  settings it does not name come from `REFERENCE`;
- the view scheme's settings fill `SCHEME_FIELDS` (`scheme_settings`):
  DIM's single view, or the contrastive recipe of two views, a channel
  split and speech.

Imports nothing, so the command line can show the recipes before Keras is
loaded.
"""

# Width of the encode-and-dot critic when none is given (the reference's).
ENCODE_AND_DOT_UNITS = 2048

# Settings a recipe may fill; `TrainConfig` leaves them `None` by default.
RECIPE_FIELDS = ("views", "lr", "lr_schedule", "augment", "critic_units",
                 "critic_norm", "view_crop", "chunk_seconds")

# The paper's reference implementation: Adam lr 1e-4, the dataset's crops and
# flips, the encode-and-dot critic at its own width (2048) with batch norm
# and layer norm; two views (multi-view DIM) by AMDIM's random resized crop
# (its STL-10 and ImageNet transform).
REFERENCE = {
    "views": 1,
    "lr": 1e-4,
    "lr_schedule": "constant",
    "augment": True,
    "critic_units": None,
    "critic_norm": "batch_layer",
    "view_crop": "resized",
    "chunk_seconds": None,  # speech only (`SPEECH`)
}

# 32x32 photographs (CIFAR-10/100, a folder of 32x32 images), measured on a
# 5k/1k real CIFAR-10 subset with benchmarks/quality.py (docs/results.md): two
# views (multi-view DIM, the view scheme's NCE, AMDIM's
# score temperature, clipping and penalty; `scheme_settings`) learned 10
# points more than one view in 10 epochs (conv 60.7 against 50.5) and more
# per minute of training; a 512-unit critic, lr 1e-3
# and no augmentation learned more in a laptop budget than the reference
# settings; each view by AMDIM's CIFAR-10 transform, a random translation of
# up to 4 pixels (`dim_keras.data.views`). `--views 1` trains the paper's
# single-view DIM with the same settings. A constant rate: warmed up and
# cosine-decayed over 10 epochs, the linear probe lost 2.0 / 1.6 / 3.4
# points (conv / fc / y) against it (docs/results.md).
CIFAR_LIKE = {
    "views": 2,
    "lr": 1e-3,
    "lr_schedule": "constant",
    "augment": False,
    "critic_units": 512,
    "critic_norm": "batch_layer",
    "view_crop": "translate",
}

# 64x64 photographs (Tiny ImageNet, STL-10, a folder of 64x64 images),
# measured on a 10k/2k real Tiny ImageNet subset (100 classes) with
# benchmarks/quality.py at a CPU budget (docs/results.md):
# two views of the reference's cheaper 64x64 network (`basic64x64`, about a
# seventh of alex64x64's multiply-adds) saw 3-4 times the images of
# alex64x64's single view in the same minutes and gained more over random
# weights of its architecture; AMDIM's random resized crop for each view
# (a 4-pixel shift did as well in a short budget); the 32x32 recipe's
# critic and no dataset augmentation, at half its learning rate: in a
# screen of the critic's width (256, 1024), the batch (64) and the rate
# (2e-3, 5e-4) over 2 epochs, only the rate moved the linear probe beyond
# noise (5e-4: +1.7 / +2.4 / +2.0 points conv / fc / y over 1e-3; 2e-3:
# -2.8 / -4.4 / -3.7); at the 40-minute budget (96,000 images) on two
# seeds 5e-4 reached 29.9 / 28.8 / 26.9 against 1e-3's 28.7 / 27.3 / 25.8,
# ahead on every layer on both seeds (benchmarks/README.md). `--recipe
# paper` trains alex64x64 as the paper did.
SIXTY_FOUR = dict(CIFAR_LIKE, encoder="basic64x64", view_crop="resized",
                  lr=5e-4)

# The built-in digits (8x8 scans upscaled to 32x32), the first run's data:
# 32x32 photographs' settings with one view, the quickest to train.
DIGITS = dict(CIFAR_LIKE, views=1)


# Speech (speaker folders, LibriSpeech): two chunks of one speaker (always
# two views; `FORCED`), at the learning rate, critic width and chunk length
# measured on synthesized speech (docs/results.md, "Speech"). A run trained before
# chunk lengths were a setting recorded none: its chunks were 1 s
# (`LEGACY_CHUNK_SECONDS`).
SPEECH = {
    "views": 2,
    "lr": 1e-3,
    "lr_schedule": "constant",
    "augment": False,
    "critic_units": 512,
    "critic_norm": "batch_layer",
    "view_crop": "resized",
    "chunk_seconds": 0.5,
}
LEGACY_CHUNK_SECONDS = 1.0


# Settings the view scheme fills (`scheme_settings`); `TrainConfig` leaves
# them `None` by default.
SCHEME_FIELDS = ("views", "estimator", "batch_size", "score_temperature",
                 "score_clip", "score_penalty", "scales")

# The score temperature of `TWO_IMAGE_VIEWS`: AMDIM's, the square root of the
# critic's width (`sqrt_width_temperature`), known once the critic is.
SQRT_WIDTH = "sqrt_width"

# DIM as the paper trains it: one view of each image, JSD, batches of 64,
# critic scores as they are, Y against the local map.
ONE_VIEW = {
    "views": 1,
    "estimator": "jsd",
    "batch_size": 64,
    "score_temperature": 1.0,
    "score_clip": 0.0,
    "score_penalty": 0.0,
    "scales": "y-local",
}

# Two views, a channel split and speech score one view against another, the
# batch's other images as negatives: infoNCE, as AMDIM and CMC.
CONTRASTIVE = {"estimator": "nce"}

# Two views of images: the recipe that beat single-view DIM on CIFAR-10
# (benchmarks/README.md): AMDIM's score temperature, clipping and penalty,
# Y against the local and the conv maps, and batches of 32 images (64
# views).
TWO_IMAGE_VIEWS = {
    "score_temperature": SQRT_WIDTH,
    "score_clip": 20.0,
    "score_penalty": 0.05,
    "scales": "y-local,y-conv",
    "batch_size": 32,
}


# Settings a modality always takes, given or not: speech trains two chunks
# of one speaker.
FORCED = {"audio": {"views": 2}}

# Speech: a batch holds one pair of chunks per speaker, of distinct
# speakers, up to `SPEECH_BATCH_LIMIT` (the batch size of `ONE_VIEW`):
# every other element of the batch is then another speaker, a true
# negative. With more pairs than speakers, chunks of one speaker are scored
# as negatives of each other, and DIM learned far less (docs/results.md, "Speech").
# `TrainConfig.resolved` sets it from the dataset (`speech_batch_size`).
# Scores are divided by AMDIM's temperature, the square root of the
# critic's width: on synthesized speech the online probe and kNN monitor
# reached after one epoch what they did after three to four without it.
PER_SPEAKER = "one_per_speaker"
SPEECH_BATCH_LIMIT = 64
SPEECH_VIEWS = {"batch_size": PER_SPEAKER, "score_temperature": SQRT_WIDTH}


def speech_batch_size(num_speakers, limit=SPEECH_BATCH_LIMIT):
    """The speech batch: one pair per training speaker, 2 to `limit`.

    Args:
        num_speakers: int, the training speakers.
        limit: int, the largest batch.

    Returns:
        int.
    """
    return max(2, min(int(limit), int(num_speakers)))


def named(name, dataset_recipe):
    """The recipe a run takes by name.

    Args:
        name: None or `"default"` (the dataset's recipe, the best
            measured), or `"paper"` (the paper's single-view DIM:
            `REFERENCE`, with the dataset's own encoder).
        dataset_recipe: dict, the dataset's recipe.

    Returns:
        dict of recipe settings (`RECIPE_FIELDS`, and `encoder` where the
        recipe names one).
    """
    if name == "paper":
        return dict(REFERENCE)
    return dict(dataset_recipe or {})


def scheme_settings(views, channel_split="none", modality="image"):
    """The settings of a view scheme, for those a user left unset.

    Args:
        views: 1, 2, or None (unset: 2 for speech, else 1).
        channel_split: `"none"` or a channel split (`choices.CHANNEL_SPLITS`).
        modality: `"image"` or `"audio"`; speech always trains two chunks
            of one speaker, two views.

    Returns:
        dict with a value for each of `SCHEME_FIELDS`; `score_temperature`
        may be `SQRT_WIDTH`, speech's `batch_size` `PER_SPEAKER`.
    """
    views = FORCED.get(modality, {}).get("views", views)
    if views is None:
        views = 1
    settings = dict(ONE_VIEW, views=views)
    if views == 2 or channel_split != "none":
        settings.update(CONTRASTIVE)
    if views == 2 and modality != "audio":
        settings.update(TWO_IMAGE_VIEWS)
    if modality == "audio":
        settings.update(SPEECH_VIEWS)
    return settings


def sqrt_width_temperature(local_critic, critic_units):
    """AMDIM's score temperature: the square root of the critic's width.

    Args:
        local_critic: the local critic's name.
        critic_units: its width, or None for the encode-and-dot default.

    Returns:
        float: `sqrt(U)` for the encode-and-dot critic (whose scores are
        dot products of U-unit layer-normalized embeddings), 1.0 for a
        critic whose scores are not dot products.
    """
    if local_critic != "encode_and_dot":
        return 1.0
    return float((critic_units or ENCODE_AND_DOT_UNITS) ** 0.5)


def describe(settings):
    """A recipe as `name=value` text, for messages and `dim-keras datasets`.

    Args:
        settings: dict of recipe settings (missing ones: `REFERENCE`).

    Returns:
        str.
    """
    values = dict(REFERENCE, **settings)
    names = (("encoder",) if "encoder" in values else ()) + RECIPE_FIELDS
    return ", ".join(f"{name}={values[name]}" for name in names
                     if name != "chunk_seconds" or values[name] is not None)
