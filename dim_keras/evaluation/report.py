"""Writing an evaluation: JSON, a Markdown table like the paper's, plots.

- `evaluation.json`: every number with its settings;
- `evaluation.md`: accuracies (%) with rows = probe and columns = the
  probed layers of the DIM encoder, then of the random-weight baseline,
  then raw pixels; and a table of MINE and NDM (nats);
- `history.png`: the training curves of `history.csv`;
- `probes.png`: probe accuracies as bars, beside the baselines;
- `embedding.png`: t-SNE maps of the test split's Y, DIM beside random
  weights (see `dim_keras.evaluation.embedding`).

A speech evaluation (`"modality": "audio"`) writes its own table
(`dim_keras.evaluation.speech.markdown`) and no probe or t-SNE plot.

Plots use matplotlib's Agg canvas directly (no `pyplot`, no display).
"""

import json
import os

from dim_keras.runs import HISTORY_FILE
from dim_keras.runs import read_history
from dim_keras import atomic
from dim_keras.evaluation.figures import new_figure
from dim_keras.evaluation.figures import save_figure
from dim_keras.evaluation import speech
from dim_keras.evaluation.label_report import few_label_rows
from dim_keras.evaluation.label_report import few_label_table
from dim_keras.evaluation.label_report import full_label_rows
from dim_keras.evaluation.label_report import plot_label_efficiency
from dim_keras.evaluation.verdict import PROBE_TITLES
from dim_keras.evaluation.verdict import verdict_lines
from dim_keras.evaluation.linear_settings import linear_probe_settings

REPRESENTATIONS = ("dim", "random", "pixels")
TITLES = {"dim": "DIM", "random": "Random", "pixels": "Pixels"}
MEASURE_TITLES = {
    "mine": "MINE I(X; Y) (nats)",
    "ndm": "NDM (nats)",
}


def _columns(rows):
    columns = []
    for representation in REPRESENTATIONS:
        for row in rows:
            key = (row["representation"], row["layer"])
            if row["representation"] == representation and key not in columns:
                columns.append(key)
    return columns


def _header(columns):
    names = []
    for representation, layer in columns:
        title = TITLES.get(representation, representation)
        names.append(title if layer == representation else f"{title} {layer}")
    return names


def _table(header, body):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def _grid(rows, key, titles, label, cell):
    # One line per value of `key`, one column per (representation, layer).
    columns = _columns(rows)
    names = list(dict.fromkeys(row[key] for row in rows))
    cells = {(r[key], r["representation"], r["layer"]): r for r in rows}
    body = []
    for name in names:
        line = [titles.get(name, name)]
        for representation, layer in columns:
            row = cells.get((name, representation, layer))
            line.append("—" if row is None else cell(row))
        body.append(line)
    return _table([label] + _header(columns), body)


def probe_table(results):
    """Markdown table of accuracies (%): rows = probe, columns = layers."""
    return _grid(
        full_label_rows(results["probes"]), "probe", PROBE_TITLES, "Probe",
        lambda row: f"{100 * row['accuracy']:.2f}",
    )


def dependence_table(results):
    """Markdown table of MINE and NDM estimates (nats), or ``""``."""
    rows = results.get("dependence", [])
    if not rows:
        return ""
    return _grid(rows, "measure", MEASURE_TITLES, "Measure",
                 _dependence_cell)


def _dependence_cell(row):
    # MINE's held-out bound, with the same critic's training-side value.
    text = f"{row['estimate']:.3f}"
    if "train_estimate" in row:
        text += f" (train {row['train_estimate']:.3f})"
    return text


def linear_solver_line(rows):
    """Which solver fitted each linear probe, as one Markdown list item.

    Args:
        rows: the evaluation's probe rows.

    Returns:
        str, or "" when no linear probe row says (an older evaluation).
    """
    names = {"lbfgs": "scikit-learn's L-BFGS",
             "minibatch": "minibatch Adam on the training device"}
    ran = {}
    for row in rows:
        if row.get("probe") == "linear" and "solver" in row:
            where = (row["layer"] if row["layer"] == row["representation"]
                     else f"{row['representation']} {row['layer']}")
            ran.setdefault(row["solver"], []).append(where)
    if not ran:
        return ""
    parts = []
    for solver, where in ran.items():
        text = f"{names.get(solver, solver)} on {', '.join(where)}"
        if solver == "minibatch":
            row = next(r for r in rows if r.get("solver") == "minibatch")
            text += f" (batch {row['batch_size']}"
            if "C_grid" in row:
                text += (", C from "
                         f"{', '.join(f'{c:g}' for c in row['C_grid'])}")
            text += ")"
        parts.append(text)
    return "- Linear solver (by size): " + "; ".join(parts) + "."


