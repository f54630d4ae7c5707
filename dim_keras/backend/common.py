"""What the three backends share: the `Trainer` base and default
distribution mechanics.

Each backend module provides, besides its `Trainer` mixin, the distribution
functions that `dim_keras.distribute` calls for the active backend:
`local_gpu_count()`, `create_strategy(name)`, `adapt_pipeline(dataset,
name)`, `prepare_model(model, distribution, global_batch_size)` and
`supports_jit(strategy)`. The defaults here suit a backend whose one
program sees the whole global batch (JAX's `DataParallel`, or one device).
"""

import contextlib

import keras
from keras import ops


# The online probe's logged loss (`dim_keras.model.PROBE_LOSS_KEY`).
PROBE_LOSS_KEY = "online_probe_loss"


def split_batch(data):
    """`(images, labels, clean)` of a batch `fit` hands the train step.

    Args:
        data: images, or a tuple or list of the images, then the labels
            (when there are any), then the un-augmented images the online
            probe learns from (when the images are augmented:
            `dim_keras.data.pipeline.tf_data_pipeline`).

    Returns:
        `(images, labels, clean)`, labels None when the batch has none and
        clean None when it has no un-augmented copy.
    """
    if isinstance(data, (tuple, list)):
        data = tuple(data) + (None, None)
        return data[0], data[1], data[2]
    return data, None, None


def adapt_pipeline(dataset, name):
    """The input pipeline unchanged (no backend needs more by default)."""
    del name
    return dataset


def prepare_model(model, distribution, global_batch_size):
    """Nothing to prepare: one program sees the whole global batch."""
    del model, distribution, global_batch_size


def supports_jit(strategy):
    """Whether the train step may be XLA-compiled under `strategy`."""
    del strategy
    return True


def batch_norm_layers(layer):
    """Every `BatchNormalization` inside `layer` (itself included).

    Walks `Model.layers` and, for other layers, the layers held in their
    attributes (public objects only).

    Args:
        layer: a Keras model or layer.

    Returns:
        A list of `keras.layers.BatchNormalization`, each once.
    """
    found, seen, stack = [], set(), [layer]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, keras.layers.BatchNormalization):
            found.append(current)
        if isinstance(current, keras.Model):
            children = list(current.layers)
        else:
            children = []
            for value in vars(current).values():
                values = value if isinstance(value, (list, tuple)) else [value]
                children += [v for v in values if isinstance(v, keras.Layer)]
        stack.extend(reversed(children))
    return found


def set_batch_norm_synchronized(model, synchronized):
    """Sets `synchronized` on every `BatchNormalization` inside `model`.

    Synchronized batch norm all-reduces its batch statistics over the
    replicas (TensorFlow only). It is switched on for training, not baked
    into the saved encoder: a `.keras` file holding `synchronized=True`
    would not load on other backends.

    Args:
        model: a Keras model or layer.
        synchronized: bool.
    """
    for layer in batch_norm_layers(model):
        layer.synchronized = synchronized


@contextlib.contextmanager
def unsynchronized_batch_norm(model):
    """Context with every batch norm of `model` unsynchronized (to save)."""
    layers = batch_norm_layers(model)
    previous = [layer.synchronized for layer in layers]
    for layer in layers:
        layer.synchronized = False
    try:
        yield model
    finally:
        for layer, value in zip(layers, previous):
            layer.synchronized = value


class TrainerBase:
    """The backend-independent part of every `Trainer` mixin.

    A backend provides `input_gradients` (its own autodiff) and, where
    replicas hold separate shares of the batch, `gather_replicas`.
    """

    def input_gradients(self, network, inputs):
        """d sum(network(inputs)) / d inputs, differentiable again.

        Args:
            network: a model mapping `[N, D]` to logits `[N, 1]`.
            inputs: `[N, D]` samples.

        Returns:
            `[N, D]` gradients.
        """
        raise NotImplementedError

    def input_gradient_penalty(self, network, inputs):
        """Mean over samples of the squared norm of d network / d inputs.

        Args:
            network: a model mapping `[N, D]` to logits `[N, 1]`.
            inputs: `[N, D]` samples.

        Returns:
            Scalar penalty, differentiable w.r.t. the network's weights.
        """
        grads = self.input_gradients(network, inputs)
        return ops.mean(ops.sum(ops.square(grads), axis=-1))

    def gather_replicas(self, x):
        """`x` unchanged: one device, or (JAX's `DataParallel`) a step that
        already sees the whole global batch, so negatives are global."""
        return x
