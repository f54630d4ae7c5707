"""Do DIM encoders learn useful features? Probe accuracy per training recipe.

Run from the repository root:

    python benchmarks/quality.py --dataset digits --epochs 2
    python benchmarks/quality.py --dataset cifar10 --data-dir DIR \\
        --epochs 1 --steps-per-epoch 200 --seeds 0 1 \\
        --recipe '{"estimator": "nce"}' --recipe '{"estimator": "jsd"}'

A recipe is a set of `TrainConfig` settings: a JSON object, given inline or
as the path of a JSON file (`--recipe` may be repeated; none means the
defaults). `--epochs`, `--batch-size` and `--steps-per-epoch` apply to every
recipe and win over a recipe's own value; `--dataset`, `--data-dir` and
`--seeds` set `dataset`, `data_dir` and `seed`, which recipes may not set.

For every (recipe, seed) the script trains a fresh run in
`<out>/recipe<i>-seed<s>` (Keras's one line per epoch), loads its frozen
encoder and fits the project's linear and kNN probes
(`dim_keras.evaluation.probes`, `EvaluationConfig`'s settings) on the `conv`,
`fc` and `y` features of the dataset's labelled `train` split, scoring them
on its `test` split. Beside it, on the same splits: the same architecture
with random weights (`random_encoder`, computed once per architecture and
seed) and raw pixels (once per image size). Seeded like the run, the random
weights are the run's own initial weights (`train` seeds Keras before
building the model), so DIM minus random is what training added. Each phase
prints one line with the elapsed time.

It ends with a table, per recipe: mean ± std over seeds of the test
accuracy (%) of each probe, DIM minus random weights in points (paired by
seed), the training time and images/s: images seen / seconds from the
start of `fit` (data loaded, model built) to the last epoch's save. The
step's tracing counts, so very short runs understate the steady speed
(`throughput.py` times the step alone). Every number of every seed goes to
a JSON file (`--json`, default `<out>/quality.json`), rewritten after each
run. A run that stops on a non-finite loss is recorded with its error and
the others go on.
"""

import argparse
import importlib
import json
import logging
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LAYERS = ("conv", "fc", "y")
PROBES = ("linear", "knn")
REPRESENTATIONS = ("dim", "random", "pixels")
# Epochs of a run with a --minutes budget and no --epochs: a cap never met.
MAX_BUDGET_EPOCHS = 10000
# TrainConfig settings the command line sets for every recipe.
SHARED_FLAGS = ("epochs", "batch_size", "steps_per_epoch")
# Settings recipes may not set, and the flag that sets them.
RESERVED = {"dataset": "--dataset", "data_dir": "--data-dir",
            "seed": "--seeds"}


class QualityError(Exception):
    """A problem reported as one line, without a traceback."""


