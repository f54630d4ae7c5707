"""A search's results: the trials table (CSV, markdown) and the best config.

`trials.csv` and `trials.md` list every trial, completed ones first from
the best objective down, then failed or unfinished ones; each row holds the
trial's status, the objective, every hyperparameter (α and β as trained,
0 where their term is off), the other metrics and, for a failed trial, why.
`best.json` is the best trial's `TrainConfig` as a dict, ready for
`dim-keras train --config best.json`.
"""

import csv
import io
import json
import math
import os

from dim_keras import atomic
from dim_keras.tuning.tuner import OBJECTIVE
from dim_keras.tuning.tuner import failure_reason

TRIALS_CSV = "trials.csv"
TRIALS_MD = "trials.md"
BEST_JSON = "best.json"
LEADING = ("trial", "status", OBJECTIVE.name, "estimator", "mi_terms",
           "alpha", "beta", "gamma", "lr", "epochs")


def _number(trial_id):
    try:
        return int(trial_id)
    except ValueError:
        return math.inf


def trial_rows(trials, trial_config, trial_failure=None):
    """One dict per trial, best completed first.

    Args:
        trials: iterable of `keras_tuner` `Trial`s.
        trial_config: callable mapping a trial to its `TrainConfig`.
        trial_failure: callable mapping a failed trial to why it failed;
            None reads the trial's message.

    Returns:
        List of `(row, config)`: `row` a dict of column to value (None
        where a trial has no value), `config` the trial's `TrainConfig`.
    """
    rows = []
    for trial in trials:
        config = trial_config(trial)
        values = trial.hyperparameters.values
        completed = trial.status == "COMPLETED"
        row = {
            "trial": trial.trial_id,
            "status": trial.status,
            OBJECTIVE.name: trial.score if completed else None,
            "estimator": config.estimator,
            "mi_terms": values.get("mi_terms"),
            "alpha": config.alpha,
            "beta": config.beta,
            "gamma": config.gamma,
            "lr": config.lr,
            "epochs": config.epochs,
        }
        for name in sorted(values):
            row.setdefault(name, values[name])
        for name in sorted(trial.metrics.metrics):
            if name not in row:
                row[name] = trial.metrics.get_last_value(name)
        if trial.status == "FAILED":
            row["message"] = (trial_failure(trial) if trial_failure
                              else failure_reason(trial.message))
        rows.append((row, config))

    def order(item):
        row = item[0]
        score = row[OBJECTIVE.name]
        done = row["status"] == "COMPLETED" and score is not None
        return (not done, -score if done else 0, _number(row["trial"]))

    return sorted(rows, key=order)


def _columns(rows):
    columns = list(LEADING)
    for row in rows:
        for name in row:
            if name not in columns and name != "message":
                columns.append(name)
    if any("message" in row for row in rows):
        columns.append("message")
    return columns


def rows_csv(rows):
    """Renders rows as CSV text (every value in full)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(rows),
                            lineterminator="\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def rows_markdown(rows):
    """Renders rows as a markdown table (floats to 4 significant digits)."""
    columns = _columns(rows)
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        lines.append(
            "| " + " | ".join(_cell(row.get(c)) for c in columns) + " |"
        )
    return "\n".join(lines) + "\n"


def write_results(out_dir, trials, trial_config, trial_failure=None):
    """Writes `trials.csv`, `trials.md` and (if a trial completed) `best.json`.

    Args:
        out_dir: str, the search directory.
        trials: iterable of `Trial`s.
        trial_config: callable mapping a trial to its `TrainConfig`.
        trial_failure: see `trial_rows`.

    Returns:
        Dict with `rows` (list of row dicts, sorted), `best` (the best
        row or None), `best_config` (its `TrainConfig` or None) and the
        written `paths`.
    """
    ranked = trial_rows(trials, trial_config, trial_failure)
    rows = [row for row, _ in ranked]
    paths = {
        "csv": os.path.join(out_dir, TRIALS_CSV),
        "markdown": os.path.join(out_dir, TRIALS_MD),
        "best": os.path.join(out_dir, BEST_JSON),
    }
    atomic.write_text(paths["csv"], rows_csv(rows))
    atomic.write_text(paths["markdown"], rows_markdown(rows))
    best = best_config = None
    if ranked and ranked[0][0]["status"] == "COMPLETED":
        best, best_config = ranked[0]
        atomic.write_text(
            paths["best"], json.dumps(best_config.to_dict(), indent=2) + "\n"
        )
    return {"rows": rows, "best": best, "best_config": best_config,
            "paths": paths}
