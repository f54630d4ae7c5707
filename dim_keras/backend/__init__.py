"""Backend-specific training mechanics: gradients and optimizer steps.

Keras 3 has no backend-agnostic gradient API, so `train_step` is written once
per backend. Each module defines a `Trainer` mixin with `train_step` and
`input_gradient_penalty`; everything else is shared `keras.ops` code.
"""

import keras

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    from dim_keras.backend.tensorflow import Trainer
else:
    raise ImportError(
        "dim_keras supports the TensorFlow backend in this version. "
        f"Received: KERAS_BACKEND={_BACKEND!r}"
    )
