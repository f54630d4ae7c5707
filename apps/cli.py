"""The `dim-keras` command line: a thin shell over `dim_keras`."""

import os
import sys

import click

# Choices and defaults come from the library, where they are written once.
# Neither module imports Keras: the backend is chosen after start-up.
from dim_keras.apps.options import Choice
from dim_keras.apps.options import SETTING_OPTIONS  # noqa: F401
from dim_keras.apps.options import setting
from dim_keras.apps.options import fail
from dim_keras.apps.options import given_settings
from dim_keras.apps.options import setting_options
from dim_keras.choices import BACKENDS
from dim_keras.choices import EXPORT_FORMATS
from dim_keras.choices import LINEAR_SOLVERS
from dim_keras.choices import PROBED_LAYERS
from dim_keras.choices import PROBES
from dim_keras.choices import TUNERS
from dim_keras.tuning.settings import default as search_default

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def exit_code(error):
    """2 for bad input (a damaged file), 1 for other failures of a run."""
    from dim_keras.runs import DamagedFileError

    return 2 if isinstance(error, DamagedFileError) else 1


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


@main.command()
@setting_options
@setting("epochs", "--epochs", type=int,
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
@click.option("--full-evaluation", is_flag=True,
              help="Also run the MLP probe, the t-SNE map, MINE and NDM "
                   "after training (minutes; `dim-keras evaluate` runs "
                   "them later).")
@click.pass_context
def train(ctx, config_file, out, no_evaluate, full_evaluation, backend,
          **options):
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
        from dim_keras.evaluation.settings import AFTER_TRAINING

        # The dataset just trained on, not loaded a second time.
        _evaluate(paths["run_dir"], data=result["dataset"],
                  **({} if full_evaluation else AFTER_TRAINING))
        if not full_evaluation:
            click.echo(
                "The MLP probe, the t-SNE map, MINE and NDM were left out "
                "to keep this quick: "
                f"`dim-keras evaluate {paths['run_dir']}` adds them "
                "(or train with --full-evaluation).")


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
        if isinstance(settings.get("few_labels"), str):
            settings["few_labels"] = _ladder(settings["few_labels"])
        config = EvaluationConfig(**{k: v for k, v in settings.items()
                                     if v is not None}).validate()
    except ValueError as e:
        fail(str(e))  # a bad option: usage error
    try:
        results = evaluate_run(run_dir, dataset=dataset, data_dir=data_dir,
                               config=config, log=click.echo, data=data)
    except (RunError, ValueError) as e:
        fail(str(e), code=exit_code(e))
    click.echo("")
    click.echo(markdown(results))
    click.echo(f"Report: {results['paths']['markdown']} "
               f"(every number: {results['paths']['json']})")


def _ladder(text):
    """`--few-labels` as a tuple of ints ('none': empty)."""
    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            "--few-labels takes labels per class separated by commas, "
            f"such as 1,10,100, or 'none'. Received: --few-labels={text}"
        ) from None


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--dataset", default=None,
              help="Labelled dataset to evaluate on (default: the run's).")
@click.option("--data-dir", default=None, help="Where datasets are stored.")
@click.option("--seed", type=int, default=None, help="Seed (default 0).")
@click.option("--linear-solver", type=Choice(LINEAR_SOLVERS), default=None,
              help="Linear probe solver: scikit-learn's exact L-BFGS on the "
                   "CPU, minibatch Adam on the training device, or auto "
                   "(default: L-BFGS on small probes, minibatch on large).")
@click.option("--mlp-epochs", type=int, default=None,
              help="MLP probe epochs at most, early stopping (default 100).")
@click.option("--mine-steps", type=int, default=None,
              help="MINE critic training steps at most, stopped early on a "
                   "validation part of train (default 2000; 0 skips MINE).")
@click.option("--ndm-steps", type=int, default=None,
              help="NDM discriminator steps (default 500; 0 skips NDM).")
@click.option("--few-labels", default=None,
              help="Labels per class of the few-label probes, comma-"
                   "separated (default 1,10,100: those below the smallest "
                   "class run); 'none' skips them.")
@click.option("--few-label-draws", type=int, default=None,
              help="Random draws of the labelled images per rung "
                   "(default 5).")
@click.option("--finetune", is_flag=True, default=None,
              help="Also fine-tune the encoder with a linear head on the "
                   "few-label draws, against the network trained from "
                   "random weights (slow on a CPU).")
@click.option("--no-baselines", is_flag=True,
              help="Skip the random-weight and raw-pixel baselines.")
def evaluate(run_dir, dataset, data_dir, no_baselines, **settings):
    """Probe a run's encoder (linear, MLP, kNN, few labels), MINE, NDM."""
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
@click.option("--score", default="all", show_default=True,
              help="Labels per class the scoring probe fits on: all, or N "
                   "(a linear or kNN probe on N labelled images per class, "
                   "the mean of 5 draws: closer to a user with few labels).")
@click.option("--max-failed", type=int, default=search_default("max_failed"),
              show_default=True,
              help="Failed trials in a row that stop the search.")
@click.option("--verbose", is_flag=True, help="KerasTuner's and Keras' logs.")
@click.option("--out", required=True,
              help="Search directory; an existing search continues.")
@click.pass_context
def tune(ctx, out, tuner, max_trials, epochs_per_trial, probe, layer,
         val_fraction, score, max_failed, verbose, **options):
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
    if score.strip().lower() == "all":
        labels_per_class = None
    elif score.strip().isdigit():
        labels_per_class = int(score)
    else:
        fail("--score takes all or a number of labels per class. "
             f"Received: --score={score}")
    try:
        settings = SearchSettings(
            base=TrainConfig(**given),
            tuner=tuner,
            max_trials=max_trials, epochs_per_trial=epochs_per_trial,
            pins=pins, probe=probe, layer=layer, val_fraction=val_fraction,
            max_failed=max_failed, labels_per_class=labels_per_class,
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
