"""The search space of `dim-keras tune`: α, β, γ, the estimator, the rate,
one or two views, the scales of local MI, and the soft clipping of critic
scores.

Which mutual-information terms train the encoder is itself a choice,
`mi_terms` in `{"local", "global", "both"}`; α (global MI) is sampled only
when the global term is on and β (local MI) only when the local term is on,
each on a log scale. A term that is off has weight 0, so α + β > 0 in every
trial without rejecting anything (KerasTuner conditional scopes). γ (prior
matching) and the learning rate are sampled on log scales.

With two views, the predictions of local MI (`scales`) are a choice too:
DIM's alone, with Y against the coarser conv map, or AMDIM's three; with
one view they are DIM's. So is the temperature that divides the critic
scores (log scale; 1 leaves them alone, AMDIM's is the square root of the
critic's width); with one view it is 1.

Any of `PINNABLE` (`estimator`, `alpha`, `beta`, `gamma`, `lr`, `views`,
`score_temperature`, `score_clip`, `scales`) can be pinned to one value; a pinned value is recorded as a `Fixed` hyperparameter, and the
choice of `mi_terms` is narrowed to the terms the pins allow.
"""

from dim_keras import checks
from dim_keras import estimators

PINNABLE = ("estimator", "alpha", "beta", "gamma", "lr", "views",
            "score_temperature", "score_clip", "scales")
MI_TERMS = ("local", "global", "both")
# Multi-view DIM (one or two views) and AMDIM's soft clipping of scores
# (off, or c = 20) are choices of the search too.
VIEWS = checks.VIEWS
SCORE_CLIPS = (0.0, 20.0)
# The predictions of local MI searched with two views.
SCALE_CHOICES = ("y-local", "y-local,y-conv", "y-local,y-conv,local-local")
RANGES = {
    "alpha": (0.05, 2.0),
    "beta": (0.05, 2.0),
    "gamma": (0.01, 1.0),
    "lr": (1e-5, 3e-3),
    "score_temperature": (1.0, 64.0),
}


def _uses(term, mi_terms):
    return mi_terms in (term, "both")


def check_pins(pins):
    """Checks pinned values and that they leave something to train.

    Args:
        pins: dict, name (one of `PINNABLE`) to value.

    Returns:
        The pins, floats as floats.

    Raises:
        ValueError: on an unknown name or a bad value.
    """
    unknown = sorted(set(pins) - set(PINNABLE))
    if unknown:
        raise ValueError(
            f"Only {', '.join(PINNABLE)} can be pinned. Received: {unknown}"
        )
    pins = dict(pins)
    if "estimator" in pins:
        estimators.check_estimator(pins["estimator"])
    for name in ("alpha", "beta", "gamma", "lr", "score_temperature",
                 "score_clip"):
        if name in pins:
            pins[name] = float(pins[name])
    checks.check_weights(
        pins.get("alpha", 1.0), pins.get("beta", 1.0), pins.get("gamma", 1.0)
    )
    if "lr" in pins:
        checks.check_lr(pins["lr"])
    if "views" in pins:
        checks.check_views(pins["views"])
    checks.check_score_transforms(pins.get("score_temperature"),
                                  pins.get("score_clip"), None)
    if "scales" in pins:
        scales = checks.check_view_scheme(
            pins.get("views", 2), False, "none", pins["scales"])
        pins["scales"] = ",".join(scales)
        if "local-local" in scales:
            pins["views"] = 2
    return pins


def allowed_mi_terms(pins):
    """The `mi_terms` choices consistent with pinned α, β and scales.

    Args:
        pins: checked pins.

    Returns:
        Tuple of the allowed values of `MI_TERMS`.
    """
    allowed = []
    for terms in MI_TERMS:
        if "alpha" in pins and _uses("global", terms) != (pins["alpha"] > 0):
            continue
        if "beta" in pins and _uses("local", terms) != (pins["beta"] > 0):
            continue
        if (pins.get("scales", "y-local") != "y-local"
                and not _uses("local", terms)):
            continue  # pinned predictions of local MI need it on
        allowed.append(terms)
    return tuple(allowed)


def declare(hp, pins, start=None):
    """Declares the space on `hp` and returns this trial's values.

    Args:
        hp: `keras_tuner.HyperParameters`.
        pins: checked pins (see `check_pins`).
        start: dict or None, the starting point: `estimator`, `gamma`,
            `lr`, `views`, `score_temperature` and `score_clip` values (the dataset's recipe and
            the base settings) declared as the hyperparameters' defaults
            (KerasTuner's `default`), each clipped into its range.

    Returns:
        Dict with `estimator`, `alpha`, `beta`, `gamma`, `lr`, `views`,
        `score_temperature`, `score_clip` and `scales`, the `TrainConfig`
        values of the trial (α or β is 0 where its term is off; `scales`
        is DIM's with one view or without local MI; `score_temperature`
        is 1 with one view unless pinned).
    """

    start = start or {}

    def pinned_or(name, sample):
        if name in pins:
            return hp.Fixed(name, pins[name])
        return sample()

    def log_float(name):
        low, high = RANGES[name]
        default = start.get(name)
        if default is not None:
            default = min(max(float(default), low), high)
        return hp.Float(name, low, high, sampling="log", default=default)

    estimator = pinned_or(
        "estimator", lambda: hp.Choice("estimator", list(estimators.ESTIMATORS),
                                       default=start.get("estimator"))
    )
    terms = allowed_mi_terms(pins)
    if len(terms) == 1:
        mi_terms = hp.Fixed("mi_terms", terms[0])
    else:
        mi_terms = hp.Choice("mi_terms", list(terms))
    weights = {}
    for name, term in (("alpha", "global"), ("beta", "local")):
        if name in pins:
            weights[name] = hp.Fixed(name, pins[name])
            continue
        active = [t for t in terms if _uses(term, t)]
        with hp.conditional_scope("mi_terms", active):
            low, high = RANGES[name]
            value = hp.Float(name, low, high, sampling="log")
        weights[name] = value if _uses(term, mi_terms) else 0.0
    gamma = pinned_or("gamma", lambda: log_float("gamma"))
    lr = pinned_or("lr", lambda: log_float("lr"))
    views = pinned_or("views", lambda: hp.Choice(
        "views", list(VIEWS), default=start.get("views")))
    if "scales" in pins:
        scales = hp.Fixed("scales", pins["scales"])
    elif "views" in pins and pins["views"] != 2:
        scales = "y-local"
    else:
        with hp.conditional_scope("views", [2]):
            sampled = hp.Choice("scales", list(SCALE_CHOICES))
        scales = sampled if int(views) == 2 else "y-local"
    if weights["beta"] == 0:
        scales = "y-local"
    if "score_temperature" in pins:
        temperature = hp.Fixed("score_temperature",
                               pins["score_temperature"])
    elif "views" in pins and pins["views"] != 2:
        temperature = 1.0
    else:
        with hp.conditional_scope("views", [2]):
            sampled = log_float("score_temperature")
        temperature = sampled if int(views) == 2 else 1.0
    score_clip = pinned_or("score_clip", lambda: hp.Choice(
        "score_clip", list(SCORE_CLIPS),
        default=(None if start.get("score_clip") not in SCORE_CLIPS
                 else float(start["score_clip"]))))
    return {
        "estimator": estimator,
        "alpha": float(weights["alpha"]),
        "beta": float(weights["beta"]),
        "gamma": float(gamma),
        "lr": float(lr),
        "views": int(views),
        "score_temperature": float(temperature),
        "score_clip": float(score_clip),
        "scales": str(scales),
    }
