"""The few-label probes in the report: their table, verdict and curve.

An evaluation's `probes` list holds the full-label probes' records and
the few-label ones (`dim_keras.evaluation.few_labels`), which carry
`labels_per_class`; `full_label_rows` and `few_label_rows` tell them apart.
"""

from dim_keras.evaluation.figures import new_figure
from dim_keras.evaluation.figures import save_figure

# Titles of the representations, in the order they are drawn.
REPRESENTATION_TITLES = {"dim": "DIM", "random": "Random weights",
                         "pixels": "Pixels"}
PROBE_STYLES = {"linear": "-", "knn": "--", "finetune": ":"}
PROBE_NAMES = {"linear": "linear", "knn": "kNN", "finetune": "fine-tuned"}


def is_few_label(row):
    """Whether a probe record was fitted on few labels per class."""
    return "labels_per_class" in row


def full_label_rows(rows):
    """The records of probes fitted on every training label."""
    return [row for row in rows if not is_few_label(row)]


def few_label_rows(rows):
    """The records of probes fitted on few labels per class."""
    return [row for row in rows if is_few_label(row)]


def _find(rows, probe, representation, layer, n):
    for row in rows:
        if (row["probe"], row["representation"], row["layer"],
                row["labels_per_class"]) == (probe, representation, layer, n):
            return row
    return None


def few_label_table(results):
    """Markdown table of the few-label probes, or `""` when none ran.

    Rows are (probe, labels per class), columns the representations'
    layers; each cell is the mean test accuracy (%) over the draws, ± their
    standard deviation.

    Args:
        results: the evaluation results dict.

    Returns:
        str.
    """
    rows = few_label_rows(results["probes"])
    if not rows:
        return ""
    order = list(REPRESENTATION_TITLES)
    columns = sorted(dict.fromkeys((r["representation"], r["layer"])
                                   for r in rows),
                     key=lambda c: order.index(c[0]) if c[0] in order
                     else len(order))
    keys = list(dict.fromkeys((r["probe"], r["labels_per_class"])
                              for r in rows))
    header = ["Probe", "labels / class"] + [
        REPRESENTATION_TITLES.get(rep, rep) if rep == layer
        else f"{REPRESENTATION_TITLES.get(rep, rep)} {layer}"
        for rep, layer in columns]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---", "---:"] + ["---:"] * len(columns)) + "|"]
    for probe, n in keys:
        cells = [PROBE_NAMES.get(probe, probe), str(n)]
        for rep, layer in columns:
            row = _find(rows, probe, rep, layer, n)
            cells.append("—" if row is None else
                         f"{100 * row['accuracy']:.1f} ± "
                         f"{100 * row['accuracy_std']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    draws = rows[0]["draws"]
    return "\n".join(lines) + (
        f"\n\nMean ± standard deviation over {draws} random draws of the "
        "labelled training images; every draw is scored on the whole test "
        "split.")


def few_label_verdict(results, probe="linear"):
    """DIM against random weights with the fewest labels, per layer.

    Args:
        results: the evaluation results dict.
        probe: the few-label probe to compare (`"linear"` or `"knn"`).

    Returns:
        `(lines, gains)`: Markdown list lines, one per layer with DIM,
        random weights and pixels at the ladder's lowest rung, and DIM's
        gain over random weights in points per layer; `([], {})` when no
        few-label probe of DIM and random weights ran.
    """
    rows = [r for r in few_label_rows(results["probes"])
            if r["probe"] == probe]
    rungs = sorted({r["labels_per_class"] for r in rows
                    if r["representation"] == "random"})
    if not rungs:
        return [], {}
    n = rungs[0]
    pixels = _find(rows, probe, "pixels", "pixels", n)
    lines, gains = [], {}
    for layer in ("conv", "fc", "y"):
        dim = _find(rows, probe, "dim", layer, n)
        random = _find(rows, probe, "random", layer, n)
        if dim is None or random is None:
            continue
        gains[layer] = 100 * (dim["accuracy"] - random["accuracy"])
        line = (f"- `{layer}`, {n} label{'s' if n > 1 else ''} per class: "
                f"DIM {100 * dim['accuracy']:.1f}%, random weights "
                f"{100 * random['accuracy']:.1f}% ({gains[layer]:+.1f} "
                "points)")
        if pixels is not None:
            line += f", pixels {100 * pixels['accuracy']:.1f}%"
        lines.append(line)
    return lines, gains


def plot_label_efficiency(results, path):
    """Accuracy against labels per class: DIM, random weights, pixels.

    One panel per probed layer; the x axis (log) runs from the ladder's
    lowest rung to all the labels (the full-label probes, at the training
    split's mean images per class); solid lines for the linear probe,
    dashed for kNN; raw pixels drawn on every panel.

    Args:
        results: the evaluation results dict (with few-label records).
        path: str, the PNG to write.
    """
    rows = results["probes"]
    few = few_label_rows(rows)
    full_n = results["splits"]["train"] / results["num_classes"]
    layers = list(dict.fromkeys(r["layer"] for r in few
                                if r["representation"] != "pixels"))
    figure = new_figure(4 * len(layers), 3.5)
    for index, layer in enumerate(layers):
        axes = figure.add_subplot(1, len(layers), index + 1)
        for rep, title in REPRESENTATION_TITLES.items():
            wanted = "pixels" if rep == "pixels" else layer
            for probe, style in PROBE_STYLES.items():
                points = sorted(
                    (r["labels_per_class"], 100 * r["accuracy"],
                     100 * r["accuracy_std"]) for r in few
                    if (r["representation"], r["layer"], r["probe"]) ==
                    (rep, wanted, probe))
                full = [r for r in full_label_rows(rows)
                        if (r["representation"], r["layer"], r["probe"]) ==
                        (rep, wanted, probe)]
                if full:
                    points.append((full_n, 100 * full[0]["accuracy"], 0.0))
                if not points:
                    continue
                x, y, std = zip(*points)
                axes.errorbar(x, y, yerr=std, linestyle=style, marker="o",
                              markersize=3, capsize=2,
                              color={"dim": "C0", "random": "C1",
                                     "pixels": "black"}[rep],
                              label=f"{title}, {PROBE_NAMES[probe]}")
        axes.set_xscale("log")
        axes.set_xlabel("labelled images per class (last: all)")
        axes.set_ylabel("test accuracy (%)")
        axes.set_title(layer)
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=7)
    save_figure(figure, path, rect=(0, 0.12, 1, 1))
