"""One DIM training step under chosen distributions (run by the tests).

Usage: python tests/distributed_step.py INIT OUT_DIR RUN [RUN ...]

Each RUN is `MODE` or `MODE:global` (with global negatives), MODE one of
`none` (one device), `mirrored` (2 logical CPU devices) or `multi-worker`
(one CPU per process; on TensorFlow the cluster given by TF_CONFIG, on JAX
by the KERAS_DISTRIBUTION_* variables). Each run starts from
the weights in INIT (the first run writes it when missing), trains one step
on the same global batch of 8 images, and writes `OUT_DIR/RUN.npz`: every
variable after the step (networks, both optimizers' state) and the logs.
At most one `mirrored` run per process: two MirroredStrategies in one
process clash in their collective ops.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BATCH_SIZE = 8


def one_step(mode, global_negatives, init, out):
    import keras
    import numpy as np
    import tensorflow as tf

    from dim_keras.distribute import make_distribution
    from dim_keras.config import TrainConfig
    from dim_keras.atomic import save as atomic_save
    from dim_keras.training import build_model

    distribution = make_distribution(mode)
    print(distribution.describe(), flush=True)
    config = TrainConfig(
        encoder="basic32x32",
        alpha=0.5,
        beta=1.0,
        gamma=0.1,
        batch_size=BATCH_SIZE,
        critic_units=16,
        # JAX compiles every step anyway (op by op it is much slower).
        jit_compile=keras.backend.backend() == "jax",
        global_negatives=global_negatives,
    ).validate()
    keras.utils.set_random_seed(0)
    with distribution.scope():
        model = build_model(config, 32)
        distribution.prepare_model(model, BATCH_SIZE)
        if not os.path.exists(init):
            # Written whole under a temporary name: another process waits
            # for it.
            atomic_save(init, model.save_weights)
        model.load_weights(init)
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (BATCH_SIZE, 32, 32, 3)).astype("uint8")
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(
        BATCH_SIZE, drop_remainder=True
    )
    dataset = distribution.adapt_pipeline(dataset)
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    variables = (
        list(model.weights)
        + list(model.optimizer.variables)
        + list(model.discriminator_optimizer.variables)
    )
    arrays = {f"v{i:04d}": np.array(v.numpy()) for i, v in enumerate(variables)}
    arrays["names"] = np.array([v.path.split("/", 1)[-1] for v in variables])
    for key, values in history.history.items():
        arrays[f"log_{key}"] = np.asarray(values, "float64").reshape(-1)
    np.savez(out, **arrays)


def main():
    init, out_dir, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
    import tensorflow as tf

    if any(run.startswith("mirrored") for run in runs):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    for run in runs:
        mode, _, negatives = run.partition(":")
        one_step(
            mode, negatives == "global", init,
            os.path.join(out_dir, f"{run.replace(':', '_')}.npz"),
        )


if __name__ == "__main__":
    main()
