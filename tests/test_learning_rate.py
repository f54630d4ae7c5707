"""The learning rate over a run: values derived by hand."""

import math

import keras
import numpy as np
import pytest

from dim_keras import learning_rate
from dim_keras.learning_rate import describe
from dim_keras.learning_rate import learning_rate as rate_for


def _at(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_constant_is_the_rate_itself_whatever_the_length():
    assert rate_for(1e-3, "constant", 1000) == 1e-3
    # A run of unknown length keeps its rate constant.
    assert rate_for(1e-3, "cosine", None) == 1e-3


def test_cosine_warms_up_linearly_then_decays_along_a_half_cosine():
    # 200 steps: 5% (10 steps) of warm-up from 0 to 1e-3, then 190 steps
    # of 1e-3 * (1 + cos(pi * t / 190)) / 2.
    schedule = rate_for(1e-3, "cosine", 200)
    assert learning_rate.WARMUP_FRACTION == 0.05
    expected = {
        0: 0.0,
        5: 0.5e-3,      # halfway up the warm-up
        10: 1e-3,       # the peak
        10 + 95: 0.5e-3,  # halfway down: cos(pi / 2) = 0
        10 + 190 // 3: 1e-3 * (1 + math.cos(math.pi * 63 / 190)) / 2,
        200: 0.0,       # the last step
        400: 0.0,       # and after it
    }
    for step, value in expected.items():
        np.testing.assert_allclose(_at(schedule, step), value, atol=1e-9,
                                   err_msg=f"step {step}")


def test_the_optimizer_follows_its_own_step_count_through_a_config():
    # A resumed run restores the optimizer's iterations; the schedule, saved
    # in the optimizer's config, continues from there.
    optimizer = keras.optimizers.Adam(rate_for(1e-3, "cosine", 200))
    copy = keras.optimizers.Adam.from_config(optimizer.get_config())
    rates = []
    for step in (0, 10, 105):
        copy.iterations.assign(step)
        rates.append(float(keras.ops.convert_to_numpy(copy.learning_rate)))
    np.testing.assert_allclose(rates, [0.0, 1e-3, 0.5e-3], atol=1e-9)


def test_bad_schedules_and_lengths_are_named():
    with pytest.raises(ValueError, match="Received: lr_schedule='step'"):
        rate_for(1e-3, "step", 100)
    with pytest.raises(ValueError, match="Received: total_steps=-3"):
        rate_for(1e-3, "cosine", -3)


def test_the_log_says_what_the_rate_does():
    assert describe(1e-3, "constant", 200) == "lr 0.001"
    assert describe(1e-3, "cosine", 200) == (
        "lr 0.001 warmed up over 10 steps, cosine decay to 0 by step 200")
    assert describe(1e-3, "cosine", None) == "lr 0.001"
