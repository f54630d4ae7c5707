"""Every named choice a user makes, and the one check of such a setting.

The names live here, in a module that imports nothing but the standard
library, so that the command line can offer them (click `Choice` options)
before Keras is loaded and its backend chosen. The modules that implement
each choice import their names from here.
"""

BACKENDS = ("tensorflow", "jax", "torch")
ENCODERS = ("basic32x32", "basic64x64", "alex64x64", "wave1d")
# One encoder on RGB, or CMC's form: one encoder on luminance, one on colour.
CHANNEL_SPLITS = ("none", "luma-chroma")
ESTIMATORS = ("jsd", "dv", "nce")
LOCAL_CRITICS = ("encode_and_dot", "concat_and_convolve")
# Normalizations of the encode-and-dot critic's embeddings: the reference's
# batch norm (hidden layer) and layer norm (output), layer norm only, none.
CRITIC_NORMS = ("batch_layer", "layer", "none")
STRATEGIES = ("auto", "none", "mirrored", "multi-worker", "data-parallel")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
PROBES = ("linear", "mlp", "knn")
# Probes that fit on few labels per class (the MLP's early stopping needs
# a validation part that few labels cannot spare).
FEW_LABEL_PROBES = ("linear", "knn")
PROBED_LAYERS = ("conv", "fc", "y")
# The linear probe's solvers (`dim_keras.evaluation.linear_settings`):
# scikit-learn's L-BFGS (exact, on the CPU), minibatch Adam on the training
# device, or "auto", which picks one by the probe's size.
LINEAR_SOLVERS = ("auto", "lbfgs", "minibatch")
TUNERS = ("random", "bayesian", "hyperband")
EXPORT_FORMATS = ("saved_model", "keras")
# The predictions of local MI across scales (`--scales`, AMDIM's 1-to-5,
# 1-to-7 and 5-to-5 in the project's terms): Y against the local map (DIM),
# Y against the last conv map (coarser), and one location of a view's local
# map against the other view's local map.
SCALES = ("y-local", "y-conv", "local-local")
# How multi-view DIM crops each view (`dim_keras.data.views`).
VIEW_CROPS = ("resized", "translate")
# The learning rate over a run (`dim_keras.learning_rate`): the paper's
# constant rate, or a warm-up and a cosine decay to 0 by the last step.
LR_SCHEDULES = ("constant", "cosine")
# Named recipes (`dim_keras.recipes.named`): the dataset's own, the best
# measured, or the paper's.
RECIPES = ("default", "paper")


def check_choice(name, value, choices, what=None):
    """Returns `value` when it is one of `choices`.

    Example:

    >>> check_choice("estimator", "nce", ("jsd", "dv", "nce"))
    'nce'

    Args:
        name: str, the setting's name, as the user writes it.
        value: the value given.
        choices: sequence of the allowed values.
        what: str or None, what the setting is in words (default: `name`
            with spaces).

    Returns:
        `value`, unchanged.

    Raises:
        ValueError: `"Unknown <what>; expected one of ... Received:
            name=value"` for any other value.
    """
    if value not in choices:
        what = what or name.replace("_", " ")
        raise ValueError(
            f"Unknown {what}; expected one of "
            f"{', '.join(str(c) for c in choices)}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_choices(name, values, choices, what=None):
    """Returns `values` (a non-empty sequence) when each is in `choices`.

    Args:
        name: str, the setting's name.
        values: sequence of values.
        choices: sequence of the allowed values.
        what: str or None, what one value is in words.

    Returns:
        `values` as a tuple.

    Raises:
        ValueError: if `values` is empty or holds an unknown value.
    """
    values = tuple(values)
    unknown = [v for v in values if v not in choices]
    if unknown or not values:
        what = what or name.replace("_", " ")
        raise ValueError(
            f"Unknown {what}; expected some of "
            f"{', '.join(str(c) for c in choices)}. "
            f"Received: {name}={list(values)}"
        )
    return values


def parse_scales(value):
    """The predictions named by a `scales` setting, checked.

    Example:

    >>> parse_scales("y-local,y-conv")
    ('y-local', 'y-conv')

    Args:
        value: str, comma-separated names of `SCALES` (or a sequence of
            them).

    Returns:
        Tuple of distinct prediction names, in the order given.

    Raises:
        ValueError: if `value` names nothing, an unknown prediction or one
            twice.
    """
    if isinstance(value, str):
        names = tuple(v.strip() for v in value.split(",") if v.strip())
    elif isinstance(value, (list, tuple)):
        names = tuple(value)
    else:
        names = ()
    if not names or len(set(names)) != len(names):
        raise ValueError(
            "scales must name each prediction once, comma-separated, from "
            f"{', '.join(SCALES)}. Received: scales={value!r}"
        )
    return check_choices("scales", names, SCALES, what="scale prediction")
