"""PyTorch training step: autograd and two optimizers.

Both gradients are taken with `torch.autograd.grad` from one forward pass:
the encoder objective reaches the prior discriminator's weights too (through
the prior-matching term), so accumulating `.grad` with two `backward()`
calls would mix the two objectives; asking autograd for each objective's
gradient w.r.t. its own variables cannot.
"""

import torch
from keras import ops

from dim_keras.backend.common import PROBE_LOSS_KEY
from dim_keras.backend.common import TrainerBase
from dim_keras.backend.common import split_batch
from dim_keras.backend.common import adapt_pipeline  # noqa: F401
from dim_keras.backend.common import prepare_model  # noqa: F401
from dim_keras.backend.common import supports_jit  # noqa: F401


def local_gpu_count():
    """Number of GPUs PyTorch sees."""
    return torch.cuda.device_count()


def create_strategy(name):
    """No strategy beyond one device is offered on PyTorch."""
    raise ValueError(
        f"The torch backend supports --distribute none (or auto). "
        f"Received: distribute={name!r}"
    )


def _gradients(loss, variables, retain_graph):
    """d loss / d variables, zeros for variables the loss does not reach."""
    values = [v.value for v in variables]
    grads = torch.autograd.grad(
        loss, values, retain_graph=retain_graph, allow_unused=True
    )
    return [
        torch.zeros_like(value) if grad is None else grad
        for value, grad in zip(values, grads)
    ]


class Trainer(TrainerBase):
    """Mixin giving `DeepInfoMax` its PyTorch `train_step`."""

    def compile(self, *args, jit_compile="auto", **kwargs):
        """Compiles with `jit_compile=False`.

        The step differentiates twice (the gradient penalty), which
        `torch.compile` does not support; the step runs eagerly.
        """
        del jit_compile
        super().compile(*args, jit_compile=False, **kwargs)

    def input_gradients(self, network, inputs):
        with torch.enable_grad():
            inputs = ops.convert_to_tensor(inputs).detach()
            inputs.requires_grad_(True)
            total = ops.sum(network(inputs, training=True))
            (grads,) = torch.autograd.grad(total, inputs, create_graph=True)
        return grads

    def compute_dim_gradients(self, images, prior_samples=None, labels=None,
                              probe_images=None):
        """Loss terms and the gradients of one batch (no update).

        Args:
            images: `[N, H, W, 3]` raw images.
            prior_samples: `[N, D]` prior samples, or None to draw them.
            labels: `[N]` class ids (-1: unlabelled) for the online probe,
                or None.
            probe_images: the same images un-augmented, which the online
                probe learns from, or None (`compute_encoder_losses`).

        Returns:
            `(terms, encoder_grads, discriminator_grads, probe_grads)`,
            the gradients in the order of `encoder_variables`,
            `discriminator_variables` and `probe_variables` (empty without
            the probe or labels).
        """
        probing = bool(self.online_probe_classes) and labels is not None
        with torch.enable_grad():
            terms = self.compute_dim_losses(
                images, training=True, prior_samples=prior_samples,
                labels=labels, probe_images=probe_images,
            )
            has_discriminator = self.prior_discriminator is not None
            grads = _gradients(
                terms["loss"],
                self.encoder_variables,
                retain_graph=has_discriminator or probing,
            )
            d_grads = []
            if has_discriminator:
                d_grads = _gradients(
                    terms["discriminator_total"],
                    self.discriminator_variables,
                    retain_graph=probing,
                )
            p_grads = []
            if probing:
                p_grads = _gradients(terms[PROBE_LOSS_KEY],
                                     self.probe_variables, retain_graph=False)
        terms = {k: v.detach() for k, v in terms.items()}
        return terms, grads, d_grads, p_grads

    def train_step(self, data):
        images, labels, probe_images = split_batch(data)
        terms, grads, d_grads, p_grads = self.compute_dim_gradients(
            images, labels=labels, probe_images=probe_images)
        with torch.no_grad():
            self.optimizer.apply(grads, self.encoder_variables)
            if self.prior_discriminator is not None:
                self.discriminator_optimizer.apply(
                    d_grads, self.discriminator_variables
                )
            if p_grads:
                self.probe_optimizer.apply(p_grads, self.probe_variables)
            return self.update_trackers(terms)
