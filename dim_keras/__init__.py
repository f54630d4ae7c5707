"""dim_keras: Deep InfoMax in Keras 3.

The public names below are imported on first use, so that `import
dim_keras.config` or the `dim-keras` command can start without loading
Keras (whose backend the command line chooses first).

Example:

```python
import dim_keras

encoder = dim_keras.load_encoder("runs/my-run")
features = dim_keras.extract_features(encoder, images, layers=("y",))
```
"""

import importlib

from dim_keras.version import __version__  # noqa: F401

_PUBLIC = {
    "DeepInfoMax": "dim_keras.model",
    "TrainConfig": "dim_keras.config",
    "estimate": "dim_keras.estimators",
    "extract_features": "dim_keras.evaluation.features",
    "load_encoder": "dim_keras.runs",
}
_SUBMODULES = ("estimators", "networks", "objective")

__all__ = sorted(_PUBLIC) + list(_SUBMODULES)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"dim_keras.{name}")
    raise AttributeError(f"module 'dim_keras' has no attribute {name!r}")
