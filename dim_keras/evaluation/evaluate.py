"""`evaluate_run`: the paper's evaluation of a training run, with baselines.

For a run directory written by `dim_keras.training.train`:

1. load its encoder (`encoder.keras`) and its dataset (`config.json`, or
   another dataset of the same image size);
2. extract `conv`, `fc` and `y` features of the labelled train and test
   splits;
3. probe each (linear, MLP, kNN), fitting on train and scoring on test;
4. estimate MINE I(X; Y) and the NDM of Y;
5. do the same for the baselines: the same architecture with random
   weights, and raw pixels (linear and kNN probes);
6. map the test split's Y in 2-D (t-SNE) for DIM and random weights;
7. write `evaluation.json`, `evaluation.md` and PNG plots in the run
   directory.

A run trained on speech is evaluated by speaker identification and
verification instead (`dim_keras.evaluation.speech`): `EVALUATORS` holds
the evaluation of each modality.
"""

import sys
import time

import numpy as np

from dim_keras import runs
from dim_keras.evaluation import report
from dim_keras.evaluation import speech
from dim_keras.evaluation.baselines import random_encoder
from dim_keras.evaluation.features import extract_features
from dim_keras.evaluation.settings import EvaluationConfig
from dim_keras.evaluation.timing import seconds_by_part
from dim_keras.progress import Progress
from dim_keras.progress import is_terminal
from dim_keras.runs import RunError



def labelled_split(dataset, split):
    """Images and labels of a split, refusing unlabelled data.

    Args:
        dataset: an `ImageDataset`.
        split: `"train"` or `"test"`.

    Returns:
        `(images, labels)` numpy arrays.

    Raises:
        RunError: when the split is missing or has no labels.
    """
    hint = (
        "the probes need labelled 'train' and 'test' splits; evaluate "
        "with --dataset NAME, a labelled dataset of the same image size."
    )
    if getattr(dataset, "num_classes", None) is None:
        raise RunError(f"Dataset {dataset.name!r} has no labels: {hint}")
    try:
        images, labels = dataset.arrays(split)
    except (ValueError, KeyError) as e:
        raise RunError(
            f"Dataset {dataset.name!r} has no {split!r} split ({e}): {hint}"
        ) from e
    if labels is None or len(labels) == 0 or np.all(np.asarray(labels) < 0):
        raise RunError(
            f"Dataset {dataset.name!r} has no labels in its {split!r} "
            f"split: {hint}"
        )
    labels = np.asarray(labels)
    keep = labels >= 0  # -1 marks unlabelled examples (e.g. STL-10)
    return np.asarray(images)[keep], labels[keep]


def _check_image_size(encoder, images, dataset_name):
    expected = tuple(encoder.input_shape[1:])
    got = tuple(images.shape[1:])
    if expected != got:
        raise RunError(
            f"The run's encoder takes images of shape {expected}, dataset "
            f"{dataset_name!r} has {got}; evaluate on a dataset of the same "
            f"image size. Received: images.shape={images.shape}"
        )


def _timed(fn, *args, **kwargs):
    started = time.time()
    result = fn(*args, **kwargs)
    result["seconds"] = round(time.time() - started, 2)
    return result


def _probe(name, train_x, train_y, test_x, test_y, config, num_classes,
           progress=None):
    from dim_keras.evaluation import probes

    if name == "linear":
        return probes.linear_probe(
            train_x, train_y, test_x, test_y, seed=config.seed,
            C=config.linear_c, max_iter=config.linear_max_iter,
            validation_fraction=config.validation_fraction,
            solver=config.linear_solver, num_classes=num_classes,
            epochs=config.linear_epochs,
            batch_size=config.linear_batch_size, progress=progress,
        )
    if name == "mlp":
        return probes.mlp_probe(
            train_x, train_y, test_x, test_y, seed=config.seed,
            learning_rate=config.mlp_learning_rate,
            batch_size=config.mlp_batch_size, epochs=config.mlp_epochs,
            patience=config.mlp_patience,
            validation_fraction=config.validation_fraction,
            num_classes=num_classes, progress=progress,
        )
    return probes.knn_probe(
        train_x, train_y, test_x, test_y, k=config.knn_k,
        temperature=config.knn_temperature, progress=progress,
    )


