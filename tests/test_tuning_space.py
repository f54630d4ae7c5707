"""The search space: α + β > 0 always, log scales, pins narrow the space."""

import math

import keras_tuner as kt
import numpy as np
import pytest

from dim_keras.tuning import space


def sample(pins, n, tmp_path, seed=3):
    """`n` trials' values drawn by KerasTuner's random-search oracle."""
    hp = kt.HyperParameters()
    space.declare(hp, space.check_pins(pins))
    oracle = kt.oracles.RandomSearchOracle(
        objective=kt.Objective("score", "max"), max_trials=n,
        hyperparameters=hp, seed=seed,
    )
    oracle._set_project_dir(str(tmp_path), "space")
    draws = []
    for i in range(n):
        trial = oracle.create_trial(f"tuner{i}")
        raw = dict(trial.hyperparameters.values)
        values = space.declare(trial.hyperparameters, space.check_pins(pins))
        draws.append((raw, values))
    return draws


@pytest.fixture(scope="module")
def draws(tmp_path_factory):
    return sample({}, 150, tmp_path_factory.mktemp("space"))


def test_every_draw_trains_something_and_stays_in_range(draws):
    terms = [raw["mi_terms"] for raw, _ in draws]
    assert set(terms) == {"local", "global", "both"}
    assert {v["estimator"] for _, v in draws} == {"jsd", "dv", "nce"}
    for raw, v in draws:
        assert v["alpha"] + v["beta"] > 0
        assert (v["alpha"] > 0) == (raw["mi_terms"] in ("global", "both"))
        assert (v["beta"] > 0) == (raw["mi_terms"] in ("local", "both"))
        for name in ("gamma", "lr"):
            low, high = space.RANGES[name]
            assert low <= v[name] <= high
        for name in ("alpha", "beta"):
            if v[name] > 0:
                low, high = space.RANGES[name]
                assert low <= v[name] <= high
        # An inactive weight is not recorded as a hyperparameter.
        assert ("alpha" in raw) == (v["alpha"] > 0)


@pytest.mark.parametrize("name", ["alpha", "beta", "gamma", "lr"])
def test_weights_and_rate_are_log_uniform(draws, name):
    # Log-uniform on [low, high]: half the draws fall below the geometric
    # midpoint sqrt(low * high); uniform sampling would put far fewer
    # there (e.g. 13% for alpha's [0.05, 2]).
    values = np.array([v[name] for _, v in draws])
    values = values[values > 0]
    low, high = space.RANGES[name]
    below = np.mean(values < math.sqrt(low * high))
    assert len(values) > 60
    assert 0.35 < below < 0.65


def test_pins_fix_values_and_narrow_the_terms(tmp_path):
    pins = {"estimator": "nce", "gamma": 0.0, "lr": 2e-4}
    for raw, v in sample(pins, 20, tmp_path):
        assert (v["estimator"], v["gamma"], v["lr"]) == ("nce", 0.0, 2e-4)
        assert raw["estimator"] == "nce"  # recorded as a Fixed value
    for raw, v in sample({"alpha": 0}, 20, tmp_path):
        assert raw["mi_terms"] == "local" and v["alpha"] == 0 < v["beta"]
    for raw, v in sample({"beta": 0}, 20, tmp_path):
        assert raw["mi_terms"] == "global" and v["beta"] == 0 < v["alpha"]
    draws = sample({"alpha": 0.5}, 40, tmp_path)
    assert {raw["mi_terms"] for raw, _ in draws} == {"global", "both"}
    assert all(v["alpha"] == 0.5 for _, v in draws)
    draws = sample({"alpha": 0.5, "beta": 1.0}, 5, tmp_path)
    assert all((v["alpha"], v["beta"]) == (0.5, 1.0) for _, v in draws)


