"""Backend-specific training mechanics: gradients and optimizer steps.

Keras 3 has no backend-agnostic gradient API, so `train_step` is written once
per backend; each backend's module also holds its distribution mechanics
(`active` is the module of the running backend, see `common`). Each module
defines a `Trainer` mixin with `train_step`, `compute_dim_gradients` and
`input_gradients`, on `common.TrainerBase` (the gradient penalty, and
`gather_replicas` where one device sees the whole batch); everything else
is shared `keras.ops` code. Only the module of the active backend is
imported (TensorFlow is needed only for the TensorFlow backend).
"""

import keras

from dim_keras.choices import BACKENDS

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    from dim_keras.backend import tensorflow as active
elif _BACKEND == "jax":
    from dim_keras.backend import jax as active
elif _BACKEND == "torch":
    from dim_keras.backend import torch as active
else:
    raise ImportError(
        f"dim_keras supports the Keras backends {', '.join(BACKENDS)}. "
        f"Received: KERAS_BACKEND={_BACKEND!r}"
    )

Trainer = active.Trainer