# Units a probe's progress line counts: (total of the config, unit); the
# linear probe sets its own (fits or epochs) once it has chosen its solver.
def _probe_progress(name, description, config, test_size, live, log):
    total, unit = {
        "linear": (None, ""),
        "mlp": (config.mlp_epochs, "epochs"),
        "knn": (test_size, "test images"),
    }[name]
    if name == "mlp":
        description += " (early stopping)"
    return Progress(description, total, unit, live=live, log=log)


def _run_probe(name, description, train_x, train_y, test_x, test_y, config,
               num_classes, live, log):
    """Runs a probe under a progress line; its end line has the accuracy."""
    progress = _probe_progress(name, description, config, len(test_y),
                               live, log)
    with progress:
        result = _timed(_probe, name, train_x, train_y, test_x, test_y,
                        config, num_classes, progress)
        progress.close(summary=f"accuracy {100 * result['accuracy']:.2f}%")
    return result


def _few_label_rows(representation, features, train_labels, test_labels,
                    config, log, live):
    """Linear and kNN probes on few labels per class (`few_labels`)."""
    from dim_keras.choices import FEW_LABEL_PROBES
    from dim_keras.evaluation.few_labels import few_label_probes
    from dim_keras.evaluation.few_labels import ladder_for

    rungs = ladder_for(train_labels, config.few_labels)
    kinds = [p for p in FEW_LABEL_PROBES if p in config.probes]
    if not rungs or not kinds:
        return []
    with Progress(f"  {'/'.join(kinds)} probes of {representation} on "
                  f"{', '.join(map(str, rungs))} labels per class "
                  f"({config.few_label_draws} draws)", live=live, log=log):
        return few_label_probes(
            representation, features, train_labels, test_labels,
            ladder=rungs, draws=config.few_label_draws, seed=config.seed,
            probes=kinds, knn_k=config.knn_k,
            knn_temperature=config.knn_temperature)


def _finetune_rows(encoder, train_images, train_labels, test_images,
                   test_labels, num_classes, config, log, live):
    """The encoder fine-tuned on few labels, against random init."""
    from dim_keras.evaluation.finetune import finetune_probes

    with Progress(f"  Fine-tuning DIM and random weights on "
                  f"{', '.join(map(str, config.few_labels))} labels per "
                  f"class ({config.few_label_draws} draws)", live=live,
                  log=log):
        return finetune_probes(
            encoder, train_images, train_labels, test_images, test_labels,
            num_classes, config.few_labels, config.few_label_draws,
            seed=config.seed)


def _dependence(representation, train, test, config, log, live=False):
    from dim_keras.evaluation.mine import mine
    from dim_keras.evaluation.ndm import ndm

    rows = []
    if config.mine_steps:
        progress = Progress(
            f"  MINE I(X; Y) of {representation} (early stopping)",
            config.mine_steps, "steps", live=live, log=log)
        with progress:
            result = _timed(
                mine, train["images"], train["y"], test["images"],
                test["y"], steps=config.mine_steps,
                batch_size=config.mine_batch_size, units=config.mine_units,
                learning_rate=config.mine_learning_rate,
                validation_fraction=config.validation_fraction,
                eval_every=config.mine_eval_every,
                patience=config.mine_patience, seed=config.seed,
                progress=progress,
            )
            progress.close(summary=f"{result['estimate']:.3f} nats")
        rows.append({"representation": representation, "layer": "y",
                     **result})
    if config.ndm_steps:
        progress = Progress(f"  NDM of {representation} Y",
                            config.ndm_steps, "steps", live=live, log=log)
        with progress:
            result = _timed(
                ndm, train["y"], test["y"], steps=config.ndm_steps,
                batch_size=config.ndm_batch_size,
                learning_rate=config.ndm_learning_rate, seed=config.seed,
                progress=progress,
            )
            progress.close(summary=f"{result['estimate']:.3f} nats")
        rows.append({"representation": representation, "layer": "y",
                     **result})
    return rows


