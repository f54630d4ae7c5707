"""Where an evaluation's time went: its seconds per part.

`evaluation.json` holds `seconds_by_part`: the seconds of extracting
features, of each probe (summed over representations and layers), of the
few-label probes, of MINE,
NDM and the t-SNE maps, and `other` (loading the run and the data, the
random encoder), which add up to the evaluation's `seconds`.
"""

# The parts, in the order an evaluation runs them.
PARTS = ("features", "linear", "mlp", "knn", "few_labels", "finetune",
         "embedding", "mine", "ndm")


def seconds_by_part(results, extraction):
    """An evaluation's seconds per part.

    Args:
        results: the evaluation's results dict, with `seconds`, `probes`
            and `dependence` rows (each with `seconds`), and `embedding`
            (its `seconds` by representation) when maps were drawn.
        extraction: dict of representation to the seconds its features
            took.

    Returns:
        Dict of part (`PARTS`, then `"other"`) to seconds, rounded to 0.1;
        parts that did not run are left out.
    """
    parts = {"features": sum(extraction.values())}
    for row in results.get("probes", []):
        part = row["probe"]
        if "labels_per_class" in row and part != "finetune":
            part = "few_labels"
        parts[part] = parts.get(part, 0.0) + row["seconds"]
    if "embedding" in results:
        parts["embedding"] = sum(results["embedding"]["seconds"].values())
    for row in results.get("dependence", []):
        parts[row["measure"]] = (parts.get(row["measure"], 0.0)
                                 + row["seconds"])
    ordered = {part: round(parts[part], 1) for part in PARTS if part in parts}
    ordered["other"] = round(
        max(0.0, results["seconds"] - sum(parts.values())), 1)
    return ordered


def seconds_line(seconds, total):
    """`seconds_by_part` as one Markdown list item.

    Args:
        seconds: dict from `seconds_by_part`.
        total: float, the evaluation's seconds.

    Returns:
        str, e.g. `"- Time: 95 s in all: features 12 s, linear 40 s, ..."`.
    """
    from dim_keras.progress import format_seconds

    parts = ", ".join(f"{part} {format_seconds(value)}"
                      for part, value in seconds.items())
    return f"- Time: {format_seconds(total)} in all: {parts}."