def _settings_lines(results):
    s = results["settings"]
    lines = [
        linear_probe_settings(s),
        linear_solver_line(full_label_rows(results["probes"])),
        f"- MLP: dense 200, batch norm, dropout 0.1, ReLU, softmax; Adam "
        f"lr {s['mlp_learning_rate']}, batch {s['mlp_batch_size']}, at most "
        f"{s['mlp_epochs']} epochs, early stopping (patience "
        f"{s['mlp_patience']}) on {100 * s['validation_fraction']:.0f}% of "
        "train held out.",
        f"- kNN: k={s['knn_k']}, cosine similarity, votes weighted by "
        f"exp(similarity / {s['knn_temperature']}).",
    ]
    if s["mine_steps"]:
        lines.append(
            "- MINE: Donsker-Varadhan critic between images (convolutional "
            f"branch) and Y, at most {s['mine_steps']} steps of batch "
            f"{s['mine_batch_size']}, stopped early on "
            f"{100 * s['validation_fraction']:.0f}% of train held out; the "
            "bound on the test split, its value on the training pairs in "
            "brackets. Higher: Y keeps more about its image.")
    if s["ndm_steps"]:
        lines.append(
            "- NDM: discriminator 1000-200-1, Y against Y with dimensions "
            f"shuffled across the batch, {s['ndm_steps']} steps of batch "
            f"{s['ndm_batch_size']}; DV value on the test split. It "
            "estimates the total correlation of Y's dimensions: 0 when "
            "they are independent, higher the more they depend on each "
            "other.")
    if s["baselines"]:
        lines.append("- Baselines: the same architecture with random "
                     "weights; raw pixel values.")
    if "seconds_by_part" in results:
        from dim_keras.evaluation.timing import seconds_line

        lines.append(seconds_line(results["seconds_by_part"],
                                  results["seconds"]))
    return "\n".join(line for line in lines if line)


def markdown(results):
    """The whole `evaluation.md` text of any modality's results."""
    return _WRITERS[results.get("modality", "image")][0](results)


def _image_markdown(results):
    """The `evaluation.md` text of an image evaluation, the verdict first."""
    verdict = verdict_lines(results)
    parts = [
        f"# Evaluation of {results['run_dir']}",
        "",
    ] + (verdict + [""] if verdict else []) + [
        f"Dataset `{results['dataset']}`: probes fit on "
        f"{results['splits']['train']} train images and are scored on "
        f"{results['splits']['test']} test images "
        f"({results['num_classes']} classes; the most frequent class is "
        f"{100 * results['chance_accuracy']:.2f}% of test).",
        "",
        "## Top-1 test accuracy (%)",
        "",
        probe_table(results),
        "",
    ]
    few = few_label_table(results)
    if few:
        parts += ["## Top-1 test accuracy with few labels (%)", "", few, ""]
    dependence = dependence_table(results)
    if dependence:
        parts += ["## Dependence measures", "", dependence, ""]
    parts += ["## Settings", "", _settings_lines(results), ""]
    return "\n".join(parts)


# History columns holding accuracies (fractions), drawn on their own axes.
# Accuracy columns (the online monitors': `online_probe_y_acc`,
# `knn_conv_acc`, ...) end with this.
ACCURACY_SUFFIX = "_acc"


def history_columns(history):
    """Splits a history's columns into loss terms and accuracies.

    Args:
        history: dict of column to values, from `read_history`.

    Returns:
        `(loss_columns, accuracy_columns)`, lists of names in file order;
        an accuracy column's name ends with `ACCURACY_SUFFIX`.
    """
    names = [k for k in history if k != "epoch"]
    accuracies = [k for k in names if k.endswith(ACCURACY_SUFFIX)]
    return [k for k in names if k not in accuracies], accuracies