def _embedding(representation, y, labels, config, log, live=False):
    from dim_keras.evaluation.embedding import embedding_map

    with Progress(f"  t-SNE map of {representation} Y "
                  f"({min(len(y), config.embedding_points)} test images)",
                  live=live, log=log):
        return _timed(embedding_map, y, labels,
                      max_points=config.embedding_points, seed=config.seed)


def evaluate_run(run_dir, dataset=None, data_dir=None, config=None,
                 log=print, verbose=None, data=None):
    """Evaluates a run's encoder and writes the report in its directory.

    Args:
        run_dir: str, a run directory from `dim-keras train`.
        dataset: str or None, dataset name; None takes the run's.
        data_dir: str or None, where datasets are stored; None takes the
            run's.
        config: `EvaluationConfig` or None for the defaults.
        log: callable for one-line progress messages.
        verbose: 1 rewrites a progress line with an ETA in place on a
            terminal for each step (features, probes, t-SNE, MINE, NDM)
            and writes one end line per step elsewhere; 0 only the end
            lines, through `log`; None is 1 on a terminal, else 0.
        data: the loaded `ImageDataset` to evaluate on, or None to load
            it by name (`dim-keras train` passes the one it trained on).

    Returns:
        The results dict (as written to `evaluation.json`), with `paths`.

    Raises:
        RunError: for a missing run, unlabelled data or mismatched image
            sizes, with a message saying what to do.
    """
    from dim_keras.data import get_dataset

    config = (config or EvaluationConfig()).validate()
    if verbose is None:
        verbose = 1 if is_terminal(sys.stdout) else 0
    started = time.time()
    run_config = runs.read_run_config(run_dir)
    # Every file of the run is read before the work starts.
    history = report.read_run_history(run_dir)
    try:
        encoder = runs.load_encoder(run_dir)
    except runs.DamagedFileError:
        raise
    except ValueError as e:
        raise RunError(str(e)) from e
    name = dataset or run_config.get("dataset")
    if data is None:
        try:
            # Image folders are read at the size the encoder takes.
            data = get_dataset(
                name,
                data_dir=data_dir or run_config.get("data_dir"),
                image_size=encoder.input_shape[1],
            )
        except ValueError as e:
            raise RunError(str(e)) from e
    evaluate = EVALUATORS.get(data.modality)
    if evaluate is None:
        raise RunError(
            f"No evaluation for the modality of {name}; expected one of "
            f"{sorted(EVALUATORS)}. Received: modality={data.modality!r}")
    return evaluate(run_dir, encoder, data, name, run_config, config,
                    history=history, log=log, verbose=verbose,
                    started=started)


def _evaluate_speech(run_dir, encoder, data, name, run_config, config,
                     history, log, verbose, started):
    """Speaker identification and verification (`evaluation.speech`)."""
    results = speech.evaluate_speech(run_dir, encoder, data, name,
                                     run_config, config, log=log,
                                     verbose=verbose)
    results["paths"] = report.write_report(run_dir, results, history)
    return results


