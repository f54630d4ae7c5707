"""The verdict of an image evaluation: did training help, in points.

DIM against random weights of the same architecture (and raw pixels),
per layer, by the linear probe on every label; where that cannot tell
(a data set too easy, or no clear gain) and few-label probes ran, by the
linear probe on the fewest labels per class first.
"""

from dim_keras.evaluation.label_report import few_label_rows
from dim_keras.evaluation.label_report import few_label_verdict
from dim_keras.evaluation.label_report import full_label_rows

# Each probe's title in reports.
PROBE_TITLES = {
    "linear": "Linear (logistic regression)",
    "mlp": "MLP (200 units)",
    "knn": "kNN (cosine)",
}

# Random weights at or above this linear-probe accuracy on some layer make
# a data set too easy to tell whether training helped (digits: about 95%).
TOO_EASY_ACCURACY = 0.9
# DIM beats random weights on a layer when it is this many points above.
CLEAR_GAIN_POINTS = 2.0


def _accuracy_of(results, probe, representation, layer):
    for row in full_label_rows(results["probes"]):
        if (row["probe"], row["representation"], row["layer"]) == (
                probe, representation, layer):
            return row["accuracy"]
    return None


def verdict_lines(results):
    """One line per layer, DIM against random weights and pixels, first.

    Uses the linear probe (else the first probe that ran on DIM), in
    points of top-1 test accuracy, and ends with a plain verdict. Where
    the full labels cannot separate DIM from random weights (a data set
    too easy, or no clear gain) and few-label probes ran, their comparison
    at the fewest labels per class comes first
    (`label_report.few_label_verdict`).

    Args:
        results: the evaluation results dict.

    Returns:
        A list of Markdown lines (empty without baselines).
    """
    ran = [row["probe"] for row in full_label_rows(results["probes"])
           if row["representation"] == "random"]
    if not ran:
        return []
    probe = "linear" if "linear" in ran else ran[0]
    pixels = _accuracy_of(results, probe, "pixels", "pixels")
    lines, gains, random_best = [], [], 0.0
    for layer in ("conv", "fc", "y"):
        dim = _accuracy_of(results, probe, "dim", layer)
        random = _accuracy_of(results, probe, "random", layer)
        if dim is None or random is None:
            continue
        gain = 100 * (dim - random)
        gains.append(gain)
        random_best = max(random_best, random)
        line = (f"- `{layer}`: DIM {100 * dim:.1f}%, random weights "
                f"{100 * random:.1f}% ({gain:+.1f} points)")
        if pixels is not None:
            line += (f", pixels {100 * pixels:.1f}% "
                     f"({100 * (dim - pixels):+.1f} points)")
        lines.append(line)
    if not lines:
        return []
    title = PROBE_TITLES.get(probe, probe)
    clear = sum(gain >= CLEAR_GAIN_POINTS for gain in gains)
    too_easy = random_best >= TOO_EASY_ACCURACY
    if too_easy:
        verdict = (
            f"Random weights already reach {100 * random_best:.1f}% on "
            f"`{results['dataset']}`: this data set is too easy to tell "
            "whether training helped. Measure on harder images (for "
            "example CIFAR-10, `--dataset cifar10` or `folder:PATH`)."
        )
    else:
        verdict = (
            f"Training helped: DIM beats random weights by at least "
            f"{CLEAR_GAIN_POINTS:g} points on {clear} of {len(gains)} layers."
            if clear else
            f"Training did not clearly help: DIM is within "
            f"{CLEAR_GAIN_POINTS:g} points of random weights or below on "
            "every layer."
        )
    full = [f"## Verdict ({title}, test accuracy)", ""] + lines + [
        "", verdict]
    few_lines, few_gains = few_label_verdict(results)
    if not few_lines:
        return full
    if too_easy or not clear:
        return _few_label_first(results, few_lines, few_gains, full)
    return full + ["", "With few labels (linear probe, mean over draws):",
                   ""] + few_lines


def _few_label_first(results, few_lines, few_gains, full):
    # The few-label comparison as the verdict, the full labels after it.
    rows = few_label_rows(results["probes"])
    n = min(r["labels_per_class"] for r in rows
            if r["representation"] == "random")
    draws = rows[0]["draws"]
    best = max(few_gains, key=few_gains.get)
    gain = few_gains[best]
    labels = f"{n} labelled image{'s' if n > 1 else ''} per class"
    if gain >= CLEAR_GAIN_POINTS:
        first = (f"Training helped: with {labels}, DIM's `{best}` beats "
                 f"random weights by {gain:.1f} points (linear probe, mean "
                 f"of {draws} draws).")
    else:
        first = (f"Training did not clearly help: with {labels}, DIM is "
                 f"within {CLEAR_GAIN_POINTS:g} points of random weights or "
                 f"below on every layer (linear probe, mean of {draws} "
                 "draws).")
    return [f"## Verdict (linear probe on {labels}, test accuracy)", "",
            first, ""] + few_lines + ["", "With every label:"] + full[1:]


