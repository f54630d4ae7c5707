"""Where the time of one DIM training step goes (TensorFlow backend).

Traces a few compiled steps with TensorFlow's profiler and prints the time
spent per op type and per op name, summed over the traced steps, next to
the step's matmul share. Run from the repository root:

    python benchmarks/profile_step.py --critic-units 2048 --batch-size 64
    python benchmarks/profile_step.py --critic-units 512 --batch-size 128 --jit
    python benchmarks/profile_step.py --critic-units 512 --batch-size 128 \
        --inter-op-threads 1

With one inter-op thread TensorFlow runs one op at a time, so op times add
up to the step's wall time and compare directly; by default independent ops
overlap and share the cores.

With `--jit` the step is XLA-compiled and its ops are fused into a few
clusters, so the breakdown shows clusters rather than layers.
"""

import argparse
import collections
import glob
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", default="basic32x32")
    p.add_argument("--estimator", default="jsd")
    p.add_argument("--critic-units", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", default="float32")
    p.add_argument("--jit", action="store_true")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--inter-op-threads", type=int, default=None,
                   help="TensorFlow inter-op threads (default: its own)")
    return p.parse_args(argv)


def op_times(logdir):
    """Sums op durations (ms) on TF's compute threads by type and name."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    by_type = collections.Counter()
    by_name = collections.Counter()
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"),
                          recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            meta = plane.event_metadata
            for line in plane.lines:
                if not line.name.startswith("tf_Compute"):
                    continue
                for event in line.events:
                    name = meta[event.metadata_id].name
                    op_name, _, op_type = name.partition(":")
                    if not op_type or " " in name or "::" in name:
                        continue  # executor bookkeeping, not an op
                    ms = event.duration_ps / 1e9
                    by_type[op_type or op_name] += ms
                    by_name[op_name] += ms
    return by_type, by_name


def main(argv=None):
    args = parse_args(argv)
    import keras
    import numpy as np
    import tensorflow as tf

    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(
            args.inter_op_threads
        )

    from dim_keras.model import DeepInfoMax
    from dim_keras.networks.encoders import ENCODER_IMAGE_SIZE
    from dim_keras.networks.encoders import build_encoder

    keras.mixed_precision.set_dtype_policy(args.precision)
    size = ENCODER_IMAGE_SIZE[args.encoder]
    model = DeepInfoMax(
        build_encoder(args.encoder),
        estimator=args.estimator,
        local_critic_units=args.critic_units,
    )
    model.compile(jit_compile=args.jit)
    model.build((None, size, size, 3))
    model.build_optimizers()
    images = np.random.default_rng(0).integers(
        0, 256, (args.batch_size, size, size, 3), dtype=np.uint8
    )
    batch = tf.constant(images)
    step = tf.function(model.train_step, jit_compile=args.jit)
    for _ in range(2):
        float(step(batch)["loss"])
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(args.steps):
            float(step(batch)["loss"])
        wall = (time.perf_counter() - start) * 1000 / args.steps
        tf.profiler.experimental.stop()
        by_type, by_name = op_times(logdir)
    total = sum(by_type.values()) / args.steps
    matmul = sum(
        v for k, v in by_type.items()
        if "MatMul" in k or "Conv2D" in k or "Einsum" in k
    ) / args.steps
    print(f"step wall {wall:.1f} ms; ops {total:.1f} ms/step; matmul and "
          f"conv ops {matmul:.1f} ms ({100 * matmul / max(total, 1e-9):.0f}%)")
    print("\nby op type (ms/step):")
    for k, v in by_type.most_common(args.top):
        print(f"  {v / args.steps:9.2f}  {k}")
    print("\nby op name (ms/step):")
    for k, v in by_name.most_common(args.top):
        print(f"  {v / args.steps:9.2f}  {k}")


if __name__ == "__main__":
    main()
