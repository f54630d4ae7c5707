"""Tracing `keras.ops` code on shapes alone, to create its variables.

Calling a `keras.Operation` on `KerasTensor`s infers its outputs' shapes by
tracing `call` without arithmetic (Keras's public route to its
`compute_output_spec`), which creates every variable on the way. A model
whose losses call several networks (`DeepInfoMax`) builds them all this
way: on JAX an eager first run would compile every operation one by one.
"""

import keras


class SymbolicCall(keras.Operation):
    """`function` as an operation, to trace it symbolically.

    Args:
        function: a callable of tensors, made of `keras.ops` and Keras
            layers.
        name: str, the operation's name.
    """

    def __init__(self, function, name):
        super().__init__(name=name)
        self.function = function

    def call(self, *args):
        return self.function(*args)


def trace(function, shape, dtype="float32", name="traced"):
    """Calls `function` on a symbolic tensor: shapes only, no arithmetic.

    Args:
        function: a callable of one tensor, made of `keras.ops` and Keras
            layers.
        shape: the tensor's shape (batch axis included).
        dtype: the tensor's dtype.
        name: str, the name of the traced operation.

    Returns:
        `function`'s outputs, as `keras.KerasTensor`s.
    """
    return SymbolicCall(function, name)(keras.KerasTensor(shape, dtype))
