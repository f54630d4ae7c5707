"""The checks of a run's settings, each written once.

`TrainConfig.validate`, `DeepInfoMax` and the tuner's pins call these, so a
bad value gets the same one-line message wherever it comes from. Like
`dim_keras.choices`, the module imports only the standard library, so the
command line can check settings before Keras is loaded.
"""

import math

from dim_keras.choices import CHANNEL_SPLITS
from dim_keras.choices import check_choice
from dim_keras.choices import parse_scales

VIEWS = (1, 2)


def _is_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def check_weights(alpha, beta, gamma):
    """Checks the objective's weights.

    Args:
        alpha: weight of the global MI term.
        beta: weight of the local MI term.
        gamma: weight of the prior matching term.

    Raises:
        ValueError: if a weight is negative or not finite, or if alpha and
            beta are both zero (nothing would train the representation).
    """
    for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ValueError(
                f"Weights must be finite numbers. Received: {name}={value!r}"
            )
        if value < 0:
            raise ValueError(
                f"Weights must be non-negative. Received: {name}={value}"
            )
    if alpha == 0 and beta == 0:
        raise ValueError(
            "At least one of alpha (global MI) and beta (local MI) must be "
            f"positive. Received: alpha={alpha}, beta={beta}"
        )


def check_lr(lr):
    """Checks a learning rate: a finite positive number.

    Raises:
        ValueError: otherwise.
    """
    if not (_is_number(lr) and lr > 0):
        raise ValueError(f"lr must be positive. Received: lr={lr}")


def check_non_negative(name, value, meaning=""):
    """Checks a setting that is a finite number at least 0.

    Args:
        name: the setting's name, for the message.
        value: the value to check.
        meaning: str, appended in parentheses (e.g. `"0 is off"`).

    Raises:
        ValueError: unless `value` is a finite number `>= 0`.
    """
    if not (_is_number(value) and value >= 0):
        note = f" ({meaning})" if meaning else ""
        raise ValueError(
            f"{name} must be a non-negative number{note}. "
            f"Received: {name}={value!r}"
        )


def check_score_temperature(score_temperature):
    """Checks the temperature that divides the critic scores.

    Args:
        score_temperature: the value to check.

    Raises:
        ValueError: unless it is a finite positive number.
    """
    if not (_is_number(score_temperature) and score_temperature > 0):
        raise ValueError(
            "score_temperature must be a positive number (1 leaves the "
            "scores as they are). Received: "
            f"score_temperature={score_temperature!r}"
        )


def check_score_transforms(score_temperature, score_clip, score_penalty):
    """Checks the transforms of the critic scores; None is left unset.

    Args:
        score_temperature: float > 0 dividing every score, or None.
        score_clip: float >= 0, the soft clipping (0 is off), or None.
        score_penalty: float >= 0, the penalty's weight (0 is off), or None.

    Raises:
        ValueError: naming the bad setting.
    """
    if score_temperature is not None:
        check_score_temperature(score_temperature)
    for name, value in (("score_clip", score_clip),
                        ("score_penalty", score_penalty)):
        if value is not None:
            check_non_negative(name, value, "0 is off")


def check_views(views):
    """Checks the number of views: 1 (DIM) or 2 (multi-view DIM).

    Raises:
        ValueError: otherwise.
    """
    if views not in VIEWS or isinstance(views, bool):
        raise ValueError(
            "views must be 1 (DIM) or 2 (multi-view DIM: two views of "
            f"each image). Received: views={views!r}"
        )


def check_view_scheme(views, occlusion, channel_split, scales, beta=None):
    """Checks that a view scheme's settings combine.

    Args:
        views: 1, 2, or None (unset: not checked against the others).
        occlusion: bool.
        channel_split: one of `choices.CHANNEL_SPLITS`.
        scales: the predictions of local MI (see `choices.parse_scales`),
            or None (unset).
        beta: the weight of local MI, or None; with 0, scales other than
            DIM's are refused.

    Returns:
        The parsed scales (a tuple), or None when unset.

    Raises:
        ValueError: naming the settings that do not combine.
    """
    if views is not None:
        check_views(views)
    parsed = None if scales is None else parse_scales(scales)
    check_choice("channel_split", channel_split, CHANNEL_SPLITS)
    split = channel_split != "none"
    if views == 2 and occlusion:
        raise ValueError(
            "occlusion is a single-view objective; multi-view DIM "
            "already scores each view against another. Received: "
            "views=2, occlusion=True"
        )
    if split and ((views is not None and views != 1) or occlusion):
        raise ValueError(
            "channel_split's two encoders see two channel groups of one "
            "view; it does not combine with views=2 or occlusion. "
            f"Received: channel_split={channel_split!r}, "
            f"views={views!r}, occlusion={occlusion!r}"
        )
    if (parsed is not None and "local-local" in parsed and views != 2
            and not split):
        raise ValueError(
            "The local-local prediction scores one view's local map "
            "against another view's; it needs views=2 or a channel "
            f"split. Received: scales={','.join(parsed)!r}, "
            f"views={views!r}"
        )
    if beta == 0 and parsed not in (None, ("y-local",)):
        raise ValueError(
            "scales choose the predictions of local MI, which is off "
            f"(beta=0). Received: scales={scales!r}, beta=0"
        )
    return parsed


def check_chunk_seconds(chunk_seconds):
    """Checks a speech chunk length in seconds: a finite positive number.

    (The encoder checks that a chunk holds enough samples for its strides.)

    Raises:
        ValueError: otherwise.
    """
    if not (_is_number(chunk_seconds) and chunk_seconds > 0):
        raise ValueError(
            "chunk_seconds must be a positive number of seconds. "
            f"Received: chunk_seconds={chunk_seconds!r}"
        )