@pytest.mark.parametrize(
    "pins, allowed",
    [
        ({}, ("local", "global", "both")),
        ({"alpha": 0.0}, ("local",)),
        ({"alpha": 1.0}, ("global", "both")),
        ({"beta": 0.0}, ("global",)),
        ({"beta": 2.0}, ("local", "both")),
        ({"alpha": 1.0, "beta": 2.0}, ("both",)),
    ],
)
def test_allowed_terms(pins, allowed):
    assert space.allowed_mi_terms(space.check_pins(pins)) == allowed


@pytest.mark.parametrize(
    "pins, message",
    [
        ({"alpha": 0, "beta": 0}, "alpha=0.0, beta=0.0"),
        ({"estimator": "mine"}, "Received: estimator='mine'"),
        ({"gamma": -1}, "Received: gamma=-1.0"),
        ({"lr": 0}, "Received: lr=0.0"),
        ({"epochs": 3}, "Received: ['epochs']"),
        ({"views": 3}, "Received: views=3"),
        ({"score_clip": -1}, "Received: score_clip=-1.0"),
        ({"score_temperature": 0}, "Received: score_temperature=0.0"),
        ({"scales": "y-huge"}, "Received: scales=['y-huge']"),
        ({"scales": "local-local", "views": 1}, "views=1"),
    ],
)
def test_bad_pins_are_refused(pins, message):
    with pytest.raises(ValueError, match="Received") as error:
        space.check_pins(pins)
    assert message in str(error.value)


def test_the_starting_point_is_declared_as_the_defaults():
    hp = kt.HyperParameters()
    start = {"estimator": "nce", "gamma": 0.5, "lr": 1e-3, "views": 2,
             "score_clip": 20.0, "score_temperature": 22.6}
    space.declare(hp, space.check_pins({}), start)
    assert hp.values["estimator"] == "nce"
    assert hp.values["score_temperature"] == 22.6
    assert hp.values["views"] == 2 and hp.values["score_clip"] == 20.0
    assert hp.values["gamma"] == 0.5 and hp.values["lr"] == 1e-3
    # Clipped into the range.
    hp = kt.HyperParameters()
    space.declare(hp, space.check_pins({}), {"lr": 1.0, "gamma": 0.0})
    assert hp.values["lr"] == space.RANGES["lr"][1]
    assert hp.values["gamma"] == space.RANGES["gamma"][0]


def test_views_and_score_clipping_are_searched(draws, tmp_path):
    assert {v["views"] for _, v in draws} == set(space.VIEWS)
    assert {v["score_clip"] for _, v in draws} == set(space.SCORE_CLIPS)
    pinned = sample({"views": 2, "score_clip": 0}, 5, tmp_path)
    assert {v["views"] for _, v in pinned} == {2}
    assert {v["score_clip"] for _, v in pinned} == {0.0}


def test_scales_are_searched_with_two_views_only(draws, tmp_path):
    for _, v in draws:
        if v["views"] == 1 or v["beta"] == 0:
            assert v["scales"] == "y-local"
    two_views = {v["scales"] for _, v in draws
                 if v["views"] == 2 and v["beta"] > 0}
    assert two_views == set(space.SCALE_CHOICES)
    pinned = sample({"scales": "y-local,local-local"}, 4, tmp_path)
    assert {(v["views"], v["scales"]) for _, v in pinned} == {
        (2, "y-local,local-local")}
    one_view = sample({"views": 1}, 4, tmp_path)
    assert {v["scales"] for _, v in one_view} == {"y-local"}


def test_score_temperature_is_searched_with_two_views_only(draws, tmp_path):
    low, high = space.RANGES["score_temperature"]
    two_views = [v["score_temperature"] for _, v in draws if v["views"] == 2]
    assert all(low <= t <= high for t in two_views)
    assert len(set(two_views)) > 1
    assert {v["score_temperature"] for _, v in draws
            if v["views"] == 1} == {1.0}
    pinned = sample({"score_temperature": 8}, 4, tmp_path)
    assert {v["score_temperature"] for _, v in pinned} == {8.0}
