"""The command line's options, declared once.

`SETTING_OPTIONS` are the settings of a run: `dim-keras train` trains with
those given, `dim-keras tune` pins those it searches and trains every trial
with the others. Choices and defaults come from the library, where they are
written once; nothing here imports Keras (the backend is chosen after
start-up).
"""

import sys

import click

from dim_keras.choices import CHANNEL_SPLITS
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
from dim_keras.config import default


def fail(message, code=2):
    """Prints a one-line error and exits with a non-zero code."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


class Choice(click.Choice):
    """A click `Choice` whose refusal is the library's one-line error.

    `--help` lists the choices as click does; a bad value exits with code 2
    and `Error: Unknown <what>; expected one of ... Received: name=value`.
    """

    def convert(self, value, param, ctx):
        try:
            return check_choice(param.name.rstrip("_"), value, self.choices)
        except ValueError as e:
            fail(str(e))


def setting(name, *decls, **kwargs):
    """A click option of the `TrainConfig` setting `name`.

    Its default is None (not given): the run takes `TrainConfig`'s default,
    or the dataset's recipe and view scheme's where that is None; `--help`
    shows the former.
    """
    if "is_flag" not in kwargs and default(name) is not None:
        kwargs.setdefault("show_default", str(default(name)))
    kwargs.setdefault("default", None)
    return click.option(*decls, name, **kwargs)


# The settings of a run, declared once: `dim-keras train` trains with those
# given; `dim-keras tune` pins those it searches and trains every trial with
# the others.
SETTING_OPTIONS = (
    setting("dataset", "--dataset", show_default=default("dataset"),
            help="Dataset name (see `dim-keras datasets`) or folder:PATH."),
    setting("data_dir", "--data-dir", help="Where datasets are stored."),
    setting("recipe", "--recipe", type=Choice(RECIPES),
            help="Settings left unset from: default (the dataset's "
                 "recipe, the best measured) or paper (the paper's "
                 "single-view DIM: one view, JSD, lr 1e-4, crops and "
                 "flips, the 2048-unit critic, its encoder)."),
    setting("encoder", "--encoder", type=Choice(ENCODERS),
            help="Encoder architecture (default: the dataset's)."),
    setting("estimator", "--estimator", type=Choice(ESTIMATORS),
            help="MI estimator (default: jsd; nce for --views 2, a channel "
                 "split and speech)."),
    setting("alpha", "--alpha", type=float, help="Weight of global MI."),
    setting("beta", "--beta", type=float, help="Weight of local MI."),
    setting("gamma", "--gamma", type=float,
            help="Weight of prior matching."),
    setting("batch_size", "--batch-size", type=int,
            help="Images per batch (default 64; 32 images, 64 views, with "
                 "--views 2 on images)."),
    setting("lr", "--lr", type=float,
            help="Adam learning rate, betas 0.5, 0.999 (default: the "
                 "dataset's recipe; `dim-keras datasets` lists them)."),
    setting("lr_schedule", "--lr-schedule", type=Choice(LR_SCHEDULES),
            help="The learning rate over the run: constant, or cosine (a "
                 "warm-up over the first 5% of its steps, then a cosine "
                 "decay to 0 by its last; default: the dataset's recipe)."),
    setting("seed", "--seed", type=int),
    setting("local_critic", "--local-critic", type=Choice(LOCAL_CRITICS)),
    setting("critic_units", "--critic-units", type=int,
            help="Local critic width (default: the dataset's recipe, else "
                 "2048 / 512)."),
    setting("critic_norm", "--critic-norm", type=Choice(CRITIC_NORMS),
            help="Normalizations of the encode_and_dot critic: batch and "
                 "layer norm (the reference's), layer norm only, none "
                 "(default: the dataset's recipe)."),
    setting("gradient_penalty", "--gradient-penalty", type=float,
            help="Prior discriminator's penalty."),
    setting("steps_per_epoch", "--steps-per-epoch", type=int,
            help="Batches per epoch (default: one pass over the data)."),
    setting("distribute", "--distribute", type=Choice(STRATEGIES),
            help="none, mirrored (TF), multi-worker (several hosts: JAX "
                 "with KERAS_DISTRIBUTION_*, or TF with TF_CONFIG), "
                 "data-parallel (JAX) or auto (all local GPUs when "
                 "several)."),
    setting("global_negatives", "--global-negatives", is_flag=True,
            default=False,
            help="Score every replica against the whole global batch."),
    setting("precision", "--precision", type=Choice(PRECISIONS)),
    click.option("--no-jit", is_flag=True,
                 help="Never XLA-compile the step (default: on GPUs only)."),
    setting("augment", "--augment/--no-augment",
            help="Turn the dataset's crop/flip augmentation on or off "
                 "(default: the dataset's recipe)."),
    setting("occlusion", "--occlusion", is_flag=True, default=False,
            help="Y from images with a random block masked."),
    setting("views", "--views", type=int,
            help="2: multi-view DIM (two augmented views of each image, "
                 "each view's local features against the other's Y; "
                 "unless given: NCE, AMDIM's score temperature, clipping "
                 "and penalty, --scales y-local,y-conv, --batch-size 32). "
                 "Default 1; speech always takes 2: two chunks of one "
                 "speaker (NCE unless --estimator is given)."),
    setting("score_temperature", "--score-temperature", type=float,
            help="Divide every critic score by this (default 1; with "
                 "--views 2 on images AMDIM's, the square root of the "
                 "critic's width: 22.6 for 512 units)."),
    setting("score_clip", "--score-clip", type=float,
            help="Soft-clip critic scores to c*tanh(s/c); 0 is off "
                 "(default 0; 20, AMDIM's, with --views 2 on images)."),
    setting("score_penalty", "--score-penalty", type=float,
            help="Weight of the mean squared critic score (default 0; "
                 "0.05, AMDIM's, with --views 2 on images)."),
    setting("scales", "--scales",
            help="Predictions of local MI, comma-separated: y-local "
                 "(DIM's), y-conv (Y against the last conv map), "
                 "local-local (a location of one view against the other "
                 "view's map; --views 2) (default y-local; "
                 "y-local,y-conv with --views 2 on images)."),
    setting("view_crop", "--view-crop", type=Choice(VIEW_CROPS),
            help="How each of --views 2 is cropped: resized (AMDIM's "
                 "random resized crop, area 0.3-1) or translate (AMDIM's "
                 "CIFAR-10 shift of up to 4 pixels, one flip shared by "
                 "both views) (default: the dataset's recipe)."),
    setting("channel_split", "--channel-split", type=Choice(CHANNEL_SPLITS),
            help="luma-chroma: CMC's two encoders, one on the luminance "
                 "and one on the colour of each image, each against the "
                 "other (NCE unless --estimator is given)."),
    setting("online_probe", "--online-probe/--no-online-probe",
            show_default=str(default("online_probe")).lower(),
            help="Train a linear probe on the detached Y and conv during "
                 "training and log its held-out accuracy every epoch "
                 "(labelled data)."),
    setting("knn_every", "--knn-every", type=int,
            help="Epochs between kNN accuracies of Y and conv on the "
                 "held-out part (default: chosen to cost under 10% of "
                 "training; 0 is off)."),
    setting("chunk_seconds", "--chunk-seconds", type=float,
            help="Speech: seconds of audio per chunk the encoder reads, "
                 "from about 0.1 up (default: the speech recipe's; "
                 "shorter files are padded by repeating them). "
                 "`evaluate` and a resumed run use the run's."),
)


def setting_options(command):
    """Decorates a command with `SETTING_OPTIONS`, in their order."""
    for option in reversed(SETTING_OPTIONS):
        command = option(command)
    return command


def given_settings(ctx, options):
    """The `TrainConfig` settings given on the command line.

    Args:
        ctx: the click context.
        options: dict of the command's parameters (of `SETTING_OPTIONS`).

    Returns:
        dict of the settings the user gave, `--no-jit` as `jit_compile`.
    """
    given = {}
    for name, value in options.items():
        source = ctx.get_parameter_source(name)
        if source is None or source.name == "DEFAULT":
            continue
        if name == "no_jit":
            given["jit_compile"] = False if value else None
        else:
            given[name] = value
    return given
