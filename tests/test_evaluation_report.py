"""The report opens with the verdict: DIM vs random weights vs pixels."""

from dim_keras.evaluation import EvaluationConfig
from dim_keras.evaluation import report


def results(dataset, dim, random, pixels):
    rows = []
    for layer in ("conv", "fc", "y"):
        rows.append({"probe": "linear", "representation": "dim",
                     "layer": layer, "accuracy": dim[layer]})
        rows.append({"probe": "linear", "representation": "random",
                     "layer": layer, "accuracy": random[layer]})
    rows.append({"probe": "linear", "representation": "pixels",
                 "layer": "pixels", "accuracy": pixels})
    return {"run_dir": "runs/x", "dataset": dataset, "probes": rows,
            "dependence": [], "splits": {"train": 10, "test": 10},
            "num_classes": 10, "chance_accuracy": 0.1, "settings": {}}


def test_one_line_per_layer_in_points():
    lines = report.verdict_lines(results(
        "cifar10",
        dim={"conv": 0.50, "fc": 0.45, "y": 0.40},
        random={"conv": 0.40, "fc": 0.44, "y": 0.30},
        pixels=0.30,
    ))
    assert lines[0].startswith("## Verdict (Linear")
    assert lines[2] == ("- `conv`: DIM 50.0%, random weights 40.0% "
                        "(+10.0 points), pixels 30.0% (+20.0 points)")
    assert "(+1.0 points)" in lines[3]
    assert lines[-1] == ("Training helped: DIM beats random weights by at "
                         "least 2 points on 2 of 3 layers.")


def test_an_easy_data_set_is_called_too_easy():
    lines = report.verdict_lines(results(
        "digits",
        dim={"conv": 0.989, "fc": 0.975, "y": 0.958},
        random={"conv": 0.986, "fc": 0.978, "y": 0.936},
        pixels=0.958,
    ))
    assert "(-0.3 points)" in lines[3]
    assert "Random weights already reach 98.6% on `digits`" in lines[-1]
    assert "too easy to tell" in lines[-1]


def test_no_gain_says_so_and_the_verdict_comes_first():
    data = results("cifar10", dim={"conv": 0.41, "fc": 0.3, "y": 0.3},
                   random={"conv": 0.40, "fc": 0.35, "y": 0.3}, pixels=0.3)
    assert report.verdict_lines(data)[-1].startswith(
        "Training did not clearly help")
    data["settings"] = EvaluationConfig().to_dict()
    text = report.markdown(data)
    assert text.index("## Verdict") < text.index("## Top-1 test accuracy")


def test_no_baselines_no_verdict():
    data = results("cifar10", dim={"conv": 0.5, "fc": 0.5, "y": 0.5},
                   random={"conv": 0.4, "fc": 0.4, "y": 0.4}, pixels=0.3)
    data["probes"] = [r for r in data["probes"]
                      if r["representation"] == "dim"]
    assert report.verdict_lines(data) == []


def _history_png(tmp_path, csv_text):
    from dim_keras.runs import read_history

    csv_path = tmp_path / "history.csv"
    csv_path.write_text(csv_text)
    history = read_history(str(csv_path))
    path = str(tmp_path / "history.png")
    report.plot_history(history, path)
    with open(path, "rb") as f:
        content = f.read()
    assert content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) > 5000
    return history


def test_history_plot_without_accuracy_columns(tmp_path):
    history = _history_png(
        tmp_path, "epoch,loss,local_mi\n1,3.0,-3.0\n2,2.0,-2.5\n")
    assert report.history_columns(history) == (["loss", "local_mi"], [])


def test_history_plot_with_accuracy_columns(tmp_path):
    history = _history_png(
        tmp_path,
        "epoch,loss,online_probe_acc,knn_acc,prior_loss\n"
        "1,3.0,0.4,nan,0.7\n2,2.0,0.6,0.5,0.6\n")
    assert report.history_columns(history) == (
        ["loss", "prior_loss"], ["online_probe_acc", "knn_acc"])


def test_history_plot_of_one_epoch(tmp_path):
    _history_png(tmp_path, "epoch,loss\n1,3.0\n")


def test_the_linear_probe_settings_say_how_c_was_chosen():
    settings = EvaluationConfig().to_dict()
    assert settings["linear_c"][0] == 1e-4 and settings["linear_c"][-1] == 1
    line = report.linear_probe_settings(settings)
    assert "C chosen from 0.0001, 0.0003, 0.001," in line
    assert "on 10% of train held out, then refitted on all of train" in line
    fixed = dict(settings, linear_c=0.5)
    assert ", C=0.5, at most 200 L-BFGS" in report.linear_probe_settings(fixed)


def test_a_bad_linear_c_is_named():
    import pytest

    for bad in (0.0, (), (1.0, -1.0)):
        with pytest.raises(ValueError, match="Received: C="):
            EvaluationConfig(linear_c=bad).validate()
    assert EvaluationConfig(linear_c=0.3).validate().to_dict()[
        "linear_c"] == 0.3


def test_the_report_says_which_linear_solver_ran_where():
    rows = [
        {"probe": "linear", "representation": "dim", "layer": "y",
         "solver": "lbfgs"},
        {"probe": "linear", "representation": "dim", "layer": "conv",
         "solver": "minibatch", "epochs": 15, "batch_size": 512,
         "C_grid": [1e-4, 1e-2, 1.0]},
        {"probe": "knn", "representation": "dim", "layer": "conv",
         "solver": "batched"},
        {"probe": "linear", "representation": "pixels", "layer": "pixels",
         "solver": "minibatch", "epochs": 15, "batch_size": 512},
    ]
    assert report.linear_solver_line(rows) == (
        "- Linear solver (by size): scikit-learn's L-BFGS on dim y; "
        "minibatch Adam on the training device on dim conv, pixels "
        "(batch 512, C from 0.0001, 0.01, 1).")
    assert report.linear_solver_line(rows[2:3]) == ""