def parse_args(argv=None):
    """Parses the command line.

    Args:
        argv: list of str, or None for `sys.argv[1:]`.

    Returns:
        An `argparse.Namespace`.
    """
    p = argparse.ArgumentParser(
        description="Linear and kNN probe accuracy of DIM encoders trained "
                    "per recipe, beside random weights and raw pixels."
    )
    p.add_argument("--dataset", default="digits",
                   help="labelled dataset: digits, a TFDS name or "
                        "folder:PATH (default: digits)")
    p.add_argument("--data-dir", default=None,
                   help="where downloaded datasets live")
    p.add_argument("--recipe", action="append", default=[],
                   metavar="JSON_OR_FILE",
                   help="TrainConfig settings as a JSON object or a JSON "
                        "file; repeat for several (default: one recipe, the "
                        "defaults)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="seeds, each recipe trained once per seed")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs of every recipe (default: the recipe's, "
                        "else the dataset's)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="batch size of every recipe")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="batches per epoch of every recipe (default: one "
                        "pass over the training images)")
    p.add_argument("--minutes", type=float, default=None,
                   help="a training budget in wall-clock minutes of fit per "
                        "run: training stops at the first epoch end past it "
                        "(epochs: --epochs, else at most 10000); compares "
                        "recipes of different cost per image fairly")
    p.add_argument("--curve-points", type=int, default=0,
                   help="with --minutes: also probe the encoder as it was "
                        "at the first epoch end past each of this many "
                        "evenly spaced times, for accuracy against minutes "
                        "(default 0: the final encoder only)")
    p.add_argument("--linear-max-iter", type=int, default=None,
                   help="L-BFGS iterations of the linear probe at most "
                        "(default: EvaluationConfig's)")
    p.add_argument("--mine-steps", type=int, default=0,
                   help="also estimate MINE I(X; Y) of DIM's and the random "
                        "weights' Y with at most this many critic steps "
                        "(early stopping; default 0: skip)")
    p.add_argument("--knn-k", type=int, default=None,
                   help="neighbours of the kNN probe (default: "
                        "EvaluationConfig's)")
    p.add_argument("--out", default=None,
                   help="parent of the run directories "
                        "(default: runs/quality-<time>)")
    p.add_argument("--json", default=None,
                   help="where to write the results "
                        "(default: <out>/quality.json)")
    p.add_argument("--resume", action="store_true",
                   help="use run directories already in --out: an "
                        "unfinished run resumes, a finished one is only "
                        "probed again")
    return p.parse_args(argv)


# ---------------------------------------------------------------- recipes


def read_recipe(text):
    """The settings of one `--recipe`: inline JSON or a JSON file.

    Args:
        text: str, a JSON object, or the path of a file holding one.

    Returns:
        dict of setting name to value.

    Raises:
        QualityError: when it is neither, or not an object.
    """
    if text.lstrip().startswith("{"):
        source = text
    elif os.path.isfile(text):
        try:
            with open(text) as f:
                source = f.read()
        except OSError as e:
            raise QualityError(f"cannot read recipe file {text}: {e}")
    else:
        raise QualityError(
            "a recipe must be a JSON object or a JSON file. "
            f"Received: {text!r}"
        )
    try:
        values = json.loads(source)
    except json.JSONDecodeError as e:
        raise QualityError(f"recipe {text!r} is not valid JSON: {e}")
    if not isinstance(values, dict):
        raise QualityError(
            f"a recipe must be a JSON object. Received: {text!r}")
    return values


def recipe_label(values):
    """A short name for a recipe: its settings as `key=value`, or defaults.

    Args:
        values: dict of the recipe's own settings.

    Returns:
        str.
    """
    if not values:
        return "defaults"
    return ", ".join(f"{k}={v}" for k, v in values.items())


def build_recipes(args):
    """Validated `TrainConfig`s of every recipe, before any training.

    Args:
        args: parsed arguments.

    Returns:
        List of dicts with `index`, `label`, `given` (the recipe's own
        settings) and `config` (a validated `TrainConfig`, seed 0).

    Raises:
        QualityError: naming the recipe and the bad setting.
    """
    from dim_keras.config import TrainConfig

    texts = args.recipe or ["{}"]
    shared = {k: getattr(args, k) for k in SHARED_FLAGS
              if getattr(args, k) is not None}
    if args.minutes is not None:
        if not args.minutes > 0:
            raise QualityError(f"--minutes must be positive. Received: "
                               f"{args.minutes}")
        shared.setdefault("epochs", MAX_BUDGET_EPOCHS)
    elif args.curve_points:
        raise QualityError("--curve-points needs a --minutes budget. "
                           f"Received: --curve-points={args.curve_points}")
    recipes = []
    for index, text in enumerate(texts):
        given = read_recipe(text)
        try:
            reserved = sorted(set(given) & set(RESERVED))
            if reserved:
                raise ValueError(
                    f"set {', '.join(RESERVED[k] for k in reserved)} on the "
                    f"command line, not in a recipe. Received: {reserved}"
                )
            values = dict(given, **shared, dataset=args.dataset,
                          data_dir=args.data_dir)
            config = TrainConfig.from_dict(values).validate()
        except (ValueError, TypeError) as e:
            raise QualityError(f"recipe {index} ({text}): {e}")
        recipes.append({"index": index, "label": recipe_label(given),
                        "given": given, "config": config})
    return recipes


def probe_settings(args):
    """The probes' settings: `EvaluationConfig`'s, with the flags applied.

    Args:
        args: parsed arguments.

    Returns:
        dict with `batch_size`, `linear_c`, `linear_max_iter`, `knn_k`,
        `knn_temperature` and the MINE settings (`mine_steps`, 0: skip).
    """
    from dim_keras.evaluation import EvaluationConfig

    defaults = EvaluationConfig()

    def given(flag, default):
        return default if flag is None else flag

    settings = {
        "batch_size": defaults.batch_size,
        "linear_c": defaults.to_dict()["linear_c"],
        "linear_max_iter": given(args.linear_max_iter,
                                 defaults.linear_max_iter),
        "knn_k": given(args.knn_k, defaults.knn_k),
        "knn_temperature": defaults.knn_temperature,
        "mine_steps": args.mine_steps,
        "mine_batch_size": defaults.mine_batch_size,
        "mine_units": defaults.mine_units,
        "mine_learning_rate": defaults.mine_learning_rate,
        "mine_eval_every": defaults.mine_eval_every,
        "mine_patience": defaults.mine_patience,
        "validation_fraction": defaults.validation_fraction,
    }
    if settings["mine_steps"] < 0:
        raise QualityError(
            "--mine-steps must be non-negative. "
            f"Received: {settings['mine_steps']}")
    if settings["linear_max_iter"] < 1 or settings["knn_k"] < 1:
        raise QualityError(
            "--linear-max-iter and --knn-k must be positive. Received: "
            f"{settings['linear_max_iter']}, {settings['knn_k']}"
        )
    return settings


# ---------------------------------------------------------------- phases


class Clock:
    """Prints one-line messages prefixed with the seconds since start."""

    def __init__(self):
        self.started = time.perf_counter()

    def elapsed(self):
        """Seconds since the clock started."""
        return time.perf_counter() - self.started

    def log(self, message):
        """Prints `message` with the elapsed time, flushed at once."""
        print(f"[{self.elapsed():7.1f}s] {message}", flush=True)


def training_budget(minutes, curve_points=0):
    """A Keras callback: a wall-clock budget of fit, and encoder snapshots.

    Args:
        minutes: float or None, the budget; training stops at the first
            epoch end at or past it (None: no budget).
        curve_points: int, keep a copy of the encoder's weights at the
            first epoch end at or past each of this many evenly spaced
            times of the budget (the last one is the budget's end).

    Returns:
        The callback; after `fit`, its `snapshots` is a list of dicts with
        `epochs`, `minutes` and `weights`.
    """
    import keras

    class TrainingBudget(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            seconds = None if minutes is None else 60.0 * minutes
            self.seconds = seconds
            self.marks = ([seconds * (i + 1) / curve_points
                           for i in range(curve_points)]
                          if seconds and curve_points else [])
            self.snapshots = []

        def on_train_begin(self, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            elapsed = time.perf_counter() - self.started
            if self.marks and elapsed >= self.marks[0]:
                while self.marks and elapsed >= self.marks[0]:
                    self.marks.pop(0)
                self.snapshots.append({
                    "epochs": epoch + 1, "minutes": round(elapsed / 60, 2),
                    "weights": self.model.encoder.get_weights()})
            if self.seconds is not None and elapsed >= self.seconds:
                self.model.stop_training = True

    return TrainingBudget()


def train_run(config, run_dir, clock, callbacks=None):
    """Trains one run and times it.

    `fit_s` runs from `train`'s last message before `fit` (its "Training
    DIM on ..." line, printed once the model is built) to its return: the
    epochs with their saves, the step's tracing included, the data loading
    and model building not.

    Args:
        config: a validated `TrainConfig`.
        run_dir: str, a fresh run directory.
        clock: the `Clock` that prints progress.
        callbacks: list of extra Keras callbacks for `fit`, or None.

    Returns:
        dict with `config` (resolved), `dataset`, `history`, `wall_s`,
        `fit_s`, `images_seen` and `images_per_s` (None for a resumed run,
        whose time covers only part of its training).
    """
    from dim_keras.training import train

    marks = []

    def log(message):
        clock.log(message)
        marks.append(time.perf_counter())

    started = time.perf_counter()
    result = train(config, run_dir, verbose=2, log=log, callbacks=callbacks)
    ended = time.perf_counter()
    config, dataset = result["config"], result["dataset"]
    fit_s = ended - (marks[-1] if marks else started)
    steps = (config.steps_per_epoch
             or dataset.num_training_images // config.batch_size)
    images = result["epochs_done"] * steps * config.batch_size
    return {
        "config": config,
        "dataset": dataset,
        "history": result["history"],
        "wall_s": round(ended - started, 2),
        "fit_s": round(fit_s, 2),
        "images_seen": int(images),
        "images_per_s": (None if result.get("resumed")
                         else round(images / max(fit_s, 1e-9), 1)),
    }


def encoder_features(encoder, splits, settings):
    """Flattened `conv`, `fc` and `y` features of both splits.

    Both splits go through one `extract_features` call (one traced
    predict function instead of one per split).

    Args:
        encoder: a DIM encoder.
        splits: dict of split name to `(images, labels)`.
        settings: probe settings (`batch_size`).

    Returns:
        dict of split name to dict of layer name to `[N, features]`.
    """
    import numpy as np

    from dim_keras.evaluation.features import extract_features

    names = list(splits)
    images = np.concatenate([splits[name][0] for name in names])
    features = extract_features(encoder, images, layers=LAYERS,
                                batch_size=settings["batch_size"],
                                verbose=0, flatten=True)
    ends = np.cumsum([len(splits[name][0]) for name in names])
    return {
        name: {layer: features[layer][end - len(splits[name][0]):end]
               for layer in LAYERS}
        for name, end in zip(names, ends)
    }


def run_probes(name, features, splits, settings, seed, clock):
    """Linear and kNN probes on each layer of a representation.

    Args:
        name: str, the representation (`dim`, `random`, `pixels`).
        features: dict of split name to dict of layer name to features.
        splits: dict of split name to `(images, labels)`.
        settings: probe settings.
        seed: int, the linear probe's seed.
        clock: the `Clock` that prints progress.

    Returns:
        `(accuracy, rows)`: accuracy as `{probe: {layer: fraction}}`, and
        one dict per probe with the probe's own results and its seconds.
    """
    from dim_keras.evaluation import probes

    train_y, test_y = splits["train"][1], splits["test"][1]
    accuracy = {probe: {} for probe in PROBES}
    rows = []
    for layer in features["train"]:
        train_x, test_x = features["train"][layer], features["test"][layer]
        for probe in PROBES:
            started = time.perf_counter()
            if probe == "linear":
                result = probes.linear_probe(
                    train_x, train_y, test_x, test_y, seed=seed,
                    C=settings["linear_c"],
                    max_iter=settings["linear_max_iter"],
                    validation_fraction=settings["validation_fraction"])
            else:
                result = probes.knn_probe(
                    train_x, train_y, test_x, test_y, k=settings["knn_k"],
                    temperature=settings["knn_temperature"])
            seconds = round(time.perf_counter() - started, 2)
            accuracy[probe][layer] = result["accuracy"]
            rows.append(dict(result, representation=name, layer=layer,
                             seconds=seconds))
            what = name if layer == name else f"{name} {layer}"
            chosen = f", C={result['C']:g}" if "C_grid" in result else ""
            clock.log(f"  {probe} probe on {what} "
                      f"({train_x.shape[1]} features): "
                      f"{100 * result['accuracy']:.1f}% ({seconds:.1f} s"
                      f"{chosen})")
    return accuracy, rows


def mine_estimate(name, features, splits, settings, seed, clock):
    """MINE I(X; Y) between the images and a representation's Y, or None.

    Args:
        name: str, the representation (`dim`, `random`).
        features: dict of split name to dict of layer name to features.
        splits: dict of split name to `(images, labels)`.
        settings: probe settings (`mine_*`; `mine_steps` 0 skips).
        seed: int.
        clock: the `Clock` that prints progress.

    Returns:
        `dim_keras.evaluation.mine.mine`'s dict with its `seconds`, or
        None when skipped.
    """
    if not settings["mine_steps"]:
        return None
    from dim_keras.evaluation.mine import mine

    started = time.perf_counter()
    result = mine(
        splits["train"][0], features["train"]["y"], splits["test"][0],
        features["test"]["y"], steps=settings["mine_steps"],
        batch_size=settings["mine_batch_size"], units=settings["mine_units"],
        learning_rate=settings["mine_learning_rate"],
        validation_fraction=settings["validation_fraction"],
        eval_every=settings["mine_eval_every"],
        patience=settings["mine_patience"], seed=seed)
    result["seconds"] = round(time.perf_counter() - started, 2)
    clock.log(f"  MINE I(X; Y) of {name} y: {result['estimate']:.3f} nats "
              f"held out, {result['train_estimate']:.3f} on its training "
              f"pairs ({result['steps_run']} steps, {result['seconds']:.1f}"
              " s)")
    return result


def random_baseline(encoder, splits, settings, seed, clock):
    """Probes of `encoder`'s architecture with random weights.

    Args:
        encoder: the trained encoder (only its architecture is used).
        splits: dict of split name to `(images, labels)`.
        settings: probe settings.
        seed: int, seeds the weights and the probes.
        clock: the `Clock` that prints progress.

    Returns:
        dict with `accuracy`, `probes` (see `run_probes`) and `mine`
        (see `mine_estimate`).
    """
    from dim_keras.evaluation.evaluate import random_encoder

    clock.log(f"features of random weights (seed {seed})")
    features = encoder_features(random_encoder(encoder, seed), splits,
                                settings)
    accuracy, rows = run_probes("random", features, splits, settings, seed,
                                clock)
    return {"seed": seed, "accuracy": accuracy, "probes": rows,
            "mine": mine_estimate("random", features, splits, settings,
                                  seed, clock)}


def pixels_baseline(splits, settings, seed, clock):
    """Probes of the raw pixels, flattened.

    Args:
        splits: dict of split name to `(images, labels)`.
        settings: probe settings.
        seed: int, the linear probe's seed.
        clock: the `Clock` that prints progress.

    Returns:
        dict with `accuracy` and `probes` (see `run_probes`).
    """
    features = {split: {"pixels": images.reshape(len(images), -1)}
                for split, (images, _) in splits.items()}
    accuracy, rows = run_probes("pixels", features, splits, settings, seed,
                                clock)
    return {"seed": seed, "accuracy": accuracy, "probes": rows}


def labelled_splits(dataset):
    """The dataset's labelled `train` and `test` splits.

    Args:
        dataset: an `ImageDataset`.

    Returns:
        dict of split name to `(images, labels)`.
    """
    from dim_keras.evaluation.evaluate import labelled_split

    return {split: labelled_split(dataset, split)
            for split in ("train", "test")}


def probe_run(run_dir, trained, cache, settings, seed, clock):
    """Probes a trained run's encoder and its baselines.

    Random weights are probed once per (encoder, image size, dtype policy,
    seed) and
    pixels once per image size; `cache` keeps them for later runs.

    Args:
        run_dir: str, the run directory.
        trained: what `train_run` returned.
        cache: dict with `splits`, `random` and `pixels` dicts (updated).
        settings: probe settings.
        seed: int, the run's seed.
        clock: the `Clock` that prints progress.

    Returns:
        dict with `accuracy` (`{representation: {probe: {layer: ...}}}`),
        `probes` (the DIM encoder's rows), `mine` (`{"dim": ..., "random":
        ...}`, None where skipped) and `splits` (sizes).
    """
    from dim_keras.runs import load_encoder

    config = trained["config"]
    size = trained["dataset"].image_size
    if size not in cache["splits"]:
        cache["splits"][size] = labelled_splits(trained["dataset"])
    splits = cache["splits"][size]
    encoder = load_encoder(run_dir)
    clock.log(f"features of the trained encoder ({config.encoder})")
    features = encoder_features(encoder, splits, settings)
    accuracy, rows = run_probes("dim", features, splits, settings, seed,
                                clock)
    dim_mine = mine_estimate("dim", features, splits, settings, seed, clock)
    policy = getattr(encoder.dtype_policy, "name", "float32")
    # The architecture as trained: a channel split has two encoders.
    key = (f"{config.encoder}/{config.channel_split}/{size}px/{policy}/"
           f"seed{seed}")
    if key not in cache["random"]:
        cache["random"][key] = random_baseline(encoder, splits, settings,
                                               seed, clock)
    if size not in cache["pixels"]:
        cache["pixels"][size] = pixels_baseline(splits, settings, seed,
                                                clock)
    return {
        "accuracy": {"dim": accuracy,
                     "random": cache["random"][key]["accuracy"],
                     "pixels": cache["pixels"][size]["accuracy"]},
        "probes": rows,
        "mine": {"dim": dim_mine, "random": cache["random"][key]["mine"]},
        "random_baseline": key,
        "splits": {k: int(len(v[1])) for k, v in splits.items()},
    }


# ---------------------------------------------------------------- report


def spread(values):
    """Mean and sample standard deviation (0 for one value).

    Args:
        values: list of floats.

    Returns:
        dict with `mean`, `std` and `n`, or None when `values` is empty.
    """
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def summarize(runs):
    """Mean ± std over seeds of every number of a recipe's finished runs.

    Args:
        runs: list of run dicts (those with an `error` are skipped).

    Returns:
        dict: `accuracy` and `dim_minus_random` as
        `{representation: {probe: {layer: spread}}}` (the difference per
        probe and layer, paired by seed), `fit_s`, `wall_s` and
        `images_per_s`.
    """
    done = [r for r in runs if "error" not in r]
    accuracy, difference = {}, {}
    for rep in REPRESENTATIONS:
        accuracy[rep] = {}
        for probe in PROBES:
            layers = done[0]["accuracy"][rep][probe] if done else {}
            accuracy[rep][probe] = {
                layer: spread([r["accuracy"][rep][probe][layer]
                               for r in done])
                for layer in layers
            }
    for probe in PROBES:
        difference[probe] = {
            layer: spread([r["accuracy"]["dim"][probe][layer]
                           - r["accuracy"]["random"][probe][layer]
                           for r in done])
            for layer in LAYERS
        }
    summary = {"accuracy": accuracy, "dim_minus_random": difference}
    if done and done[0].get("mine", {}).get("dim"):
        summary["mine"] = {
            rep: {key: spread([r["mine"][rep][key] for r in done])
                  for key in ("estimate", "train_estimate")}
            for rep in ("dim", "random")
        }
    for name in ("fit_s", "wall_s", "images_per_s"):
        summary[name] = spread([r[name] for r in done
                                if r[name] is not None])
    return summary


def percent(stat, sign=False, std=True):
    """A spread of fractions as `mean±std` in percent (or points)."""
    if stat is None:
        return "-"
    text = f"{100 * stat['mean']:{'+' if sign else ''}.1f}"
    if std and stat["n"] > 1:
        text += f"±{100 * stat['std']:.1f}"
    return text


def number(stat, digits=0):
    """A spread as `mean±std` with `digits` decimals."""
    if stat is None:
        return "-"
    text = f"{stat['mean']:.{digits}f}"
    if stat["n"] > 1:
        text += f"±{stat['std']:.{digits}f}"
    return text


def table(report):
    """The results table, one row per recipe and layer.

    Args:
        report: the results dict (`recipes` with their `summary`).

    Returns:
        str, the table with a title line.
    """
    data = report["dataset"]
    lines = [
        f"Probe accuracy (%) on {data['name']} ({data['splits']['train']} "
        f"train / {data['splits']['test']} test images), mean±std over "
        f"seeds {' '.join(map(str, report['seeds']))}; DIM-rand in points; "
        "train s: fit time; images/s: training images seen / fit time."
    ]
    labels = [f"{r['index']}: {r['label']}" for r in report["recipes"]]
    width = max([len("recipe")] + [len(x) for x in labels])
    header = ["layer", "lin DIM", "lin rand", "lin pix", "lin DIM-rnd",
              "kNN DIM", "kNN rand", "kNN pix", "kNN DIM-rnd", "train s",
              "images/s"]
    widths = [5] + [max(9, len(h)) for h in header[1:]]

    def row(first, cells):
        return "  ".join([first.ljust(width)] + [
            str(c).rjust(w) for c, w in zip(cells, widths)])

    lines += [row("recipe", header), "-" * len(row("", header))]
    for label, recipe in zip(labels, report["recipes"]):
        summary = recipe["summary"]
        if summary["fit_s"] is None:
            lines.append(row(label, ["all runs failed"]))
            continue
        acc, diff = summary["accuracy"], summary["dim_minus_random"]
        for i, layer in enumerate(LAYERS):
            cells = [layer]
            for probe in PROBES:
                pixels = acc["pixels"][probe].get("pixels")
                cells += [percent(acc["dim"][probe].get(layer)),
                          percent(acc["random"][probe].get(layer)),
                          percent(pixels, std=False),  # computed once
                          percent(diff[probe].get(layer), sign=True)]
            if i == 0:
                cells += [number(summary["fit_s"], 1),
                          number(summary["images_per_s"])]
            lines.append(row(label if i == 0 else "", cells))
    lines += mine_lines(labels, report["recipes"])
    return "\n".join(lines)


def mine_lines(labels, recipes):
    """MINE I(X; Y) of DIM's and random weights' Y per recipe, if measured."""
    lines = []
    for label, recipe in zip(labels, recipes):
        mine = recipe["summary"].get("mine")
        if not mine:
            continue
        if not lines:
            lines = ["", "MINE I(X; Y) of y (nats), held-out test pairs "
                         "(its training pairs in brackets), mean±std:"]
        lines.append(
            f"{label}: DIM {number(mine['dim']['estimate'], 3)} "
            f"({number(mine['dim']['train_estimate'], 3)}), random "
            f"{number(mine['random']['estimate'], 3)} "
            f"({number(mine['random']['train_estimate'], 3)})")
    return lines


def versions():
    """Versions of Python, Keras, its backend and the probes' libraries."""
    import keras
    import numpy
    import sklearn

    from dim_keras.version import __version__

    backend = keras.backend.backend()
    info = {"python": platform.python_version(), "keras": keras.__version__,
            "backend": backend, "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__, "dim_keras": __version__}
    try:
        info[backend + "_version"] = importlib.import_module(
            backend).__version__
    except (ImportError, AttributeError):
        pass
    return info


def write_json(path, report):
    """Writes `report` to `path` atomically (a `.partial` file, renamed)."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = path + ".partial"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, path)


# ---------------------------------------------------------------- main


def fresh_run_dirs(out, recipes, seeds, allow_used=False):
    """The run directory of every (recipe, seed), refusing used ones.

    Args:
        out: str, the parent folder.
        recipes: list of recipe dicts.
        seeds: list of ints.
        allow_used: bool, accept directories that hold runs (`--resume`).

    Returns:
        dict of `(recipe index, seed)` to run directory.

    Raises:
        QualityError: when one already holds files (it would resume).
    """
    dirs = {(r["index"], s): os.path.join(out, f"recipe{r['index']}-seed{s}")
            for r in recipes for s in seeds}
    used = [d for d in dirs.values() if os.path.isdir(d) and os.listdir(d)]
    if used and not allow_used:
        raise QualityError(
            f"{used[0]} already holds a run; choose a new --out, or "
            "--resume to use it.")
    return dirs


def new_report(args, recipes, settings):
    """The results dict before any run."""
    return {
        "benchmark": "quality",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": versions(),
        "machine": {"cpu": platform.machine(), "cores": os.cpu_count()},
        "dataset": {"name": args.dataset, "data_dir": args.data_dir,
                    "splits": {}},
        "seeds": list(args.seeds),
        "probe_settings": settings,
        "recipes": [{"index": r["index"], "label": r["label"],
                     "given": r["given"], "config": r["config"].to_dict(),
                     "runs": []} for r in recipes],
        "baselines": {},
        "complete": False,
    }


def curve(snapshots, run_dir, trained, cache, settings, seed, clock):
    """Linear and kNN accuracy of the encoder at each snapshot.

    Args:
        snapshots: the budget callback's snapshots but the final
            encoder's (probed as every run's is).
        run_dir, trained, cache, settings, seed, clock: as `probe_run`.

    Returns:
        list of dicts with `epochs`, `minutes` and `accuracy`
        (`{probe: {layer: fraction}}`).
    """
    from dim_keras.runs import load_encoder

    splits = cache["splits"][trained["dataset"].image_size]
    encoder = load_encoder(run_dir)
    points = []
    for snapshot in snapshots:
        encoder.set_weights(snapshot["weights"])
        clock.log(f"curve: the encoder after {snapshot['epochs']} epochs "
                  f"({snapshot['minutes']:.1f} min)")
        features = encoder_features(encoder, splits, settings)
        accuracy, _ = run_probes("dim", features, splits, settings, seed,
                                 clock)
        points.append({"epochs": snapshot["epochs"],
                       "minutes": snapshot["minutes"], "accuracy": accuracy})
    return points


def one_run(recipe, seed, run_dir, cache, settings, clock, minutes=None,
            curve_points=0):
    """Trains and probes one (recipe, seed).

    Args:
        recipe: a recipe dict.
        seed: int.
        run_dir: str, its fresh run directory.
        cache: the baselines cache (see `probe_run`).
        settings: probe settings.
        clock: the `Clock` that prints progress.
        minutes: float or None, the training budget (`training_budget`).
        curve_points: int, snapshots probed along the budget.

    Returns:
        `(run dict, resolved config dict or None, splits)`; a run that
        failed (a non-finite loss, a setting the data refuses) has an
        `error` instead of results.
    """
    from dim_keras.runs import RunError

    config = recipe["config"].replace(seed=seed)
    clock.log(f"recipe {recipe['index']} ({recipe['label']}), seed {seed}: "
              f"training into {run_dir}")
    budget = training_budget(minutes, curve_points)
    try:
        trained = train_run(config, run_dir, clock, callbacks=[budget])
    except RunError as e:
        clock.log(f"recipe {recipe['index']}, seed {seed} failed: {e}")
        return {"seed": seed, "run_dir": run_dir, "error": str(e)}, None, {}
    if trained["images_per_s"] is None:
        clock.log(f"resumed: {trained['images_seen']} images in all, "
                  f"{trained['fit_s']:.1f} s of fit now (no images/s)")
    else:
        clock.log(f"trained: {trained['images_seen']} images in "
                  f"{trained['fit_s']:.1f} s of fit "
                  f"({trained['images_per_s']:.0f} images/s; "
                  f"{trained['wall_s']:.1f} s with loading and building)")
    result = probe_run(run_dir, trained, cache, settings, seed, clock)
    run = {"seed": seed, "run_dir": run_dir,
           "history": trained["history"],
           **{k: trained[k] for k in ("wall_s", "fit_s", "images_seen",
                                      "images_per_s")},
           "accuracy": result["accuracy"], "probes": result["probes"],
           "mine": result["mine"],
           "random_baseline": result["random_baseline"]}
    if minutes is not None:
        run["minutes"] = round(trained["fit_s"] / 60, 2)
        run["epochs_done"] = len(trained["history"])
        # The final encoder is probed above: its snapshot is not again.
        snapshots = [s for s in budget.snapshots
                     if s["epochs"] != run["epochs_done"]]
        points = curve(snapshots, run_dir, trained, cache, settings, seed,
                       clock)
        run["curve"] = points + [{"epochs": run["epochs_done"],
                                  "minutes": run["minutes"],
                                  "accuracy": result["accuracy"]["dim"]}]
    return run, trained["config"].to_dict(), result["splits"]


def run_all(args, recipes, settings, dirs, report, json_path, clock):
    """Trains and probes every (recipe, seed), saving the JSON after each."""
    cache = {"splits": {}, "random": {}, "pixels": {}}
    for recipe, entry in zip(recipes, report["recipes"]):
        for seed in args.seeds:
            run, config, splits = one_run(recipe, seed,
                                          dirs[(recipe["index"], seed)],
                                          cache, settings, clock,
                                          minutes=args.minutes,
                                          curve_points=args.curve_points)
            entry["runs"].append(run)
            if config is not None:
                entry["config"] = dict(config, seed=None)
                report["dataset"]["splits"] = splits
            entry["summary"] = summarize(entry["runs"])
            report["baselines"] = {
                "random": cache["random"],
                "pixels": {f"{k}px": v for k, v in cache["pixels"].items()},
            }
            write_json(json_path, report)


def main(argv=None):
    """Runs the benchmark.

    Args:
        argv: list of str, or None for `sys.argv[1:]`.

    Returns:
        0 on success.

    Raises:
        SystemExit: with a one-line error on stderr for bad arguments,
            missing data or a failed run directory.
    """
    args = parse_args(argv)
    # TensorFlow's notes on retraced predict functions (one per encoder
    # and batch shape here) are expected; its errors still show.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    clock = Clock()
    try:
        if len(set(args.seeds)) < len(args.seeds):
            raise QualityError(f"--seeds repeats a seed. Received: "
                               f"{args.seeds}")
        recipes = build_recipes(args)
        settings = probe_settings(args)
        out = args.out or os.path.join(
            "runs", "quality-" + time.strftime("%Y%m%d-%H%M%S"))
        json_path = args.json or os.path.join(out, "quality.json")
        dirs = fresh_run_dirs(out, recipes, args.seeds,
                              allow_used=args.resume)
    except QualityError as e:
        print(f"quality.py: error: {e}", file=sys.stderr)
        raise SystemExit(2)

    from dim_keras.data import DatasetError
    from dim_keras.runs import RunError

    report = new_report(args, recipes, settings)
    clock.log(f"{len(recipes)} recipe(s) x {len(args.seeds)} seed(s) on "
              f"{args.dataset}, runs in {out}")
    try:
        run_all(args, recipes, settings, dirs, report, json_path, clock)
    except (DatasetError, RunError) as e:
        print(f"quality.py: error: {e}", file=sys.stderr)
        raise SystemExit(1)
    report["complete"] = True
    report["seconds"] = round(clock.elapsed(), 1)
    write_json(json_path, report)
    print()
    print(table(report))
    print(f"\nwrote {json_path} ({report['seconds']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
