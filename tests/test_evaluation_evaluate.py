"""evaluate_run and `dim-keras evaluate` on a tiny fake run."""

import json
import os

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from dim_keras.apps.cli import main
from dim_keras import data
from dim_keras.data import ImageDataset
from dim_keras.evaluation import EvaluationConfig
from dim_keras.evaluation import evaluate_run
from dim_keras.evaluation.evaluate import random_encoder
from dim_keras.networks import basic32x32
from dim_keras.runs import RunError

SIZE = 16


def _fake_dataset(name, labelled=True, n_train=48, n_test=24, seed=0):
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(3, size=n)
        # Class c brightens channel c: easy to tell apart.
        images = rng.integers(0, 60, size=(n, SIZE, SIZE, 3))
        images[np.arange(n), :, :, labels] += 150
        return images.astype(np.uint8), labels.astype(np.int64)

    return ImageDataset(
        name, SIZE, 3 if labelled else None,
        {"train": split(n_train), "test": split(n_test)},
    )


@pytest.fixture
def fake_run(tmp_path, monkeypatch):
    datasets = {"fake": _fake_dataset("fake"),
                "fake_unlabelled": _fake_dataset("fake_unlabelled",
                                                 labelled=False)}

    def get_dataset(name, data_dir=None, image_size=None):
        # Datasets are asked for at the size the run's encoder takes.
        assert image_size == SIZE
        if name not in datasets:
            raise ValueError(f"Unknown dataset. Received: dataset={name!r}")
        return datasets[name]

    monkeypatch.setattr(data, "get_dataset", get_dataset)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    keras.utils.set_random_seed(0)
    basic32x32(image_size=SIZE, representation_dim=8).save(
        str(run_dir / "encoder.keras"))
    (run_dir / "config.json").write_text(
        json.dumps({"dataset": "fake", "encoder": "basic32x32"}))
    (run_dir / "history.csv").write_text(
        "epoch,loss,local_mi\n1,3.0,-3.0\n2,2.0,-2.0\n")
    return str(run_dir)


TINY = dict(mlp_epochs=2, mlp_patience=1, mine_steps=3, mine_batch_size=8,
            mine_units=8, ndm_steps=3, ndm_batch_size=8, few_labels=(1, 2),
            few_label_draws=2)


def test_evaluate_run_writes_every_number_and_the_tables(fake_run):
    results = evaluate_run(fake_run, config=EvaluationConfig(**TINY),
                           log=lambda message: None, verbose=0)
    for name in ("evaluation.json", "evaluation.md", "probes.png",
                 "history.png", "embedding.png", "label_efficiency.png"):
        with open(os.path.join(fake_run, name), "rb") as f:
            content = f.read()
        assert len(content) > 1000
        if name.endswith(".png"):
            assert content.startswith(b"\x89PNG\r\n\x1a\n")
    with open(os.path.join(fake_run, "evaluation.json")) as f:
        written = json.load(f)
    few = [p for p in written["probes"] if "labels_per_class" in p]
    probes = [p for p in written["probes"] if "labels_per_class" not in p]
    # DIM: 3 layers x 3 probes; baselines: linear and kNN by default.
    assert len(probes) == 3 * 3 + 3 * 2 + 2
    # Few labels: DIM's and random weights' 3 layers and the pixels, each
    # by linear and kNN probes at 1 and 2 labels per class.
    assert len(few) == (3 + 3 + 1) * 2 * 2
    assert {(p["labels_per_class"], p["draws"], p["train_size"])
            for p in few} == {(1, 2, 3), (2, 2, 6)}
    assert {p["probe"] for p in few} == {"linear", "knn"}
    assert not [p for p in probes
                if p["representation"] != "dim" and p["probe"] == "mlp"]
    assert {(p["representation"], p["probe"]) for p in probes
            if p["layer"] == "pixels"} == {("pixels", "linear"),
                                           ("pixels", "knn")}
    assert all(0.0 <= p["accuracy"] <= 1.0 for p in probes)
    conv = [p for p in probes if p["layer"] == "conv"][0]
    assert conv["feature_dim"] == 2 * 2 * 256 and conv["test_size"] == 24
    # Pixel probes see the flattened images.
    assert [p["feature_dim"] for p in probes
            if p["layer"] == "pixels"] == [SIZE * SIZE * 3] * 2
    measures = {(d["representation"], d["measure"])
                for d in written["dependence"]}
    assert measures == {("dim", "mine"), ("dim", "ndm"), ("random", "mine"),
                        ("random", "ndm")}
    assert written["settings"]["mine_steps"] == 3
    # Tiny problems go to L-BFGS; each record says which solver ran.
    assert {p["solver"] for p in probes if p["probe"] == "linear"} == {
        "lbfgs"}
    assert {p["solver"] for p in probes if p["probe"] == "knn"} == {
        "batched"}
    parts = written["seconds_by_part"]
    assert set(parts) == {"features", "linear", "mlp", "knn", "few_labels",
                          "embedding", "mine", "ndm", "other"}
    assert abs(sum(parts.values()) - written["seconds"]) < 1.0
    table = open(os.path.join(fake_run, "evaluation.md")).read()
    assert "| Probe | DIM conv | DIM fc | DIM y | Random conv |" in table
    assert "Pixels |" in table and "MINE" in table and "NDM" in table
    assert "- Linear solver (by size): scikit-learn's L-BFGS on dim conv" in (
        table)
    assert "- Time: " in table and "in all: features " in table
    assert "## Top-1 test accuracy with few labels (%)" in table
    assert "| linear | 1 |" in table and "| kNN | 2 |" in table
    mlp_row = [line for line in table.splitlines()
               if line.startswith("| MLP")][0]
    assert mlp_row.count("—") == 4  # random conv, fc, y and pixels
    assert results["paths"]["json"].endswith("evaluation.json")


def test_the_map_is_of_the_test_split_y_of_both_encoders(fake_run,
                                                          monkeypatch):
    from dim_keras.evaluation import embedding
    from dim_keras.evaluation.features import extract_features
    from dim_keras.runs import load_encoder

    mapped = []
    real_map = embedding.embedding_map

    def recording_map(y, labels=None, **kwargs):
        mapped.append((np.array(y), np.array(labels), kwargs))
        return real_map(y, labels, **kwargs)

    monkeypatch.setattr(embedding, "embedding_map", recording_map)
    results = evaluate_run(
        fake_run, config=EvaluationConfig(probes=("knn",), layers=("y",),
                                          mine_steps=0, ndm_steps=0,
                                          embedding_points=20),
        log=lambda message: None, verbose=0)
    test_images, test_labels = data.get_dataset(
        "fake", image_size=SIZE).arrays("test")
    encoder = load_encoder(fake_run)
    assert len(mapped) == 2  # DIM, then random weights
    for (y, _, _), model in zip(mapped, (
            encoder, random_encoder(encoder, seed=0))):
        expected = extract_features(model, test_images, layers=("y",))["y"]
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    for y, labels, kwargs in mapped:
        assert y.shape == (24, 8)
        np.testing.assert_array_equal(labels, test_labels)
        assert kwargs["max_points"] == 20
    assert results["embedding"]["points"] == 20
    assert results["embedding"]["of"] == 24
    assert os.path.exists(results["paths"]["embedding_plot"])


def test_easy_classes_are_probed_well_from_pixels(fake_run):
    results = evaluate_run(
        fake_run, config=EvaluationConfig(probes=("linear", "knn"),
                                          layers=("y",), mine_steps=0,
                                          ndm_steps=0),
        log=lambda message: None, verbose=0)
    pixel = [p for p in results["probes"] if p["layer"] == "pixels"]
    assert all(p["accuracy"] == 1.0 for p in pixel)


def test_a_run_without_labels_gets_a_clear_message(fake_run):
    with pytest.raises(RunError, match="has no labels"):
        evaluate_run(fake_run, dataset="fake_unlabelled",
                     log=lambda message: None)
    result = CliRunner().invoke(
        main, ["evaluate", fake_run, "--dataset", "fake_unlabelled"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Dataset 'fake_unlabelled' has no"
                                    " labels")
    assert "Traceback" not in result.output


def test_cli_refuses_a_directory_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not a run directory" in result.output
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "none")])
    assert result.exit_code == 1 and "No run directory" in result.output


def test_cli_evaluate_prints_the_table(fake_run):
    result = CliRunner().invoke(
        main, ["evaluate", fake_run, "--mlp-epochs", "1", "--mine-steps", "0",
               "--ndm-steps", "0", "--no-baselines"])
    assert result.exit_code == 0, result.output
    assert "| Probe | DIM conv | DIM fc | DIM y |" in result.output
    assert "Random" not in result.output


def test_train_ends_by_evaluating_unless_told_not_to(tmp_path, monkeypatch):
    import dim_keras.evaluation
    import dim_keras.evaluation.report
    import dim_keras.training

    run_dir = str(tmp_path / "run")
    history = [{"epoch": 1, "loss": 1.0, "local_mi": 0.5, "global_mi": 0.0}]

    def fake_train(config, out):
        return {"paths": {"run_dir": out, "encoder": "e", "config": "c",
                          "history": "h", "checkpoint": "k"},
                "trained": True, "epochs_done": 1, "history": history,
                "dataset": None}

    evaluated, configs = [], []

    def fake_evaluate_run(run, dataset=None, data_dir=None, config=None,
                          log=print, data=None):
        evaluated.append(run)
        configs.append(config)
        return {"paths": {"markdown": "m", "json": "j"}}

    monkeypatch.setattr(dim_keras.training, "train", fake_train)
    monkeypatch.setattr(dim_keras.evaluation, "evaluate_run",
                        fake_evaluate_run)
    monkeypatch.setattr(dim_keras.evaluation.report, "markdown",
                        lambda results: "TABLE")
    result = CliRunner().invoke(main, ["train", "--out", run_dir,
                                       "--no-evaluate"])
    assert result.exit_code == 0, result.output
    assert evaluated == [] and "TABLE" not in result.output
    result = CliRunner().invoke(main, ["train", "--out", run_dir])
    assert result.exit_code == 0, result.output
    assert evaluated == [run_dir] and "TABLE" in result.output
    # The first run's evaluation leaves MINE and NDM out, and says how to
    # get them; --full-evaluation keeps them.
    assert (configs[0].mine_steps, configs[0].ndm_steps) == (0, 0)
    assert configs[0].probes == ("linear", "knn")
    assert configs[0].few_labels == EvaluationConfig().few_labels
    assert f"`dim-keras evaluate {run_dir}` adds them" in result.output
    result = CliRunner().invoke(main, ["train", "--out", run_dir,
                                       "--full-evaluation"])
    assert result.exit_code == 0, result.output
    assert configs[1].mine_steps == EvaluationConfig().mine_steps > 0
    assert "adds them" not in result.output


def test_cli_evaluate_takes_the_few_label_ladder(fake_run):
    result = CliRunner().invoke(
        main, ["evaluate", fake_run, "--mlp-epochs", "1", "--mine-steps", "0",
               "--ndm-steps", "0", "--few-labels", "2,1",
               "--few-label-draws", "2"])
    assert result.exit_code == 0, result.output
    with open(os.path.join(fake_run, "evaluation.json")) as f:
        written = json.load(f)
    assert written["settings"]["few_labels"] == [2, 1]
    rungs = {(p["labels_per_class"], p["draws"]) for p in written["probes"]
             if "labels_per_class" in p}
    assert rungs == {(1, 2), (2, 2)}
    assert "labelled image per class" in result.output  # the verdict
    for bad, message in (("one", "Received: --few-labels=one"),
                         ("0,1", "Received: ladder=[0, 1]")):
        result = CliRunner().invoke(main, ["evaluate", fake_run,
                                           "--few-labels", bad])
        assert result.exit_code == 2 and message in result.output
        assert "Traceback" not in result.output


def test_each_step_ends_with_one_line_off_a_terminal(fake_run):
    lines = []
    evaluate_run(fake_run, config=EvaluationConfig(
        probes=("linear", "mlp"), layers=("y",), mlp_epochs=2,
        mine_steps=3, mine_batch_size=8, mine_units=8, ndm_steps=3,
        ndm_batch_size=8, embedding_points=0), log=lines.append, verbose=0)
    probe_lines = [line for line in lines if " probe on dim y" in line]
    assert len(probe_lines) == 2
    assert probe_lines[0].startswith("  linear probe on dim y (8 features): ")
    assert "accuracy" in probe_lines[0] and " in " in probe_lines[0]
    assert "(early stopping): " in probe_lines[1]
    assert [line for line in lines if "MINE" in line][0].endswith(" nats")
    assert not any("\r" in line for line in lines)


@pytest.mark.slow  # about 30 s: two networks fine-tuned
def test_cli_evaluate_finetunes_on_request(fake_run):
    result = CliRunner().invoke(
        main, ["evaluate", fake_run, "--mlp-epochs", "1", "--mine-steps", "0",
               "--ndm-steps", "0", "--few-labels", "2",
               "--few-label-draws", "1", "--finetune"])
    assert result.exit_code == 0, result.output
    with open(os.path.join(fake_run, "evaluation.json")) as f:
        written = json.load(f)
    tuned = [p for p in written["probes"] if p["probe"] == "finetune"]
    assert {(p["representation"], p["labels_per_class"]) for p in tuned} == {
        ("dim", 2), ("random", 2)}
    assert "finetune" in written["seconds_by_part"]
    assert "| fine-tuned | 2 |" in result.output
