"""An evaluation's seconds per part add up to its seconds."""

from dim_keras.evaluation import timing


def _results():
    return {
        "seconds": 100.0,
        "probes": [
            {"probe": "linear", "seconds": 20.0},
            {"probe": "linear", "seconds": 5.5},
            {"probe": "knn", "seconds": 1.25},
        ],
        "dependence": [{"measure": "mine", "seconds": 30.0},
                       {"measure": "mine", "seconds": 10.0}],
        "embedding": {"seconds": {"dim": 8.0, "random": 7.0}},
    }


def test_each_part_is_summed_and_the_rest_is_other():
    parts = timing.seconds_by_part(_results(), {"dim": 6.0, "random": 4.0})
    assert parts == {"features": 10.0, "linear": 25.5, "knn": 1.2,
                     "embedding": 15.0, "mine": 40.0, "other": 8.2}
    assert list(parts) == ["features", "linear", "knn", "embedding", "mine",
                           "other"]
    # They add up to the evaluation's seconds, each rounded to 0.1.
    assert abs(sum(parts.values()) - 100.0) <= 0.05 * len(parts)


def test_the_line_names_every_part():
    line = timing.seconds_line({"features": 12.0, "linear": 75.0}, 95.0)
    assert line == "- Time: 1 min 35 s in all: features 12 s, linear 1 min 15 s."
