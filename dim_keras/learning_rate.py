"""The learning rate of a run: constant, or warmed up and cosine-decayed.

`"constant"` is the paper's (Adam at one rate for the whole run).
`"cosine"` warms the rate up linearly from 0 over the first
`WARMUP_FRACTION` of the run's steps, then decays it to 0 along a half
cosine by the run's last step (`keras.optimizers.schedules.CosineDecay`,
which the optimizer evaluates at its own step count, so a resumed run
continues where its checkpoint stopped). The run's length is its planned
steps, `epochs * steps_per_epoch`: a run given more epochs later decays
over its new length.
"""

import math

import keras

from dim_keras.choices import LR_SCHEDULES
from dim_keras.choices import check_choice

# The share of a run's steps over which `"cosine"` warms up.
WARMUP_FRACTION = 0.05


def learning_rate(lr, schedule="constant", total_steps=None):
    """The learning rate an optimizer takes.

    Args:
        lr: float, the peak (or constant) learning rate.
        schedule: one of `choices.LR_SCHEDULES`.
        total_steps: int or None, the optimizer steps of the whole run.
            None (unknown, as for a pipeline of unknown length) gives
            the constant rate whatever the schedule.

    Returns:
        `lr` as a float for `"constant"` (or no `total_steps`), else a
        `keras.optimizers.schedules.CosineDecay` warming up to `lr`.
    """
    check_choice("lr_schedule", schedule, LR_SCHEDULES)
    if schedule == "constant" or not total_steps:
        return float(lr)
    total_steps = int(total_steps)
    if total_steps < 1:
        raise ValueError(
            f"total_steps must be a positive number of steps. "
            f"Received: total_steps={total_steps}")
    warmup = warmup_steps(total_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, total_steps - warmup),
        alpha=0.0,
        warmup_target=float(lr),
        warmup_steps=warmup,
    )


def warmup_steps(total_steps):
    """The steps `"cosine"` warms up over: `WARMUP_FRACTION` of the run's.

    Args:
        total_steps: int, the run's optimizer steps.

    Returns:
        int.
    """
    return int(math.ceil(WARMUP_FRACTION * int(total_steps)))


def describe(lr, schedule, total_steps=None):
    """The learning rate in words, for the run's log line.

    Args:
        lr: float, the peak (or constant) rate.
        schedule: one of `choices.LR_SCHEDULES`.
        total_steps: int or None, the run's optimizer steps.

    Returns:
        str.
    """
    if schedule == "constant" or not total_steps:
        return f"lr {lr:g}"
    return (f"lr {lr:g} warmed up over {warmup_steps(total_steps)} steps, "
            f"cosine decay to 0 by step {int(total_steps)}")
