"""The evaluation of a speech run: speaker identification and verification.

For a run trained on speech (`dim_keras.data.audio.AudioDataset`), the
representations are computed on fixed, non-overlapping chunks of every
utterance (`AudioDataset.chunks`, the encoder's chunk length) and scored
two ways:

- speaker identification: a linear probe (`probes.linear_probe`) fit on the
  train split's chunks, its accuracy on the test split's chunks;
- speaker verification: the equal error rate of cosine-scored trials
  between test chunks (`verification.speaker_verification_eer`), the
  features standardized by the train split's mean and standard deviation.

The representations: the run's Y, Y of the same architecture with random
weights, and log-mel statistics (`spectral.log_mel_statistics`, the mean and
standard deviation over time of 40 log mel energies).
"""

import time

import numpy as np

from dim_keras.evaluation.features import extract_features
from dim_keras.evaluation.linear_settings import linear_probe_settings
from dim_keras.progress import Progress

# Names and titles of the representations, in table order.
REPRESENTATIONS = ("dim", "random", "log_mel")
TITLES = {"dim": "DIM Y", "random": "Random weights Y",
          "log_mel": "Log-mel statistics"}


# Verification trials at most (half same-speaker, half not).
MAX_TRIALS = 10000


def num_trials(labels, most=MAX_TRIALS):
    """The balanced trials that distinct pairs of items allow, at most `most`.

    Example: 3 speakers of 2 items each give 3 same-speaker pairs (and 12
    others), so at most 6 balanced trials.

    >>> num_trials([0, 0, 1, 1, 2, 2])
    6

    Args:
        labels: int array `[N]`, each item's speaker.
        most: int, the trials wanted.

    Returns:
        int, even.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64))
    same = int(np.sum(counts * (counts - 1) // 2))
    total = len(labels) * (len(labels) - 1) // 2
    return 2 * min(most // 2, same, total - same)


def _scores(representation, train_x, train_y, test_x, test_y, config, log,
            live):
    """The linear probe's accuracy and the verification EER of features."""
    from dim_keras.evaluation.probes import linear_probe
    from dim_keras.evaluation.verification import speaker_verification_eer

    title = TITLES[representation]
    with Progress(f"  Linear probe on {title} ({train_x.shape[1]} "
                  "features)", live=live, log=log) as progress:
        started = time.time()
        probe = linear_probe(train_x, train_y, test_x, test_y,
                             seed=config.seed, C=config.linear_c,
                             max_iter=config.linear_max_iter,
                             validation_fraction=config.validation_fraction)
        probe["seconds"] = round(time.time() - started, 2)
        progress.close(summary=f"accuracy {100 * probe['accuracy']:.2f}%")
    # Cosine of features standardized by the train split's statistics (raw
    # log-mel statistics are all large negative logs, alike in direction);
    # the raw features' EER is kept as `eer_raw`.
    mean = train_x.mean(axis=0)
    std = np.maximum(train_x.std(axis=0), 1e-8)
    trials = num_trials(test_y)
    verification = speaker_verification_eer(
        (test_x - mean) / std, test_y, trials, seed=config.seed)
    verification["eer_raw"] = speaker_verification_eer(
        test_x, test_y, trials, seed=config.seed)["eer"]
    verification["standardized"] = "train split mean and std"
    log(f"  Verification EER of {title}: {100 * verification['eer']:.2f}%")
    return probe, verification


