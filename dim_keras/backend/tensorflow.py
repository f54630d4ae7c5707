"""TensorFlow: the training step (`tf.GradientTape`, two optimizers) and
`tf.distribute` mechanics."""

import json
import os

import tensorflow as tf
from keras import ops

from dim_keras.backend.common import PROBE_LOSS_KEY
from dim_keras.backend.common import TrainerBase
from dim_keras.backend.common import split_batch
from dim_keras.backend.common import set_batch_norm_synchronized


def local_gpu_count():
    """Number of GPUs TensorFlow sees."""
    return len(tf.config.list_physical_devices("GPU"))


def _tf_config_task():
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    cluster = config.get("cluster", {})
    task = config.get("task", {})
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    index = task.get("index", 0)
    if task.get("type") == "worker" and "chief" in cluster:
        index += 1
    return max(workers, 1), index


def create_strategy(name):
    """Creates the `tf.distribute` strategy `name` asks for.

    Args:
        name: `"mirrored"` or `"multi-worker"`.

    Returns:
        `(strategy, num_replicas, worker_index, num_workers)`.

    Raises:
        ValueError: for multi-worker without `TF_CONFIG`.
    """
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        return strategy, strategy.num_replicas_in_sync, 0, 1
    if not os.environ.get("TF_CONFIG"):
        raise ValueError(
            "--distribute multi-worker on TensorFlow needs the TF_CONFIG "
            "environment variable (cluster and task). Received: "
            "TF_CONFIG unset"
        )
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    num_workers, index = _tf_config_task()
    return strategy, strategy.num_replicas_in_sync, index, num_workers


def adapt_pipeline(dataset, name):
    """Casts images to float32 under MultiWorkerMirroredStrategy.

    It runs collective ops on the input, which do not take uint8 (the
    encoder takes both). Labels, where batches carry them, pass unchanged.
    """
    if name == "multi-worker":
        return dataset.map(lambda x, *labels: (tf.cast(x, "float32"),)
                           + labels if labels else tf.cast(x, "float32"))
    return dataset


def prepare_model(model, distribution, global_batch_size):
    """Synchronized batch norm over several replicas, and the replica batch.

    Args:
        model: a `DeepInfoMax` built under the strategy's scope.
        distribution: the `dim_keras.distribute.Distribution`.
        global_batch_size: int, the batch size over all replicas.
    """
    if distribution.num_replicas > 1:
        set_batch_norm_synchronized(model, True)
    if distribution.strategy is not None:
        model.replica_batch_size = (
            global_batch_size // distribution.num_replicas
        )


def supports_jit(strategy):
    """No XLA under `tf.distribute` strategies: XLA then fails on variables
    mirrored on other devices (TensorFlow's XLA known issues)."""
    return strategy is None


class Trainer(TrainerBase):
    """Mixin giving `DeepInfoMax` its TensorFlow `train_step`."""

    # Each replica's batch size under a strategy, set by `prepare_model`
    # (MultiWorkerMirroredStrategy hands replicas batches of unknown size).
    replica_batch_size = None

    def input_gradients(self, network, inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            total = ops.sum(network(inputs, training=True))
        return tape.gradient(total, inputs)

    # --- Distribution (tf.distribute) -------------------------------------
    # Under a strategy `train_step` runs once per replica and the optimizer
    # sums the replicas' gradients, so each replica's loss is divided by
    # the number of replicas: the update is that of the replicas' mean loss.

    def gather_replicas(self, x):
        """`x` of every replica, concatenated along the batch axis.

        Gradients flow back to each replica's own part. Outside a
        multi-replica strategy `x` is returned unchanged.

        Args:
            x: per-replica tensor `[n, ...]`.

        Returns:
            `[num_replicas * n, ...]`, replica 0's rows first.
        """
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return x
        gathered = context.all_gather(x, axis=0)
        if x.shape[0] is not None:  # all_gather forgets the static shape.
            shape = [x.shape[0] * context.num_replicas_in_sync] + x.shape[1:]
            gathered = tf.ensure_shape(gathered, shape)
        return gathered

    def _static_replica_batch(self, images):
        # MultiWorkerMirroredStrategy hands each replica batches of unknown
        # size; the estimators need it static.
        size = self.replica_batch_size
        if size and images.shape[0] is None:
            images = tf.ensure_shape(images, [size] + images.shape[1:])
        return images

    def compute_dim_gradients(self, images, prior_samples=None, labels=None,
                              probe_images=None):
        """Loss terms and the gradients of one batch (no update).

        Under a multi-replica strategy each replica's losses are divided by
        the number of replicas (the optimizers sum the replicas'
        gradients), and with mixed float16 the losses are scaled by the
        optimizers' loss scale; otherwise these are the plain gradients.

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
            the probe or labels), ready for the optimizers' `apply`.
        """
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        with tf.GradientTape() as tape, tf.GradientTape() as d_tape, \
                tf.GradientTape() as p_tape:
            terms = self.compute_dim_losses(
                images, training=True, prior_samples=prior_samples,
                labels=labels, probe_images=probe_images,
            )
            # scale_loss: loss scaling of mixed_float16 (identity otherwise).
            loss = self.optimizer.scale_loss(terms["loss"] / replicas)
            d_loss = self.discriminator_optimizer.scale_loss(
                terms["discriminator_total"] / replicas
            )
            p_loss = terms.get(PROBE_LOSS_KEY, 0.0) / replicas
        grads = tape.gradient(loss, self.encoder_variables)
        d_grads = []
        if self.prior_discriminator is not None:
            d_grads = d_tape.gradient(d_loss, self.discriminator_variables)
        p_grads = []
        if self.online_probe_classes and labels is not None:
            p_grads = p_tape.gradient(p_loss, self.probe_variables)
        return terms, grads, d_grads, p_grads

    def train_step(self, data):
        images, labels, probe_images = split_batch(data)
        images = self._static_replica_batch(images)
        if probe_images is not None:
            probe_images = self._static_replica_batch(probe_images)
        terms, grads, d_grads, p_grads = self.compute_dim_gradients(
            images, labels=labels, probe_images=probe_images)
        self.optimizer.apply(grads, self.encoder_variables)
        if self.prior_discriminator is not None:
            self.discriminator_optimizer.apply(
                d_grads, self.discriminator_variables
            )
        if p_grads:
            self.probe_optimizer.apply(p_grads, self.probe_variables)
        logs = self.update_trackers(terms)
        if tf.distribute.has_strategy():
            # keras#20585: Keras reduces per-replica logs along axis 0, which
            # fails on scalars under MultiWorkerMirroredStrategy.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs
