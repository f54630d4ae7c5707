"""The quality benchmark, end to end on `digits` with a tiny budget."""

import json

import keras
import pytest

from benchmarks import quality


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="runs on TensorFlow"
)
def test_two_seeds_write_every_accuracy_and_a_table(tmp_path, capsys):
    out = tmp_path / "runs"
    assert quality.main([
        "--dataset", "digits", "--steps-per-epoch", "2", "--epochs", "1",
        "--batch-size", "16", "--recipe", '{"critic_units": 16}',
        "--seeds", "0", "1", "--out", str(out), "--mine-steps", "20",
    ]) == 0
    report = json.loads((out / "quality.json").read_text())
    (recipe,) = report["recipes"]
    assert recipe["config"]["critic_units"] == 16
    assert recipe["config"]["encoder"] == "basic32x32"
    assert [run["seed"] for run in recipe["runs"]] == [0, 1]
    for run in recipe["runs"]:
        assert run["images_seen"] == 2 * 16
        assert run["images_per_s"] > 0
        for probe in ("linear", "knn"):
            for rep in ("dim", "random"):
                layers = run["accuracy"][rep][probe]
                assert sorted(layers) == ["conv", "fc", "y"]
                assert all(0 <= a <= 1 for a in layers.values())
            assert 0 <= run["accuracy"]["pixels"][probe]["pixels"] <= 1
        for rep in ("dim", "random"):
            mine = run["mine"][rep]
            assert mine["units"] == "nats" and mine["steps_run"] <= 20
            assert mine["critic"].startswith("convolutional image branch")
    assert report["dataset"]["splits"] == {"train": 1437, "test": 360}
    assert report["versions"]["backend"] == "tensorflow"
    assert report["complete"]
    # One random-weights baseline per seed, one pixels baseline.
    assert len(report["baselines"]["random"]) == 2
    assert len(report["baselines"]["pixels"]) == 1
    printed = capsys.readouterr().out
    assert "0: critic_units=16" in printed.split("Probe accuracy")[-1]
    assert "MINE I(X; Y) of y" in printed.split("Probe accuracy")[-1]


def test_unknown_recipe_key_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        quality.main(["--recipe", '{"critic_unitz": 16}',
                      "--out", str(tmp_path)])
    assert exit_info.value.code != 0
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert "critic_unitz" in error and "Unknown config keys" in error
    assert not list(tmp_path.iterdir())


def test_used_run_directories_need_resume(tmp_path):
    recipes = [{"index": 0}]
    used = tmp_path / "recipe0-seed1"
    used.mkdir()
    (used / "config.json").write_text("{}")
    with pytest.raises(quality.QualityError, match="--resume"):
        quality.fresh_run_dirs(str(tmp_path), recipes, [0, 1])
    dirs = quality.fresh_run_dirs(str(tmp_path), recipes, [0, 1],
                                  allow_used=True)
    assert dirs[(0, 1)] == str(used)
    assert dirs[(0, 0)] == str(tmp_path / "recipe0-seed0")


def test_a_minutes_budget_stops_at_the_first_epoch_end_past_it(monkeypatch):
    import types

    now = [0.0]
    monkeypatch.setattr(quality.time, "perf_counter", lambda: now[0])
    budget = quality.training_budget(minutes=1.0, curve_points=2)
    weights = [0]
    model = types.SimpleNamespace(
        stop_training=False,
        encoder=types.SimpleNamespace(get_weights=lambda: list(weights)))
    budget.set_model(model)
    budget.on_train_begin()
    # Epochs of 25 s: the marks at 30 s and 60 s are passed at the ends of
    # epochs 2 (50 s) and 3 (75 s), where the budget also stops training.
    for epoch in range(3):
        now[0] += 25.0
        weights[0] = epoch + 1
        budget.on_epoch_end(epoch)
        assert model.stop_training == (epoch == 2)
    assert [(s["epochs"], s["minutes"], s["weights"])
            for s in budget.snapshots] == [(2, 0.83, [2]), (3, 1.25, [3])]


def test_minutes_cap_the_epochs_and_a_curve_needs_them():
    args = quality.parse_args(["--minutes", "2"])
    (recipe,) = quality.build_recipes(args)
    assert recipe["config"].epochs == quality.MAX_BUDGET_EPOCHS
    args = quality.parse_args(["--minutes", "2", "--epochs", "3"])
    assert quality.build_recipes(args)[0]["config"].epochs == 3
    with pytest.raises(quality.QualityError, match="--curve-points=3"):
        quality.build_recipes(quality.parse_args(["--curve-points", "3"]))
    with pytest.raises(quality.QualityError, match="Received: 0.0"):
        quality.build_recipes(quality.parse_args(["--minutes", "0"]))


def test_the_minutes_curve_averages_seeds_point_by_point(tmp_path):
    from benchmarks import plot_quality

    def run(shift):
        accuracy = {"linear": {layer: 0.5 + shift for layer in "conv fc y".split()},
                    "knn": {layer: 0.4 for layer in "conv fc y".split()}}
        return {"curve": [{"minutes": 1.0 + shift, "epochs": 1,
                           "accuracy": accuracy},
                          {"minutes": 2.0 + shift, "epochs": 2,
                           "accuracy": accuracy}],
                "accuracy": {"dim": accuracy, "random": accuracy,
                             "pixels": {"linear": {"pixels": 0.3},
                                        "knn": {"pixels": 0.2}}}}

    report = {"recipes": [{"index": 0, "label": "defaults",
                           "runs": [run(0.0), run(0.2)]}]}
    found = plot_quality.curves(report)
    assert list(found) == ["0: defaults"]
    (m1, a1), (m2, a2) = found["0: defaults"]["y"]
    assert (m1, m2) == pytest.approx((1.1, 2.1))
    assert a1 == pytest.approx(60.0) and a2 == pytest.approx(60.0)
    plot_quality.plot(report, str(tmp_path / "curve.png"))
    assert (tmp_path / "curve.png").stat().st_size > 0