def _evaluate_images(run_dir, encoder, data, name, run_config, config,
                     history, log, verbose, started):
    """The probes, MINE, NDM and t-SNE of an image encoder, with baselines.

    Args:
        run_dir: str, the run directory (the report is written there).
        encoder: the run's encoder.
        data: the labelled `ImageDataset`.
        name: str, the dataset's name.
        run_config: dict, the run's `config.json`.
        config: the validated `EvaluationConfig`.
        history: the run's history rows.
        log: callable for one-line messages.
        verbose: 1 for live progress lines, 0 for end lines only.
        started: `time.time()` when the evaluation started.

    Returns:
        The results dict, with `paths`.
    """
    live = None if verbose else False  # None: live on a terminal
    train_images, train_labels = labelled_split(data, "train")
    test_images, test_labels = labelled_split(data, "test")
    num_classes = int(data.num_classes)

    _check_image_size(encoder, train_images, name)
    log(f"Evaluating {run_dir} on {name} ({len(train_labels)} train, "
        f"{len(test_labels)} test images, {num_classes} classes).")

    encoders = {"dim": encoder}
    if config.baselines:
        encoders["random"] = random_encoder(encoder, config.seed)
    maps = {}
    layers = tuple(config.layers)
    feature_layers = tuple(dict.fromkeys(layers + ("y",)))
    probe_rows, dependence_rows, extraction = [], [], {}
    for representation, model in encoders.items():
        log(f"Features of the {representation} encoder "
            f"({', '.join(layers)}):")
        extracting = time.time()
        train = extract_features(
            model, train_images, feature_layers, config.batch_size,
            verbose=verbose, flatten=True,
            description=f"  Extracting features ({representation}, train)")
        test = extract_features(
            model, test_images, feature_layers, config.batch_size,
            verbose=verbose, flatten=True,
            description=f"  Extracting features ({representation}, test)")
        extraction[representation] = round(time.time() - extracting, 2)
        # A map of fewer than 3 test images says nothing: none is drawn.
        if config.embedding_points and len(test["y"]) >= 3:
            maps[representation] = _embedding(representation, test["y"],
                                              test_labels, config, log, live)
        probes = config.probes if representation == "dim" else [
            p for p in config.probes if p in config.baseline_probes]
        for layer in layers:
            for probe in probes:
                result = _run_probe(
                    probe, f"  {probe} probe on {representation} {layer} "
                    f"({train[layer].shape[1]} features)", train[layer],
                    train_labels, test[layer], test_labels, config,
                    num_classes, live, log)
                probe_rows.append({"representation": representation,
                                   "layer": layer, **result})
        probe_rows += _few_label_rows(
            representation, {layer: (train[layer], test[layer])
                             for layer in layers},
            train_labels, test_labels, config, log, live)
        train["images"], test["images"] = train_images, test_images
        dependence_rows += _dependence(representation, train, test,
                                       config, log, live)
    if config.finetune and config.few_labels:
        probe_rows += _finetune_rows(encoder, train_images, train_labels,
                                     test_images, test_labels, num_classes,
                                     config, log, live)
    if config.baselines:
        flat_train = train_images.reshape(len(train_images), -1)
        flat_test = test_images.reshape(len(test_images), -1)
        for probe in config.probes:
            if probe not in config.baseline_probes:
                continue
            result = _run_probe(
                probe, f"  {probe} probe on pixels ({flat_train.shape[1]} "
                "values)", flat_train, train_labels, flat_test, test_labels,
                config, num_classes, live, log)
            probe_rows.append({"representation": "pixels",
                               "layer": "pixels", **result})
        probe_rows += _few_label_rows(
            "pixels", {"pixels": (flat_train, flat_test)}, train_labels,
            test_labels, config, log, live)

    results = {
        "run_dir": run_dir,
        "dataset": name,
        "encoder": run_config.get("encoder"),
        "splits": {"train": int(len(train_labels)),
                   "test": int(len(test_labels))},
        "num_classes": num_classes,
        "chance_accuracy": float(np.max(np.bincount(test_labels))
                                 / len(test_labels)),
        "settings": config.to_dict(),
        "run_config": run_config,
        "probes": probe_rows,
        "dependence": dependence_rows,
        "seconds": round(time.time() - started, 1),
    }
    if maps:
        results["embedding"] = {
            "method": "t-SNE (scikit-learn), test split Y",
            **{k: v for k, v in maps["dim"].items()
               if k in ("points", "of", "perplexity", "seed")},
            "seconds": {k: m["seconds"] for k, m in maps.items()},
        }
    results["seconds_by_part"] = seconds_by_part(results, extraction)
    results["paths"] = report.write_report(run_dir, results, history,
                                           embeddings=maps)
    return results


# The evaluation of each modality (`dataset.modality`).
EVALUATORS = {"image": _evaluate_images, "audio": _evaluate_speech}
