"""Input pipeline throughput, beside training throughput, per dataset.

For each dataset whose data is present (always `digits`; a generated image
folder, or the `--folder` ones given; TFDS datasets prepared in, or with
their archive in, `--data-dir`), prints:

- pipeline images/s: batches drawn from the training `tf.data` pipeline
  (decode, cache, shuffle, augmentation, batching, prefetch) and nothing
  else;
- training images/s: DIM training steps (the dataset's default encoder) fed
  by that pipeline.

Training never waits on input when the first number is well above the
second. Usage:

    python benchmarks/pipeline.py [--data-dir DIR] [--folder PATH ...]
        [--synthetic-tiny-imagenet N] [--batches 50] [--train-batches 5]
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_folder(root, count=2048, size=64):
    """Writes `count` random JPEGs of `size` in 4 class folders."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = os.path.join(root, f"class{i % 4}")
        os.makedirs(folder, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"{i}.jpg"))
    return root


def make_tiny_imagenet(root, classes, per_class):
    """A Tiny ImageNet zip in the official layout with random images."""
    import zipfile

    import numpy as np
    from PIL import Image
    import io

    rng = np.random.default_rng(0)
    wnids = [f"n{10000000 + k:08d}" for k in range(classes)]
    path = os.path.join(root, "tiny-imagenet-200.zip")
    base = "tiny-imagenet-200"

    def jpeg():
        buffer = io.BytesIO()
        Image.fromarray(
            rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        ).save(buffer, format="JPEG")
        return buffer.getvalue()

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{base}/wnids.txt", "\n".join(wnids) + "\n")
        archive.writestr(
            f"{base}/words.txt", "".join(f"{w}\tclass {w}\n" for w in wnids)
        )
        annotations = []
        for k, wnid in enumerate(wnids):
            for i in range(per_class):
                archive.writestr(
                    f"{base}/train/{wnid}/images/{wnid}_{i}.JPEG", jpeg()
                )
            name = f"val_{k}.JPEG"
            archive.writestr(f"{base}/val/images/{name}", jpeg())
            annotations.append(f"{name}\t{wnid}\t0\t0\t63\t63\n")
        archive.writestr(
            f"{base}/val/val_annotations.txt", "".join(annotations)
        )
    return root


def pipeline_rate(data, batch_size, batches, warmup=5):
    """Images/s drawing `batches` batches after `warmup` batches."""
    iterator = iter(data.repeat())
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def training_rate(dataset, data, batch_size, batches, critic_units=None,
                  warmup=2):
    """Images/s of DIM training steps fed by `data`, after compiling."""
    import keras

    from dim_keras.config import TrainConfig
    from dim_keras.training import build_model

    config = TrainConfig(
        dataset="digits", encoder=dataset.default_encoder,
        batch_size=batch_size, critic_units=critic_units,
    ).validate()
    model = build_model(config, dataset.image_size)
    times = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())

    model.fit(
        data.repeat(), steps_per_epoch=warmup + batches, epochs=1,
        callbacks=[Clock()], verbose=0,
    )
    return batches * batch_size / (times[-1] - times[warmup - 1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--folder", action="append", default=[])
    parser.add_argument("--synthetic-tiny-imagenet", type=int, default=0,
                        metavar="N", help="also benchmark a generated "
                        "Tiny ImageNet zip of N classes x 100 images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--train-batches", type=int, default=5,
                        help="0 skips training throughput")
    parser.add_argument("--critic-units", type=int, default=None,
                        help="local critic width of the training model "
                        "(default: the reference's)")
    args = parser.parse_args(argv)

    from dim_keras.data import DATASETS
    from dim_keras.data.catalog import status

    tmp = tempfile.mkdtemp(prefix="dim-bench-")
    names = [("digits", None)]
    for name in DATASETS:
        if DATASETS[name].modality != "image":
            continue  # the pipeline benchmarked here is the images' one
        if name != "digits" and status(name, args.data_dir)["present"]:
            names.append((name, args.data_dir))
    folders = args.folder or [make_folder(os.path.join(tmp, "folder"))]
    names += [(f"folder:{path}", None) for path in folders]
    if args.synthetic_tiny_imagenet:
        names.append(("tiny_imagenet", make_tiny_imagenet(
            tmp, args.synthetic_tiny_imagenet, 100)))

    try:
        run(args, names)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def run(args, names):
    """Prints one row per dataset."""
    from dim_keras.data import get_dataset
    from dim_keras.data.pipeline import dataset_pipeline

    print(f"{'dataset':40s} {'images':>8s} {'pipeline img/s':>15s} "
          f"{'training img/s':>15s}")
    for name, data_dir in names:
        start = time.perf_counter()
        dataset = get_dataset(name, data_dir=data_dir)
        load_s = time.perf_counter() - start
        data = dataset_pipeline(dataset, args.batch_size, seed=0)
        piped = pipeline_rate(data, args.batch_size, args.batches)
        trained = (
            training_rate(dataset, data, args.batch_size, args.train_batches,
                          args.critic_units)
            if args.train_batches else float("nan")
        )
        label = name if len(name) <= 40 else "folder:..." + name[-30:]
        print(f"{label:40s} {dataset.num_training_images:8d} "
              f"{piped:15.0f} {trained:15.0f}   (load {load_s:.1f} s, "
              f"{dataset.image_size}x{dataset.image_size}, "
              f"{dataset.default_encoder})", flush=True)


if __name__ == "__main__":
    main()
