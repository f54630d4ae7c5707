"""One DIM training step under a chosen distribution (run by the tests).

Usage: python tests/distributed_step.py MODE INIT OUT [OPTIONS]

MODE: `none` (one device), `mirrored` (2 logical CPU devices) or
`multi-worker` (one CPU per process, the cluster given by TF_CONFIG).
INIT: weights file; the `none` run writes it when missing, the others load
it so that every run starts from the same weights. OUT: `.npz` file of every
variable after the step (networks, both optimizers' state) and the logs.
OPTIONS: `--global-negatives`, `--estimator NAME`, `--batch-size N`.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["none", "mirrored", "multi-worker"])
    parser.add_argument("init")
    parser.add_argument("out")
    parser.add_argument("--global-negatives", action="store_true")
    parser.add_argument("--estimator", default="jsd")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    import tensorflow as tf

    if args.mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    import keras
    import numpy as np

    from dim_keras.distribute import make_distribution
    from dim_keras.distribute import input_pipeline
    from dim_keras.distribute import prepare_model
    from dim_keras.training import TrainConfig
    from dim_keras.training import build_model

    distribution = make_distribution(args.mode)
    config = TrainConfig(
        encoder="basic32x32",
        estimator=args.estimator,
        alpha=0.5,
        beta=1.0,
        gamma=0.1,
        batch_size=args.batch_size,
        critic_units=16,
        jit_compile=False,
        global_negatives=args.global_negatives,
    ).validate()
    keras.utils.set_random_seed(0)
    with distribution.scope():
        model = build_model(config, 32)
        prepare_model(model, distribution, args.batch_size)
        if args.mode == "none" and not os.path.exists(args.init):
            model.save_weights(args.init)
        model.load_weights(args.init)
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (args.batch_size, 32, 32, 3)).astype("uint8")
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(
        args.batch_size, drop_remainder=True
    )
    dataset = input_pipeline(dataset, distribution)
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
    np.savez(args.out, **arrays)


if __name__ == "__main__":
    main()
