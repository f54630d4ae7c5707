"""Few-label probes in the report: the verdict, the table and the curve."""

from dim_keras.evaluation import label_report
from dim_keras.evaluation import report


def _few(representation, layer, n, accuracy, std=0.01, probe="linear"):
    return {"probe": probe, "representation": representation,
            "layer": layer, "labels_per_class": n, "draws": 5,
            "accuracy": accuracy, "accuracy_std": std}


def digits_like():
    # Every label: random weights at 95%, too easy to tell. One label per
    # class: DIM 67.8% against 51.1% on y.
    rows = []
    for layer, dim, random in (("conv", 0.97, 0.96), ("fc", 0.96, 0.95),
                               ("y", 0.964, 0.956)):
        rows += [{"probe": "linear", "representation": "dim",
                  "layer": layer, "accuracy": dim},
                 {"probe": "linear", "representation": "random",
                  "layer": layer, "accuracy": random}]
    rows.append({"probe": "linear", "representation": "pixels",
                 "layer": "pixels", "accuracy": 0.95})
    for n, (dim_y, random_y) in ((1, (0.678, 0.511)), (10, (0.904, 0.827))):
        for layer in ("conv", "fc"):
            rows += [_few("dim", layer, n, 0.6), _few("random", layer, n, 0.58)]
        rows += [_few("dim", "y", n, dim_y), _few("random", "y", n, random_y),
                 _few("pixels", "pixels", n, 0.55),
                 _few("dim", "y", n, 0.7, probe="knn"),
                 _few("random", "y", n, 0.5, probe="knn")]
    return {"run_dir": "runs/x", "dataset": "digits", "probes": rows,
            "dependence": [], "splits": {"train": 1437, "test": 360},
            "num_classes": 10, "chance_accuracy": 0.1, "settings": {}}


def test_where_every_label_cannot_tell_the_fewest_labels_come_first():
    lines = report.verdict_lines(digits_like())
    assert lines[0] == ("## Verdict (linear probe on 1 labelled image per "
                        "class, test accuracy)")
    assert lines[2] == ("Training helped: with 1 labelled image per class, "
                        "DIM's `y` beats random weights by 16.7 points "
                        "(linear probe, mean of 5 draws).")
    assert ("- `y`, 1 label per class: DIM 67.8%, random weights 51.1% "
            "(+16.7 points), pixels 55.0%") in lines
    # The full-label comparison follows, still calling digits too easy.
    assert "With every label:" in lines
    assert "too easy to tell" in lines[-1]


def test_where_every_label_tells_it_stays_first():
    results = digits_like()
    for row in label_report.full_label_rows(results["probes"]):
        if row["representation"] == "random":
            row["accuracy"] -= 0.3
    lines = report.verdict_lines(results)
    assert lines[0].startswith("## Verdict (Linear")
    assert lines.index("With few labels (linear probe, mean over draws):") > 3


def test_full_and_few_label_rows_are_told_apart_in_the_tables():
    results = digits_like()
    assert len(label_report.full_label_rows(results["probes"])) == 7
    assert len(label_report.few_label_rows(results["probes"])) == 2 * 9
    table = report.probe_table(results)
    assert table.count("\n") == 2  # header, rule, one probe
    few = label_report.few_label_table(results)
    assert "| linear | 1 | 60.0 ± 1.0 | 60.0 ± 1.0 | 67.8 ± 1.0 |" in few
    assert "| kNN | 10 |" in few and "over 5 random draws" in few
    assert label_report.few_label_table({"probes": []}) == ""


def test_the_curve_is_written(tmp_path):
    path = tmp_path / "label_efficiency.png"
    label_report.plot_label_efficiency(digits_like(), str(path))
    content = path.read_bytes()
    assert content.startswith(b"\x89PNG") and len(content) > 5000
