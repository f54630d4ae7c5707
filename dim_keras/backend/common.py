"""What the three backends' `Trainer` mixins share."""

from keras import ops


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
