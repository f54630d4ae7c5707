"""Reading a finished run: its settings and its trained encoder.

`read_run_config` reads the settings of a run directory with a trained
encoder; `encoder_path` finds the encoder file of a run directory,
`load_encoder` loads it, and `read_encoder_info` reads the run fields its
`encoder.json` records.
"""

import os

from dim_keras.encoder_file import load_encoder_file
from dim_keras.encoder_file import metadata_path
from dim_keras.runs.files import CONFIG_FILE
from dim_keras.runs.files import DamagedFileError
from dim_keras.runs.files import ENCODER_FILE
from dim_keras.runs.files import RunError
from dim_keras.runs.files import _first_line
from dim_keras.runs.files import read_config
from dim_keras.runs.files import read_json
from dim_keras.runs.files import run_paths


def read_run_config(run_dir):
    """Reads the `config.json` of a run directory with a trained encoder.

    Args:
        run_dir: str.

    Returns:
        The settings dict.

    Raises:
        RunError: when `run_dir` is not a run directory with a trained
            encoder, or its config cannot be read.
    """
    paths = run_paths(run_dir)
    if not os.path.isdir(run_dir):
        raise RunError(f"No run directory at {run_dir}.")
    if not os.path.exists(paths["config"]) or not os.path.exists(
        paths["encoder"]
    ):
        raise RunError(
            f"{run_dir} is not a run directory with a trained encoder "
            f"(needs {CONFIG_FILE} and {ENCODER_FILE}); train one with "
            "`dim-keras train --out DIR`."
        )
    return read_config(paths["config"])


def encoder_path(path):
    """The encoder file of a run directory, or `path` if it is one.

    Args:
        path: a `.keras` file, or a run directory holding `encoder.keras`.

    Returns:
        str, the `.keras` file.

    Raises:
        ValueError: if `path` is neither.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            raise ValueError(
                "This is a SavedModel; load it with tf.saved_model.load or "
                f"keras.layers.TFSMLayer. Received: path={path}"
            )
        candidate = os.path.join(path, ENCODER_FILE)
        if not os.path.exists(candidate):
            raise ValueError(
                f"No {ENCODER_FILE} in this directory (is it a run directory "
                f"with a finished epoch?). Received: path={path}"
            )
        return candidate
    if not os.path.exists(path):
        raise ValueError(f"No such file or directory. Received: path={path}")
    if not path.endswith(".keras"):
        raise ValueError(
            f"Expected a .keras file or a run directory. Received: path={path}"
        )
    return path


def load_encoder(path):
    """Loads a DIM encoder from a `.keras` file or a run directory.

    Loading uses Keras's safe mode; the encoder needs no `dim_keras` code.

    Example:

    ```python
    encoder = dim_keras.load_encoder("runs/my-run")
    features = encoder(images)["y"]
    ```

    Args:
        path: a `.keras` file, or a run directory holding `encoder.keras`.

    Returns:
        The Functional encoder (dict outputs `local`, `conv`, `fc`, `y`).

    Raises:
        ValueError: if `path` holds no loadable DIM encoder.
    """
    file = encoder_path(path)
    try:
        return load_encoder_file(file)
    except ValueError as e:
        raise DamagedFileError(
            file, _first_line(e).split(". Received")[0],
            "train the run again, or restore the file from a copy") from None


def read_encoder_info(encoder_file):
    """Run fields (dataset, epochs done) from an encoder's sidecar.

    Args:
        encoder_file: str, a `.keras` file.

    Returns:
        Dict with the `dataset` and `epochs_done` the sidecar records
        (empty when it has none, or no sidecar exists).
    """
    path = metadata_path(encoder_file)
    if not os.path.exists(path):
        return {}
    remedy = ("remove it (it only describes the encoder; the next epoch "
              "of the run rewrites it)")
    metadata = read_json(path, remedy=remedy)
    if metadata.get("format") != "dim-keras encoder":
        raise DamagedFileError(
            path, "not a dim-keras encoder description (no \"format\": "
            "\"dim-keras encoder\")", remedy)
    keys = ("dataset", "epochs_done")
    return {k: metadata[k] for k in keys if k in metadata}