def plot_history(history, path):
    """Plots the training curves against the epoch.

    One panel per loss term (their scales differ), then one panel holding
    every accuracy column (the online probe's and the kNN monitor's), if
    the history has any. Missing values (NaN) leave gaps.

    Args:
        history: dict from `read_history`, with an `epoch` column.
        path: str, the PNG to write.
    """
    losses, accuracies = history_columns(history)
    panels = [[k] for k in losses] + ([accuracies] if accuracies else [])
    cols = max(1, min(3, len(panels)))
    rows = max(1, (len(panels) + cols - 1) // cols)
    figure = new_figure(4 * cols, 3 * rows)
    for i, keys in enumerate(panels):
        axes = figure.add_subplot(rows, cols, i + 1)
        for key in keys:
            axes.plot(history["epoch"], history[key], marker="o",
                      markersize=3, label=key)
        if keys is accuracies:
            axes.set_title("accuracy")
            axes.set_ylabel("accuracy")
            axes.legend(fontsize="small")
        else:
            axes.set_title(keys[0])
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
    save_figure(figure, path)


def plot_probes(results, path):
    """Bar chart of probe accuracies: DIM beside its baselines.

    One panel per probe; bars grouped by layer, one colour per
    representation; raw pixels as a dashed line.

    Args:
        results: the evaluation results dict.
        path: str, the PNG to write.
    """
    rows = full_label_rows(results["probes"])
    probes = list(dict.fromkeys(row["probe"] for row in rows))
    layers = list(dict.fromkeys(
        row["layer"] for row in rows if row["representation"] != "pixels"))
    encoders = [r for r in ("dim", "random")
                if any(row["representation"] == r for row in rows)]
    figure = new_figure(4 * len(probes), 3.5)
    width = 0.8 / max(1, len(encoders))
    for p, probe in enumerate(probes):
        axes = figure.add_subplot(1, len(probes), p + 1)
        for e, representation in enumerate(encoders):
            values = [
                next((100 * row["accuracy"] for row in rows
                      if row["probe"] == probe and row["layer"] == layer
                      and row["representation"] == representation),
                     float("nan"))
                for layer in layers
            ]
            positions = [i + (e - (len(encoders) - 1) / 2) * width
                         for i in range(len(layers))]
            bars = axes.bar(positions, values, width,
                            label=TITLES[representation])
            axes.bar_label(bars, fmt="%.1f", fontsize=7)
        for row in rows:
            if row["representation"] == "pixels" and row["probe"] == probe:
                axes.axhline(100 * row["accuracy"], color="black",
                             linestyle="--", label="Pixels")
        axes.axhline(100 * results["chance_accuracy"], color="grey",
                     linestyle=":", label="Most frequent class")
        axes.set_xticks(range(len(layers)))
        axes.set_xticklabels(layers)
        axes.set_ylim(0, 105)
        axes.set_ylabel("test accuracy (%)")
        axes.set_title(PROBE_TITLES.get(probe, probe))
    legend = {}
    for axes in figure.axes:
        for handle, label in zip(*axes.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    figure.legend(legend.values(), legend.keys(), loc="lower center",
                  ncol=len(legend), fontsize="small")
    save_figure(figure, path, rect=(0, 0.08, 1, 1))


def read_run_history(run_dir):
    """The run's `history.csv` as columns, or {} when it has none.

    Raises:
        runs.DamagedFileError: if the file is damaged.
    """
    path = os.path.join(run_dir, HISTORY_FILE)
    return read_history(path) if os.path.exists(path) else {}


# Panel titles of the embedding maps.
EMBEDDING_TITLES = {"dim": "DIM (trained)", "random": "Random weights"}


def write_report(run_dir, results, history=None, embeddings=None):
    """Writes `evaluation.json`, `evaluation.md` and the plots.

    Args:
        run_dir: str, the run directory.
        results: the evaluation results dict (without `paths`).
        history: dict from `runs.read_history`, or None to read the run's
            `history.csv` (if any).
        embeddings: dict of representation (`"dim"`, `"random"`) to an
            `embedding.embedding_map` result, drawn as `embedding.png`;
            None or empty draws none.

    Returns:
        Dict of what was written to its path.
    """
    paths = {
        "json": os.path.join(run_dir, "evaluation.json"),
        "markdown": os.path.join(run_dir, "evaluation.md"),
        "probes_plot": os.path.join(run_dir, "probes.png"),
    }
    plot = _WRITERS[results.get("modality", "image")][1]
    if plot is None:
        del paths["probes_plot"]
    else:
        plot(results, paths["probes_plot"])
    if few_label_rows(results.get("probes", [])):
        paths["label_efficiency_plot"] = os.path.join(
            run_dir, "label_efficiency.png")
        plot_label_efficiency(results, paths["label_efficiency_plot"])
    if embeddings:
        from dim_keras.evaluation.embedding import plot_embeddings

        paths["embedding_plot"] = os.path.join(run_dir, "embedding.png")
        plot_embeddings(
            {EMBEDDING_TITLES.get(k, k): v for k, v in embeddings.items()},
            paths["embedding_plot"])
    if history is None:
        history = read_run_history(run_dir)
    if len(history) > 1:
        paths["history_plot"] = os.path.join(run_dir, "history.png")
        plot_history(history, paths["history_plot"])
    atomic.write_text(paths["markdown"], markdown(results))
    atomic.write_text(paths["json"],
                      json.dumps({**results, "paths": paths}, indent=1))
    return paths


# Each modality's (`results["modality"]`, images when absent) Markdown
# writer and probes plot; a speech table of three rows needs no plot.
_WRITERS = {
    "image": (_image_markdown, plot_probes),
    "audio": (speech.markdown, None),
}