def evaluate_speech(run_dir, encoder, data, name, run_config, config,
                    log=print, verbose=0):
    """Speaker identification and verification of a speech run's encoder.

    Args:
        run_dir: str, the run directory.
        encoder: the run's encoder (waveforms `[N, chunk_length, 1]`).
        data: the `AudioDataset`, with `train` and `test` splits sharing
            speakers; it is read in chunks of the encoder's length.
        name: str, the dataset's name.
        run_config: dict, the run's `config.json`.
        config: the `EvaluationConfig` (its `seed`, `batch_size`,
            `baselines`, `linear_c`, `linear_max_iter` and
            `validation_fraction` apply).
        log: callable for one-line messages.
        verbose: 1 for live progress lines on a terminal, 0 for end lines.

    Returns:
        The results dict (`modality` `"audio"`): `probes` (linear probe
        rows, `layer` `"y"` or `"log_mel"`) and `verification` (EER rows),
        one row per representation.

    Raises:
        RunError: when the test split has too few chunks for verification
            trials.
    """
    from dim_keras.evaluation.baselines import random_encoder
    from dim_keras.evaluation.spectral import log_mel_statistics
    from dim_keras.runs import RunError

    started = time.time()
    # The run's chunks: the length its encoder reads (`chunk_seconds`).
    data = data.with_chunk_length(encoder.input_shape[1])
    live = None if verbose else False  # None: live on a terminal
    train_x, train_y, _ = data.chunks("train")
    test_x, test_y, _ = data.chunks("test")
    if num_trials(test_y) < 2:
        raise RunError(
            "Speaker verification needs two test chunks of one speaker and "
            f"two of different speakers. Received: {len(test_y)} test chunks "
            f"of {len(np.unique(test_y))} speakers"
        )
    speakers = np.unique(np.concatenate([train_y, test_y]))
    seconds = data.chunk_length / data.sample_rate
    log(f"Evaluating {run_dir} on {name} ({len(train_y)} train, "
        f"{len(test_y)} test chunks of {seconds:g} s, {len(speakers)} "
        "speakers).")
    encoders = {"dim": encoder}
    if config.baselines:
        encoders["random"] = random_encoder(encoder, config.seed)
    features = {}
    for representation, model in encoders.items():
        features[representation] = [
            extract_features(
                model, x, ("y",), config.batch_size, verbose=verbose,
                description=f"  Y of the {representation} encoder "
                            f"({split})")["y"]
            for split, x in (("train", train_x), ("test", test_x))]
    if config.baselines:
        with Progress("  Log-mel statistics", live=live, log=log):
            features["log_mel"] = [log_mel_statistics(x, data.sample_rate)
                                   for x in (train_x, test_x)]
    probe_rows, verification_rows = [], []
    for representation, (train, test) in features.items():
        layer = "log_mel" if representation == "log_mel" else "y"
        probe, verification = _scores(representation, train, train_y, test,
                                      test_y, config, log, live)
        probe_rows.append({"representation": representation, "layer": layer,
                           **probe})
        verification_rows.append({"representation": representation,
                                  "layer": layer, **verification})
    return {
        "modality": "audio",
        "run_dir": run_dir,
        "dataset": name,
        "encoder": run_config.get("encoder"),
        "chunk_length": int(data.chunk_length),
        "sample_rate": int(data.sample_rate),
        "splits": {"train": int(len(train_y)), "test": int(len(test_y))},
        "num_classes": int(len(speakers)),
        "chance_accuracy": float(np.max(np.bincount(test_y))
                                 / max(1, len(test_y))),
        "settings": config.to_dict(),
        "run_config": run_config,
        "probes": probe_rows,
        "verification": verification_rows,
        "dependence": [],
        "seconds": round(time.time() - started, 1),
    }


def markdown(results):
    """The `evaluation.md` text of a speech evaluation.

    Args:
        results: the dict `evaluate_speech` returns.

    Returns:
        str.
    """
    eers = {r["representation"]: r for r in results["verification"]}
    body = []
    for row in results["probes"]:
        representation = row["representation"]
        body.append(
            f"| {TITLES.get(representation, representation)} | "
            f"{row['feature_dim']} | {100 * row['accuracy']:.2f} | "
            f"{100 * eers[representation]['eer']:.2f} |")
    trials = results["verification"][0] if results["verification"] else {}
    seconds = results["chunk_length"] / results["sample_rate"]
    s = results["settings"]
    return "\n".join([
        f"# Evaluation of {results['run_dir']}",
        "",
        f"Dataset `{results['dataset']}` (speech): chunks of {seconds:g} s. "
        "Speaker identification: a linear probe fit on the representations "
        f"of {results['splits']['train']} train chunks, scored on "
        f"{results['splits']['test']} test chunks ({results['num_classes']} "
        "speakers; the most frequent is "
        f"{100 * results['chance_accuracy']:.2f}% of test). Verification: "
        f"the equal error rate of {trials.get('trials', 0)} trials between "
        "test chunks, half of them of one speaker, scored by the cosine of "
        "the features standardized by the train split's mean and std "
        "(lower is better; `evaluation.json` also has `eer_raw`, "
        "unstandardized).",
        "",
        "| Representation | Features | Speaker ID accuracy (%) | "
        "Verification EER (%) |",
        "|---|---:|---:|---:|",
        *body,
        "",
        "## Settings",
        "",
        linear_probe_settings(s),
        "- Baselines: the same encoder with random weights; the mean and "
        "standard deviation over time of 40 log mel energies (25 ms "
        "windows every 10 ms).",
        "",
    ])
