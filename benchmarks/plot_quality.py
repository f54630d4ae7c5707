"""Accuracy against minutes of training, from `quality.py --minutes` runs.

Run from the repository root:

    python benchmarks/plot_quality.py runs/quality-x/quality.json \\
        --out benchmarks/quality_per_minute.png

One panel per probed layer (`conv`, `fc`, `y`), the linear probe's test
accuracy of each recipe's encoder at each `--curve-points` snapshot and at
the end of its budget, beside the random-weight and pixel baselines
(dashed, at the height they reach without training).
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

LAYERS = ("conv", "fc", "y")


def curves(report, probe="linear"):
    """`{recipe label: {layer: [(minutes, accuracy %), ...]}}` of a report.

    Args:
        report: a `quality.json` dict whose runs have a `curve`.
        probe: `"linear"` or `"knn"`.

    Returns:
        dict; seeds of a recipe are averaged point by point.
    """
    found = {}
    for recipe in report["recipes"]:
        runs = [run for run in recipe["runs"] if run.get("curve")]
        if not runs:
            continue
        points = min(len(run["curve"]) for run in runs)
        label = f"{recipe['index']}: {recipe['label']}"
        found[label] = {
            layer: [
                (sum(run["curve"][i]["minutes"] for run in runs) / len(runs),
                 100 * sum(run["curve"][i]["accuracy"][probe][layer]
                           for run in runs) / len(runs))
                for i in range(points)]
            for layer in LAYERS}
    return found


def baselines(report, probe="linear"):
    """`{layer: (random %, pixels %)}`: the first recipe's first run's."""
    run = next(run for recipe in report["recipes"] for run in recipe["runs"]
               if "accuracy" in run)
    pixels = 100 * run["accuracy"]["pixels"][probe]["pixels"]
    return {layer: (100 * run["accuracy"]["random"][probe][layer], pixels)
            for layer in LAYERS}


def plot(report, path, probe="linear"):
    """Writes the figure to `path` (PNG)."""
    from dim_keras.evaluation.figures import new_figure
    from dim_keras.evaluation.figures import save_figure

    found = curves(report, probe)
    if not found:
        raise SystemExit("plot_quality.py: error: no run has a curve; run "
                         "quality.py with --minutes and --curve-points.")
    figure = new_figure(4 * len(LAYERS), 3.4)
    base = baselines(report, probe)
    end = max(m for c in found.values() for pts in c.values()
              for m, _ in pts)
    for column, layer in enumerate(LAYERS):
        axes = figure.add_subplot(1, len(LAYERS), column + 1)
        for label, per_layer in found.items():
            minutes, accuracy = zip(*per_layer[layer])
            axes.plot(minutes, accuracy, marker="o", label=label)
        random, pixels = base[layer]
        axes.hlines([random, pixels], 0, end, linestyles="dashed",
                    colors=["grey", "black"])
        axes.text(end, random, " random", va="center", fontsize=8)
        axes.text(end, pixels, " pixels", va="center", fontsize=8)
        axes.set_title(f"{layer}, {probe} probe")
        axes.set_xlabel("minutes of training")
        if column == 0:
            axes.set_ylabel("test accuracy (%)")
            axes.legend(fontsize=8, loc="lower right")
    save_figure(figure, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", help="a quality.json written with --minutes")
    p.add_argument("--out", default="quality_per_minute.png")
    p.add_argument("--probe", choices=("linear", "knn"), default="linear")
    args = p.parse_args(argv)
    with open(args.json) as f:
        report = json.load(f)
    plot(report, args.out, args.probe)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
