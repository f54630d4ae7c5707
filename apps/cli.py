"""The `dim-keras` command line: a thin shell over `dim_keras`."""

import json
import os
import sys

import click

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def fail(message, code=2):
    """Prints a one-line error and exits with a non-zero code."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _default_run_dir(dataset):
    import datetime

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = dataset.replace("/", "_").replace(":", "_")
    return os.path.join("runs", f"{safe}-{stamp}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Deep InfoMax: learn image representations without labels."""


@main.command()
@click.option("--dataset", default="digits", show_default=True,
              help="Dataset name.")
@click.option("--data-dir", default=None, help="Where datasets are stored.")
@click.option("--encoder", default=None,
              help="basic32x32 or alex64x64 (default: the dataset's).")
@click.option("--estimator", default="jsd", show_default=True,
              help="MI estimator: jsd, dv or nce.")
@click.option("--alpha", type=float, default=0.0, show_default=True,
              help="Weight of global MI.")
@click.option("--beta", type=float, default=1.0, show_default=True,
              help="Weight of local MI.")
@click.option("--gamma", type=float, default=0.1, show_default=True,
              help="Weight of prior matching.")
@click.option("--epochs", type=int, default=None,
              help="Epochs (default: the dataset's).")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True,
              help="Adam learning rate (betas 0.5, 0.999).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--local-critic", default="encode_and_dot", show_default=True,
              help="encode_and_dot or concat_and_convolve.")
@click.option("--critic-units", type=int, default=None,
              help="Local critic width (default 2048 / 512).")
@click.option("--gradient-penalty", type=float, default=1.0,
              show_default=True, help="Prior discriminator's penalty.")
@click.option("--no-jit", is_flag=True,
              help="Never XLA-compile the step (default: on GPUs only).")
@click.option("--config", "config_file", default=None,
              type=click.Path(dir_okay=False),
              help="JSON file of settings (options given also apply).")
@click.option("--out", default=None,
              help="Run directory (default: runs/<dataset>-<time>). "
                   "An existing run there is resumed.")
@click.pass_context
def train(ctx, config_file, out, no_jit, **options):
    """Train a DIM encoder."""
    from dim_keras.training import RunError
    from dim_keras.training import TrainConfig

    options["jit_compile"] = False if no_jit else None  # None: auto
    try:
        values = {}
        if config_file:
            try:
                with open(config_file) as f:
                    values.update(json.load(f))
            except (OSError, json.JSONDecodeError) as e:
                fail(f"cannot read --config {config_file}: {e}")
        for name, value in options.items():
            if name == "jit_compile":
                explicit = no_jit
            else:
                explicit = ctx.get_parameter_source(name).name != "DEFAULT"
            if explicit or name not in values:
                values[name] = value
        config = TrainConfig.from_dict(values).validate()
    except (ValueError, TypeError) as e:
        fail(str(e))

    run_dir = out or _default_run_dir(config.dataset)
    from dim_keras.training import train as run_training

    try:
        result = run_training(config, run_dir)
    except RunError as e:
        fail(str(e), code=1)
    except KeyboardInterrupt:
        fail(f"interrupted; rerun with --out {run_dir} to resume.", code=130)
    paths = result["paths"]
    if result["trained"]:
        last = result["history"][-1]
        click.echo(
            f"Done: {result['epochs_done']} epochs, loss "
            f"{last['loss']:.4f}, local MI {last['local_mi']:.4f}, "
            f"global MI {last['global_mi']:.4f}."
        )
    click.echo(f"Run directory: {paths['run_dir']}")
    click.echo(f"  encoder:  {paths['encoder']}")
    click.echo(f"  config:   {paths['config']}")
    click.echo(f"  history:  {paths['history']}")
    click.echo(f"  resume:   {paths['checkpoint']} (rerun with --out)")


if __name__ == "__main__":
    main()
