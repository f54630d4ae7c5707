"""The `dim-keras` command line: a thin shell over `dim_keras`."""

import os
import sys

import click

# Choices and defaults come from the library, where they are written once.
# Neither module imports Keras: the backend is chosen after start-up.
from dim_keras.choices import BACKENDS
from dim_keras.choices import CHANNEL_SPLITS
from dim_keras.choices import CRITIC_NORMS
from dim_keras.choices import ENCODERS
from dim_keras.choices import ESTIMATORS
from dim_keras.choices import EXPORT_FORMATS
from dim_keras.choices import LOCAL_CRITICS
from dim_keras.choices import PRECISIONS
from dim_keras.choices import PROBED_LAYERS
from dim_keras.choices import PROBES
from dim_keras.choices import STRATEGIES
from dim_keras.choices import TUNERS
from dim_keras.choices import VIEW_CROPS
from dim_keras.choices import check_choice
from dim_keras.config import default
from dim_keras.tuning.settings import default as search_default

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def fail(message, code=2):
    """Prints a one-line error and exits with a non-zero code."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def exit_code(error):
    """2 for bad input (a damaged file), 1 for other failures of a run."""
    from dim_keras.runs import DamagedFileError

    return 2 if isinstance(error, DamagedFileError) else 1


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


def use_backend(name):
    """Selects the Keras backend; call it before anything imports Keras.

    Args:
        name: `"tensorflow"`, `"jax"`, `"torch"`, or None to keep
            `KERAS_BACKEND` (else Keras's configured default).
    """
    if name is not None:
        if "keras" in sys.modules:
            import keras

            if keras.backend.backend() != name:
                fail(
                    "Keras is already loaded with the "
                    f"{keras.backend.backend()} backend in this process; "
                    f"set KERAS_BACKEND={name} before starting it. "
                    f"Received: --backend={name}"
                )
        os.environ["KERAS_BACKEND"] = name
    name = name or os.environ.get("KERAS_BACKEND")
    try:
        import keras  # noqa: F401

        import dim_keras.backend  # noqa: F401
    except (ImportError, ValueError) as e:
        if name is None:
            fail(
                f"cannot load Keras's default backend ({e}); pick one with "
                f"--backend {'|'.join(BACKENDS)} or KERAS_BACKEND."
            )
        if name not in BACKENDS:
            fail(str(e))
        fail(
            f"cannot use the {name} backend ({e}); install it with "
            f"pip install 'dim-keras[{name}]'. Received: backend={name}"
        )


def _default_run_dir(dataset):
    import datetime

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = dataset.replace("/", "_").replace(":", "_")
    return os.path.join("runs", f"{safe}-{stamp}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Deep InfoMax: learn image representations without labels."""


def _setting(name, *decls, **kwargs):
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
    _setting("dataset", "--dataset", show_default=default("dataset"),
             help="Dataset name (see `dim-keras datasets`) or folder:PATH."),
    _setting("data_dir", "--data-dir", help="Where datasets are stored."),
    _setting("encoder", "--encoder", type=Choice(ENCODERS),
             help="Encoder architecture (default: the dataset's)."),
    _setting("estimator", "--estimator", type=Choice(ESTIMATORS),
             help="MI estimator (default: jsd; nce for --views 2, a channel "
                  "split and speech)."),
    _setting("alpha", "--alpha", type=float, help="Weight of global MI."),
    _setting("beta", "--beta", type=float, help="Weight of local MI."),
    _setting("gamma", "--gamma", type=float,
             help="Weight of prior matching."),
    _setting("batch_size", "--batch-size", type=int,
             help="Images per batch (default 64; 32 images, 64 views, with "
                  "--views 2 on images)."),
    _setting("lr", "--lr", type=float,
             help="Adam learning rate, betas 0.5, 0.999 (default: the "
                  "dataset's recipe; `dim-keras datasets` lists them)."),
    _setting("seed", "--seed", type=int),
    _setting("local_critic", "--local-critic", type=Choice(LOCAL_CRITICS)),
    _setting("critic_units", "--critic-units", type=int,
             help="Local critic width (default: the dataset's recipe, else "
                  "2048 / 512)."),
    _setting("critic_norm", "--critic-norm", type=Choice(CRITIC_NORMS),
             help="Normalizations of the encode_and_dot critic: batch and "
                  "layer norm (the reference's), layer norm only, none "
                  "(default: the dataset's recipe)."),
    _setting("gradient_penalty", "--gradient-penalty", type=float,
             help="Prior discriminator's penalty."),
    _setting("steps_per_epoch", "--steps-per-epoch", type=int,
             help="Batches per epoch (default: one pass over the data)."),
    _setting("distribute", "--distribute", type=Choice(STRATEGIES),
             help="none, mirrored (TF), multi-worker (several hosts: JAX "
                  "with KERAS_DISTRIBUTION_*, or TF with TF_CONFIG), "
                  "data-parallel (JAX) or auto (all local GPUs when "
                  "several)."),
    _setting("global_negatives", "--global-negatives", is_flag=True,
             default=False,
             help="Score every replica against the whole global batch."),
    _setting("precision", "--precision", type=Choice(PRECISIONS)),
    click.option("--no-jit", is_flag=True,
                 help="Never XLA-compile the step (default: on GPUs only)."),
    _setting("augment", "--augment/--no-augment",
             help="Turn the dataset's crop/flip augmentation on or off "
                  "(default: the dataset's recipe)."),
    _setting("occlusion", "--occlusion", is_flag=True, default=False,
             help="Y from images with a random block masked."),
    _setting("views", "--views", type=int,
             help="2: multi-view DIM (two augmented views of each image, "
                  "each view's local features against the other's Y; "
                  "unless given: NCE, AMDIM's score temperature, clipping "
                  "and penalty, --scales y-local,y-conv, --batch-size 32). "
                  "Default 1; speech always takes 2: two chunks of one "
                  "speaker (NCE unless --estimator is given)."),
    _setting("score_temperature", "--score-temperature", type=float,
             help="Divide every critic score by this (default 1; with "
                  "--views 2 on images AMDIM's, the square root of the "
                  "critic's width: 22.6 for 512 units)."),
    _setting("score_clip", "--score-clip", type=float,
             help="Soft-clip critic scores to c*tanh(s/c); 0 is off "
                  "(default 0; 20, AMDIM's, with --views 2 on images)."),
    _setting("score_penalty", "--score-penalty", type=float,
             help="Weight of the mean squared critic score (default 0; "
                  "0.05, AMDIM's, with --views 2 on images)."),
    _setting("scales", "--scales",
             help="Predictions of local MI, comma-separated: y-local "
                  "(DIM's), y-conv (Y against the last conv map), "
                  "local-local (a location of one view against the other "
                  "view's map; --views 2) (default y-local; "
                  "y-local,y-conv with --views 2 on images)."),
    _setting("view_crop", "--view-crop", type=Choice(VIEW_CROPS),
             help="How each of --views 2 is cropped: resized (AMDIM's "
                  "random resized crop, area 0.3-1) or translate (AMDIM's "
                  "CIFAR-10 shift of up to 4 pixels, one flip shared by "
                  "both views) (default: the dataset's recipe)."),
    _setting("channel_split", "--channel-split", type=Choice(CHANNEL_SPLITS),
             help="luma-chroma: CMC's two encoders, one on the luminance "
                  "and one on the colour of each image, each against the "
                  "other (NCE unless --estimator is given)."),
    _setting("online_probe", "--online-probe/--no-online-probe",
             show_default=str(default("online_probe")).lower(),
             help="Train a linear probe on the detached Y and conv during "
                  "training and log its held-out accuracy every epoch "
                  "(labelled data)."),
    _setting("knn_every", "--knn-every", type=int,
             help="Epochs between kNN accuracies of Y and conv on the "
                  "held-out part (default: chosen to cost under 10% of "
                  "training; 0 is off)."),
    _setting("chunk_seconds", "--chunk-seconds", type=float,
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


@main.command()
@setting_options
@_setting("epochs", "--epochs", type=int,
          help="Epochs (default: the dataset's).")
@click.option("--backend", type=Choice(BACKENDS), default=None,
              help="Keras backend (default: $KERAS_BACKEND, else Keras's).")
@click.option("--config", "config_file", default=None,
              type=click.Path(dir_okay=False),
              help="JSON file of settings (options given also apply).")
@click.option("--out", default=None,
              help="Run directory (default: runs/<dataset>-<time>). "
                   "An existing run there is resumed.")
@click.option("--no-evaluate", is_flag=True,
              help="Skip evaluating the run after training.")
@click.pass_context
def train(ctx, config_file, out, no_evaluate, backend, **options):
    """Train a DIM encoder."""
    use_backend(backend)
    from dim_keras.config import TrainConfig
    from dim_keras.data import DatasetError
    from dim_keras.runs import RunError

    try:
        values = {}
        if config_file:
            from dim_keras.runs import read_json

            if not os.path.isfile(config_file):
                fail(f"No such --config file. Received: --config={config_file}")
            values.update(read_json(config_file, remedy=(
                "pass a JSON object of settings, such as a run's "
                "config.json or a search's best.json")))
        values.update(given_settings(ctx, options))  # options win
        config = TrainConfig.from_dict(values).validate()
    except (ValueError, TypeError) as e:
        fail(str(e))

    run_dir = out or _default_run_dir(config.dataset)
    from dim_keras.training import train as run_training

    try:
        result = run_training(config, run_dir)
    except (RunError, DatasetError) as e:
        fail(str(e), code=exit_code(e))
    except KeyboardInterrupt:
        fail(f"interrupted; rerun with --out {run_dir} to resume.", code=130)
    paths = result["paths"]
    if not result.get("writer", True):
        click.echo(
            f"Done: {result['epochs_done']} epochs. Process 0 writes the "
            "run directory and evaluates it."
        )
        return
    if result["trained"]:
        last = result["history"][-1]
        click.echo(
            f"Done: {result['epochs_done']} epochs, loss "
            f"{last['loss']:.4f}, local MI {last['local_mi']:.4f}, "
            f"global MI {last['global_mi']:.4f}."
        )
    click.echo(f"Run directory: {paths['run_dir']}")
    click.echo(f"  encoder:  {paths['encoder']}")
    _echo_best(paths["run_dir"])
    click.echo(f"  config:   {paths['config']}")
    click.echo(f"  history:  {paths['history']}")
    click.echo(f"  resume:   {paths['checkpoint']} (rerun with --out)")
    if not no_evaluate:
        # The dataset just trained on, not loaded a second time.
        _evaluate(paths["run_dir"], data=result["dataset"])


def _echo_best(run_dir):
    """Names the run's best encoder by its monitor, where it kept one."""
    from dim_keras.checkpointing import BEST_ENCODER_FILE
    from dim_keras.encoder_file import metadata_path
    from dim_keras.runs import DamagedFileError
    from dim_keras.runs import read_json

    path = os.path.join(run_dir, BEST_ENCODER_FILE)
    try:
        best = read_json(metadata_path(path)).get("best")
    except (OSError, DamagedFileError):
        return
    if isinstance(best, dict):
        click.echo(f"  best:     {path} (epoch {best.get('epoch')}, "
                   f"{best.get('monitor')} {best.get('value', 0):.4f})")


def _evaluate(run_dir, dataset=None, data_dir=None, data=None, **settings):
    """Evaluates a run, prints its table; one-line errors, no traceback."""
    from dim_keras.evaluation import EvaluationConfig
    from dim_keras.evaluation import evaluate_run
    from dim_keras.evaluation.report import markdown
    from dim_keras.runs import RunError

    try:
        config = EvaluationConfig(**{k: v for k, v in settings.items()
                                     if v is not None}).validate()
        results = evaluate_run(run_dir, dataset=dataset, data_dir=data_dir,
                               config=config, log=click.echo, data=data)
    except (RunError, ValueError) as e:
        fail(str(e), code=exit_code(e))
    click.echo("")
    click.echo(markdown(results))
    click.echo(f"Report: {results['paths']['markdown']} "
               f"(every number: {results['paths']['json']})")


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--dataset", default=None,
              help="Labelled dataset to evaluate on (default: the run's).")
@click.option("--data-dir", default=None, help="Where datasets are stored.")
@click.option("--seed", type=int, default=None, help="Seed (default 0).")
@click.option("--mlp-epochs", type=int, default=None,
              help="MLP probe epochs at most, early stopping (default 100).")
@click.option("--mine-steps", type=int, default=None,
              help="MINE critic training steps at most, stopped early on a "
                   "validation part of train (default 2000; 0 skips MINE).")
@click.option("--ndm-steps", type=int, default=None,
              help="NDM discriminator steps (default 500; 0 skips NDM).")
@click.option("--no-baselines", is_flag=True,
              help="Skip the random-weight and raw-pixel baselines.")
def evaluate(run_dir, dataset, data_dir, no_baselines, **settings):
    """Probe a run's encoder (linear, MLP, kNN), MINE, NDM, with baselines."""
    _evaluate(run_dir, dataset=dataset, data_dir=data_dir,
              baselines=not no_baselines, **settings)


@main.command()
@click.argument("run_dir")
@click.option("--format", "format_", type=Choice(EXPORT_FORMATS),
              default="saved_model", show_default=True,
              help="saved_model (TensorFlow, a 'serve' endpoint of uint8 "
                   "images, or for speech of float32 16 kHz waveforms) or "
                   "keras (.keras file).")
@click.option("--out", default=None,
              help="Output path (default: RUN_DIR/export/saved_model or "
                   "RUN_DIR/export/encoder.keras).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def export(run_dir, format_, out, overwrite):
    """Export a run's encoder (RUN_DIR or an encoder .keras file)."""
    from dim_keras.export import export_encoder
    from dim_keras.export import serves_waveforms

    try:
        path = export_encoder(run_dir, format_, out, overwrite=overwrite)
    except (ValueError, OSError) as e:
        fail(str(e))
    click.echo(f"Exported the encoder ({format_}) to {path}")
    if format_ == "saved_model" and serves_waveforms(path):
        click.echo("  load: tf.saved_model.load(path).serve(float32 "
                   "waveforms [batch, samples] at 16 kHz) -> {'fc', 'y'}")
    elif format_ == "saved_model":
        click.echo("  load: tf.saved_model.load(path).serve(uint8_images) "
                   "-> {'conv', 'fc', 'y'}")


@main.command()
@click.option("--data-dir", default=None,
              help="Where datasets are stored (default: TFDS's).")
def datasets(data_dir):
    """List the datasets, their sizes and whether their data is present."""
    from dim_keras.data.catalog import describe_all

    for line in describe_all(data_dir):
        click.echo(line)

@main.command()
@setting_options
@click.option("--tuner", type=Choice(TUNERS), default=search_default("tuner"),
              show_default=True)
@click.option("--max-trials", type=int, default=search_default("max_trials"),
              show_default=True,
              help="Trials in all; rerun with more to extend a search.")
@click.option("--epochs-per-trial", type=int,
              default=search_default("epochs_per_trial"), show_default=True,
              help="Training epochs per trial (Hyperband: the most).")
@click.option("--probe", type=Choice(PROBES), default=search_default("probe"),
              show_default=True, help="Scoring probe.")
@click.option("--layer", type=Choice(PROBED_LAYERS),
              default=search_default("layer"),
              show_default=True, help="Probed encoder output.")
@click.option("--val-fraction", type=float,
              default=search_default("val_fraction"), show_default=True,
              help="Share of labelled training images that scores probes.")
@click.option("--max-failed", type=int, default=search_default("max_failed"),
              show_default=True,
              help="Failed trials in a row that stop the search.")
@click.option("--verbose", is_flag=True, help="KerasTuner's and Keras' logs.")
@click.option("--out", required=True,
              help="Search directory; an existing search continues.")
@click.pass_context
def tune(ctx, out, tuner, max_trials, epochs_per_trial, probe, layer,
         val_fraction, max_failed, verbose, **options):
    """Search alpha, beta, gamma, estimator, lr, views, scales, score
    temperature and clipping by probe accuracy.

    A searched setting given as an option is pinned (not searched); the
    other settings given apply to every trial, which otherwise takes the
    dataset's recipe and view scheme as `dim-keras train` does.
    """
    from dim_keras.config import TrainConfig
    from dim_keras.runs import RunError

    try:
        from dim_keras.tuning.search import run_search
        from dim_keras.tuning.settings import SearchSettings
        from dim_keras.tuning.space import PINNABLE
    except ImportError as e:
        fail(f"dim-keras tune needs keras-tuner (pip install keras-tuner): {e}")
    given = given_settings(ctx, options)
    pins = {name: given.pop(name) for name in PINNABLE if name in given}
    try:
        settings = SearchSettings(
            base=TrainConfig(**given),
            tuner=tuner,
            max_trials=max_trials, epochs_per_trial=epochs_per_trial,
            pins=pins, probe=probe, layer=layer, val_fraction=val_fraction,
            max_failed=max_failed,
        ).validate()
        summary = run_search(settings, out, log=click.echo, verbose=verbose)
    except ValueError as e:
        fail(str(e))
    except RunError as e:
        fail(str(e), code=exit_code(e))
    except KeyboardInterrupt:
        fail(f"interrupted; rerun with --out {out} to continue.", code=130)
    if summary["role"] == "worker":
        click.echo("Worker done; the chief writes the results.")
        return
    paths, best = summary["paths"], summary["best"]
    click.echo(f"Trials: {paths['csv']}, {paths['markdown']}")
    if best is None:
        fail("no trial completed, so there is no best configuration.", code=1)
    click.echo(f"Best: trial {best['trial']}, val_probe_acc "
               f"{best['val_probe_acc']:.4f}; train it with: "
               f"dim-keras train --config {paths['best']}")


if __name__ == "__main__":
    main()
