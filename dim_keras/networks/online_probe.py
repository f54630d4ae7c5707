"""The online probe's head: a linear classifier that one learning rate suits.

The online probe (`DeepInfoMax(online_probe_classes=...)`) trains one head
on Y (64 features) and one on the last convolutional map (4,096 features
on 32x32 images, 9,408 on alex64x64) with a single Adam optimizer. Raw, a
trained encoder's features are far from standardized, and Adam moves every
weight by about its learning rate, so a step moves a head's logits in
proportion to its width: on alex64x64's 9,408-feature map at 200 classes
the rate chosen on CIFAR-10 diverged (the loss of the two heads was 417.7
after the first epoch, where uniform guesses score 2 ln 200 = 10.6).

`OnlineProbeHead` is a `Dense` layer that standardizes each feature over
the batch it is given (its mean and variance across the batch's rows, as
batch normalization does in training, without parameters or moving
statistics) and scales the result by `min(1, 64 / width)`. Standardized,
the features' scale no longer depends on the encoder's training; scaled,
a step of Adam moves the logits about as much at 9,408 features as at 64
(the learning rate of a last layer going as one over its width, as muP
sets it). Its variables are a `Dense` layer's (`kernel`, `bias`), so
checkpoints of runs from before it load as they were.

It has no state: the same rows give the same logits, in training or not.
Scored on a batch of one row it sees no spread and gives its bias alone;
the monitors score it on the whole held-out part at once.
"""

import keras
from keras import ops

# Width at and below which the standardized features are not scaled.
REFERENCE_WIDTH = 64
EPSILON = 1e-5


def width_scale(width):
    """The factor standardized features of `width` columns are scaled by.

    Args:
        width: int, the number of input features.

    Returns:
        float, `min(1, REFERENCE_WIDTH / width)`.
    """
    return min(1.0, REFERENCE_WIDTH / max(1, int(width)))


@keras.saving.register_keras_serializable(package="dim_keras")
class OnlineProbeHead(keras.layers.Dense):
    """`Dense` on batch-standardized inputs scaled by `width_scale`.

    Args:
        units: int, the number of classes.
        **kwargs: `keras.layers.Dense`'s.
    """

    def build(self, input_shape):
        self.input_scale = width_scale(input_shape[-1])
        super().build(input_shape)

    def call(self, inputs, training=None):
        inputs = ops.cast(inputs, self.compute_dtype)
        mean = ops.mean(inputs, axis=0, keepdims=True)
        variance = ops.var(inputs, axis=0, keepdims=True)
        standardized = (inputs - mean) * ops.rsqrt(variance + EPSILON)
        return super().call(standardized * self.input_scale,
                            training=training)
