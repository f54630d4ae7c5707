"""`dim-keras tune`: a KerasTuner search in a directory that survives restarts.

The search directory holds:

- `search.json`: the search's settings (all but `max_trials`); a rerun with
  other settings is refused, a rerun with the same ones continues;
- `kt/`: KerasTuner's project (the oracle's state, one `trial_<id>` folder
  per trial with `trial.json` and the trial's `run/` training directory);
- `trials.csv`, `trials.md` and `best.json` (see `tuning.results`).

Distributed tuning uses KerasTuner's own mechanism: with
`KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT` and `KERASTUNER_TUNER_ID`
set, the process whose id contains `chief` serves the oracle over gRPC and
writes the results when every trial has ended; the others (`tuner0`,
`tuner1`, ...) run trials. All share the search directory.
"""

import contextlib
import dataclasses
import json
import logging
import os

from dim_keras import atomic
from dim_keras.run_lock import RunLock
from dim_keras.runs import DamagedFileError
from dim_keras.runs import RunError
from dim_keras.runs import read_json
from dim_keras.tuning import scoring
from dim_keras.tuning.settings import SearchSettings  # noqa: F401
from dim_keras.tuning.tuner import RUN_DIR
from dim_keras.tuning.tuner import search_role

SETTINGS_FILE = "search.json"
PROJECT = "kt"


def _check_settings_file(out_dir, settings):
    path = os.path.join(out_dir, SETTINGS_FILE)
    wanted = settings.comparable()
    if os.path.exists(path):
        previous = read_json(path, remedy=(
            "use another --out, or remove the search directory to start "
            "the search over"))
        if previous != json.loads(json.dumps(wanted)):
            changed = sorted(
                k for k in set(previous) | set(wanted)
                if json.dumps(previous.get(k), sort_keys=True)
                != json.dumps(wanted.get(k), sort_keys=True)
            )
            raise RunError(
                f"{out_dir} holds a search with other settings "
                f"({', '.join(changed)}); use another --out, or the same "
                "settings (any --max-trials) to continue it."
            )
        return
    atomic.write_text(path, json.dumps(wanted, indent=2) + "\n")


def check_search_files(out_dir):
    """Reads every JSON file KerasTuner will reload from a search directory.

    KerasTuner fails on a damaged `oracle.json`, `tuner_*.json` or
    `trial.json` with a traceback from deep inside; this names the file.

    Args:
        out_dir: str, the search directory.

    Raises:
        DamagedFileError: naming the first damaged file.
    """
    remedy = ("remove that trial's directory (its trial is lost) or "
              "restore the file; use another --out to start over")
    project = os.path.join(out_dir, PROJECT)
    for root, dirs, files in os.walk(project):
        dirs.sort()
        if os.path.basename(root) == RUN_DIR:
            dirs[:] = []  # a trial's training run is checked when resumed
            continue
        for name in sorted(files):
            if name.endswith(".json"):
                read_json(os.path.join(root, name), remedy=remedy)


def run_search(settings, out_dir, log=print, verbose=False):
    """Runs (or continues) a search in `out_dir`.

    Args:
        settings: `SearchSettings`.
        out_dir: str, the search directory (created if needed).
        log: callable for one-line progress messages.
        verbose: show KerasTuner's own trial display and Keras' epochs.

    Returns:
        Dict with `role`, and for `"alone"` and `"chief"` the results of
        `dim_keras.tuning.results.write_results` (`rows`, `best`, `best_config`,
        `paths`).

    Raises:
        ValueError: on bad settings.
        RunError: if `out_dir` holds a search with other settings, or the
            search stopped after `max_failed` failed trials in a row.
        DamagedFileError: if a file of the search directory is damaged.
        RunLockedError: if another process serves a search in `out_dir`.
    """
    settings.validate()
    part = search_role()
    # One process writes the search directory: the one serving the search.
    lock = (contextlib.nullcontext() if part == "worker"
            else RunLock(out_dir, what="Search directory"))
    with lock:
        return _search_locked(settings, out_dir, part, log, verbose)


def _search_locked(settings, out_dir, part, log, verbose):
    """`run_search` from reading the search directory on."""
    from dim_keras.data import get_dataset
    from dim_keras.networks.encoders import ENCODER_IMAGE_SIZE
    from dim_keras.tuning import results
    from dim_keras.tuning.tuner import DIMHyperModel
    from dim_keras.tuning.tuner import DIMTuner
    from dim_keras.tuning.tuner import make_oracle

    base = settings.base
    dataset = get_dataset(
        base.dataset,
        data_dir=base.data_dir,
        image_size=ENCODER_IMAGE_SIZE.get(base.encoder),
    )
    # The search starts from the dataset's recipe (settings not given).
    base = base.with_dataset(dataset)
    settings = dataclasses.replace(settings, base=base)
    os.makedirs(out_dir, exist_ok=True)
    check_search_files(out_dir)
    _check_settings_file(out_dir, settings)

    split = scoring.validation_split(dataset, settings.val_fraction, base.seed)
    scorer = scoring.ProbeScorer(split, settings.probe, settings.layer,
                                 seed=base.seed,
                                 labels_per_class=settings.labels_per_class)
    oracle = make_oracle(
        settings.tuner, settings.max_trials, settings.epochs_per_trial,
        seed=base.seed, max_consecutive_failed_trials=settings.max_failed,
    )
    hypermodel = DIMHyperModel(base, settings.pins, settings.epochs_per_trial)
    try:
        tuner = DIMTuner(oracle, hypermodel, scorer, directory=out_dir,
                         project_name=PROJECT, log=log,
                         train_verbose=2 if verbose else 0)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        # Well-formed JSON that KerasTuner cannot rebuild its state from.
        raise DamagedFileError(
            os.path.join(out_dir, PROJECT),
            f"KerasTuner cannot reload the search: {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}",
            "use another --out to start over",
        ) from None
    if part == "alone":
        done = sum(t.status in ("COMPLETED", "FAILED")
                   for t in tuner.oracle.trials.values())
        log(
            f"Search in {out_dir}: {settings.tuner}, {done} of "
            f"{settings.max_trials} trials done, {len(split[0])} probe "
            f"training and {len(split[2])} validation images."
        )
    elif part == "chief":
        log(f"Chief: serving the {settings.tuner} oracle for {out_dir}.")
    else:
        log(f"Worker {tuner.tuner_id}: running trials for {out_dir}.")

    # KerasTuner prints a failed trial's traceback when DEBUG is on (its
    # default); the trial's table row and progress line give the reason.
    # KerasTuner has no public switch for it (keras_tuner.src.config only).
    from keras_tuner.src import config as kt_config

    kt_config.DEBUG = verbose
    if not verbose:
        # TensorFlow warns of retracing as each trial builds new models.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    stopped = None
    try:
        tuner.search(verbose=1 if (verbose or part == "chief") else 0)
    except RuntimeError as e:
        if "consecutive failures" not in str(e):
            raise
        stopped = str(e).splitlines()[0]
    if part == "worker":
        return {"role": part}
    if part == "chief":
        tuner.save()  # the oracle, now that no trial is ongoing
    summary = results.write_results(
        out_dir, tuner.oracle.trials.values(), tuner.trained_config,
        tuner.trial_failure,
    )
    summary["role"] = part
    if stopped:
        raise RunError(
            f"Search stopped: {stopped} (--max-failed "
            f"{settings.max_failed}). Results so far are in "
            f"{summary['paths']['markdown']}."
        )
    return summary
