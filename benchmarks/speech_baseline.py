"""The log-mel-statistics baseline on a speech corpus: speaker ID and EER.

Reads `DATA/<speaker>/*.wav` (for example the corpus of
`benchmarks/make_speech.py`), holds out a seeded 20% of each speaker's
utterances, cuts every utterance into non-overlapping 1 s chunks (the rest
of an utterance shorter than a chunk is left out) and describes each chunk
by `log_mel_statistics` (mean and std over time of 40 log mel energies: 80
numbers). Then prints:

- speaker identification: a linear probe (multinomial logistic regression
  on standardized features, `linear_probe`) trained on the training
  chunks, its accuracy on the held-out chunks (and on its own training
  chunks), beside chance;
- speaker verification: the equal error rate of balanced, seeded trials
  among the held-out chunks scored by cosine similarity, of the raw
  features and of the features standardized by the training chunks'
  mean and std (what a learned representation would be compared with).

Usage:

    python benchmarks/speech_baseline.py --data /tmp/speech-corpus \\
        [--seed 0] [--chunk-seconds 1.0] [--test-fraction 0.2] \\
        [--num-trials 6000] [--json results.json]
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

SAMPLE_RATE = 16000


def load_corpus(root):
    """`{speaker: [waveform, ...]}`, 16 kHz mono float32, sorted by name."""
    import soundfile
    from scipy.signal import resample_poly

    corpus = {}
    for speaker in sorted(os.listdir(root)):
        folder = os.path.join(root, speaker)
        if speaker.startswith(".") or not os.path.isdir(folder):
            continue
        waveforms = []
        for name in sorted(os.listdir(folder)):
            if not name.lower().endswith(".wav"):
                continue
            samples, rate = soundfile.read(os.path.join(folder, name),
                                           dtype="float32")
            if samples.ndim > 1:
                samples = samples.mean(axis=1)
            if rate != SAMPLE_RATE:
                divisor = np.gcd(rate, SAMPLE_RATE)
                samples = resample_poly(samples, SAMPLE_RATE // divisor,
                                        rate // divisor).astype("float32")
            waveforms.append(samples)
        if waveforms:
            corpus[speaker] = waveforms
    if len(corpus) < 2:
        raise ValueError(
            "Expected DATA/<speaker>/*.wav with at least 2 speakers. "
            f"Received: data={root!r}, {len(corpus)} speaker(s)")
    return corpus


def split_and_chunk(corpus, test_fraction, chunk_seconds, seed):
    """Held-out utterances per speaker, cut into chunks.

    Returns:
        `(train_chunks, train_labels, test_chunks, test_labels, counts)`:
        chunks float32 `[N, chunk samples]`, int labels (speakers in sorted
        order), and a dict of utterance counts.
    """
    rng = np.random.default_rng(seed)
    length = int(round(chunk_seconds * SAMPLE_RATE))
    sides = {"train": ([], []), "test": ([], [])}
    counts = {"train_utterances": 0, "test_utterances": 0}
    for label, speaker in enumerate(sorted(corpus)):
        waveforms = corpus[speaker]
        held = max(1, int(round(test_fraction * len(waveforms))))
        test = set(rng.permutation(len(waveforms))[:held].tolist())
        for k, samples in enumerate(waveforms):
            side = "test" if k in test else "train"
            counts[f"{side}_utterances"] += 1
            for start in range(0, len(samples) - length + 1, length):
                sides[side][0].append(samples[start:start + length])
                sides[side][1].append(label)
    return (np.stack(sides["train"][0]), np.array(sides["train"][1]),
            np.stack(sides["test"][0]), np.array(sides["test"][1]), counts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True,
                        help="folder of <speaker>/*.wav")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-seconds", type=float, default=1.0)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--num-trials", type=int, default=6000)
    parser.add_argument("--json", default=None,
                        help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    from dim_keras.evaluation.probes import linear_probe
    from dim_keras.evaluation.spectral import log_mel_statistics
    from dim_keras.evaluation.verification import speaker_verification_eer

    start = time.perf_counter()
    corpus = load_corpus(args.data)
    train_x, train_y, test_x, test_y, counts = split_and_chunk(
        corpus, args.test_fraction, args.chunk_seconds, args.seed)
    train_f = log_mel_statistics(train_x, sample_rate=SAMPLE_RATE)
    test_f = log_mel_statistics(test_x, sample_rate=SAMPLE_RATE)
    probe = linear_probe(train_f, train_y, test_f, test_y, seed=args.seed,
                         max_iter=1000)
    mean = train_f.mean(axis=0)
    std = np.maximum(train_f.std(axis=0), 1e-8)
    raw = speaker_verification_eer(test_f, test_y, args.num_trials,
                                   seed=args.seed)
    standardized = speaker_verification_eer(
        (test_f - mean) / std, test_y, args.num_trials, seed=args.seed)
    speakers = len(corpus)
    results = {
        "data": os.path.basename(os.path.normpath(args.data)),
        "features": "log mel statistics (40 bands, mean and std: 80)",
        "speakers": speakers,
        **counts,
        "train_chunks": int(len(train_x)),
        "test_chunks": int(len(test_x)),
        "chunk_seconds": args.chunk_seconds,
        "seed": args.seed,
        "speaker_id_accuracy": probe["accuracy"],
        "speaker_id_train_accuracy": probe["train_accuracy"],
        "chance_accuracy": 1.0 / speakers,
        "eer_cosine_raw": raw["eer"],
        "eer_cosine_standardized": standardized["eer"],
        "trials": raw["trials"],
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(f"{speakers} speakers; {counts['train_utterances']} train / "
          f"{counts['test_utterances']} test utterances; "
          f"{len(train_x)} / {len(test_x)} chunks of {args.chunk_seconds:g} s")
    print(f"speaker ID, linear probe on log-mel statistics: "
          f"{100 * probe['accuracy']:.1f}% of test chunks "
          f"(train {100 * probe['train_accuracy']:.1f}%, chance "
          f"{100 / speakers:.1f}%)")
    print(f"verification EER, cosine, test chunks ({raw['trials']} trials): "
          f"raw {100 * raw['eer']:.1f}%, standardized "
          f"{100 * standardized['eer']:.1f}%")
    print(f"took {results['seconds']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
