"""Does mixed_bfloat16 train like float32? Loss curves of short runs.

Trains DIM for a few steps on the built-in digits from the same initial
weights and batches in float32 and in mixed_bfloat16, plus a float32 run
from another seed as the noise band, and prints the loss curves side by
side. Run from the repository root:

    python benchmarks/precision_check.py --steps 60
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def curve(precision, seed, steps, batch_size, units, images):
    import keras
    import numpy as np

    from dim_keras.model import DeepInfoMax
    from dim_keras.networks.encoders import build_encoder

    keras.mixed_precision.set_dtype_policy(precision)
    keras.utils.set_random_seed(seed)
    model = DeepInfoMax(
        build_encoder("basic32x32"), estimator="nce",
        local_critic_units=units, seed=seed,
    )
    model.compile(jit_compile=False)
    model.build((None, 32, 32, 3))
    model.build_optimizers()
    keras.mixed_precision.set_dtype_policy("float32")
    order = np.random.default_rng(0).permutation(len(images))
    losses = []
    for step in range(steps):
        start = (step * batch_size) % (len(images) - batch_size)
        batch = images[order[start:start + batch_size]]
        logs = model.train_on_batch(batch, return_dict=True)
        losses.append(float(logs["loss"]))
    return losses


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--critic-units", type=int, default=512)
    args = p.parse_args(argv)
    from dim_keras.data import get_dataset

    images = get_dataset("digits").training_images()
    runs = {
        "float32 seed 0": curve("float32", 0, args.steps, args.batch_size,
                                args.critic_units, images),
        "float32 seed 1": curve("float32", 1, args.steps, args.batch_size,
                                args.critic_units, images),
        "mixed_bfloat16 seed 0": curve(
            "mixed_bfloat16", 0, args.steps, args.batch_size,
            args.critic_units, images,
        ),
    }
    names = list(runs)
    print("step  " + "  ".join(f"{n:>22}" for n in names))
    for i in range(0, args.steps, max(1, args.steps // 12)):
        print(f"{i + 1:>4}  " + "  ".join(f"{runs[n][i]:>22.4f}" for n in names))
    tail = max(1, args.steps // 6)
    last = {n: sum(runs[n][-tail:]) / tail for n in names}
    print(f"mean loss of the last {tail} steps: " + ", ".join(
        f"{n} {v:.4f}" for n, v in last.items()))
    noise = abs(last["float32 seed 1"] - last["float32 seed 0"])
    gap = abs(last["mixed_bfloat16 seed 0"] - last["float32 seed 0"])
    print(f"bfloat16 vs float32: {gap:.4f}; float32 seed-to-seed: {noise:.4f}")


if __name__ == "__main__":
    main()
