"""Runs one backend's side of the cross-backend tests in its own process.

Keras picks its backend once, at import, from `KERAS_BACKEND`, so each
backend runs in a subprocess of the tests (`tests/test_backend.py`):

    KERAS_BACKEND=jax python tests/backend_worker.py run OUT_DIR
    KERAS_BACKEND=tensorflow python tests/backend_worker.py load OUT_DIR

- `run`: `gradients` then `train`.
- `gradients`: builds a tiny DIM model; loads `OUT_DIR/init.weights.h5`, or
  saves it when absent (the first backend run sets the shared weights);
  computes every loss term and both gradients on a fixed batch with fixed
  prior samples, for each estimator, and for multi-view DIM on two views of
  the batch; writes `OUT_DIR/gradients-<backend>.npz`.
- `train`: from the shared weights, trains a few steps with `fit`; writes
  `OUT_DIR/<backend>/encoder.keras`, the encoder's outputs on a fixed batch
  and the optimizers' variables before and after, to
  `OUT_DIR/train-<backend>.npz`.
- `parallel`: `train` under `keras.distribution.DataParallel` over every
  device (JAX; for two CPU devices set
  `XLA_FLAGS=--xla_force_host_platform_device_count=2`), written as
  `<backend>-parallel`.
- `load`: loads every `OUT_DIR/*/encoder.keras` and writes its outputs on
  the same fixed batch to `OUT_DIR/load-<backend>.npz`.

`--without-tensorflow` makes `import tensorflow` fail in this process, as
if TensorFlow were not installed.
"""

import argparse
import glob
import importlib.machinery
import os
import sys

ESTIMATORS = ("jsd", "nce", "dv")
BATCH = 8
IMAGE_SIZE = 32


class _PathFinderWithoutTensorFlow:
    """The path finder, blind to TensorFlow as if it were not installed."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            return None
        return importlib.machinery.PathFinder.find_spec(name, path, target)

    @classmethod
    def invalidate_caches(cls):
        importlib.machinery.PathFinder.invalidate_caches()


def hide_tensorflow():
    """Makes TensorFlow unimportable in this process (before any import)."""
    sys.meta_path[:] = [
        _PathFinderWithoutTensorFlow
        if finder is importlib.machinery.PathFinder
        else finder
        for finder in sys.meta_path
    ]


def fixed_batch(seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.integers(
        0, 256, size=(BATCH, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8
    )


def build(estimator="jsd", **settings):
    """A tiny DIM model with every term on (global, local, prior, penalty).

    `settings` are further `DeepInfoMax` arguments (views, scales, ...).
    """
    import keras

    from dim_keras.model import DeepInfoMax
    from dim_keras.model import reference_optimizer
    from dim_keras.networks.encoders import build_encoder

    keras.utils.set_random_seed(0)
    encoder = build_encoder(
        "basic32x32", image_size=IMAGE_SIZE,
        channel_split=settings.get("channel_split", "none"))
    model = DeepInfoMax(
        encoder,
        estimator=estimator,
        alpha=0.5,
        beta=1.0,
        gamma=0.1,
        local_critic_units=16,
        global_critic_units=16,
        gradient_penalty=1.0,
        seed=0,
        **settings,
    )
    model.compile(
        optimizer=reference_optimizer(1e-3),
        discriminator_optimizer=reference_optimizer(1e-3),
    )
    view = (IMAGE_SIZE, IMAGE_SIZE, 3)
    model.build((None,) + model.view_scheme.batch_shape(view))
    model.build_optimizers()
    return model


def load_shared_weights(model, out_dir, name="init"):
    path = os.path.join(out_dir, f"{name}.weights.h5")
    if os.path.exists(path):
        model.load_weights(path)
    else:
        model.save_weights(path)


def _record_gradients(arrays, name, model, images, prior):
    """Every loss term and both gradients of one batch, into `arrays`."""
    import keras

    terms, grads, d_grads, _ = model.compute_dim_gradients(
        images, prior_samples=prior
    )
    to_numpy = keras.ops.convert_to_numpy
    for key, value in terms.items():
        arrays[f"{name}/term/{key}"] = to_numpy(value)
    for i, grad in enumerate(grads):
        arrays[f"{name}/encoder_grad/{i}"] = to_numpy(grad)
    for i, grad in enumerate(d_grads):
        arrays[f"{name}/discriminator_grad/{i}"] = to_numpy(grad)


def gradients(out_dir, backend):
    import keras
    import numpy as np

    images = keras.ops.convert_to_tensor(fixed_batch())
    prior = np.random.default_rng(1).uniform(size=(BATCH, 64))
    prior = prior.astype("float32")
    model = build("jsd")
    load_shared_weights(model, out_dir)
    arrays = {}
    for estimator in ESTIMATORS:
        # The estimator only enters the loss maths: one model serves all.
        model.estimator = estimator
        _record_gradients(arrays, estimator, model, images, prior)
    # Multi-view DIM (NCE with AMDIM's temperature and stabilizers) on two
    # views of the batch: the settings and the view scheme only enter the
    # loss maths.
    from dim_keras.view_schemes import view_scheme

    model.estimator, model.views = "nce", 2
    model.view_scheme = view_scheme(model.encoder, 2, False, "none")
    model.score_temperature = 4.0
    model.score_clip, model.score_penalty = 20.0, 0.05
    batch = fixed_batch()
    two_views = np.stack([batch, batch[:, :, ::-1]], axis=1)
    prior = np.random.default_rng(3).uniform(size=(2 * BATCH, 64))
    _record_gradients(arrays, "views", model,
                      keras.ops.convert_to_tensor(two_views),
                      prior.astype("float32"))
    # Across scales: Y against the local and the conv maps (its own
    # critic). The local-local prediction draws a random location, whose
    # draws differ between backends, so it is left out here.
    model = build("nce", views=2, scales="y-local,y-conv", score_clip=20.0)
    load_shared_weights(model, out_dir, name="init-scales")
    _record_gradients(arrays, "scales", model,
                      keras.ops.convert_to_tensor(two_views),
                      prior.astype("float32"))
    # CMC's form: two encoders, on the luminance and the colour.
    model = build("nce", channel_split="luma-chroma")
    load_shared_weights(model, out_dir, name="init-channels")
    prior = np.random.default_rng(4).uniform(size=(BATCH, 128))
    _record_gradients(arrays, "channels", model, images,
                      prior.astype("float32"))
    np.savez(os.path.join(out_dir, f"gradients-{backend}.npz"), **arrays)


def _values(variables):
    import keras

    return [keras.ops.convert_to_numpy(v.value).copy() for v in variables]


def train(out_dir, backend, name=None):
    import numpy as np

    from dim_keras.data.pipeline import training_pipeline

    name = name or backend
    model = build("jsd")
    load_shared_weights(model, out_dir)
    before = {
        "encoder": _values(model.encoder_variables),
        "discriminator": _values(model.discriminator_variables),
        "optimizer": _values(model.optimizer.variables),
        "discriminator_optimizer": _values(
            model.discriminator_optimizer.variables
        ),
    }
    images = np.random.default_rng(2).integers(
        0, 256, size=(3 * BATCH, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8
    )
    pipeline = training_pipeline(images, BATCH, seed=0)
    history = model.fit(pipeline, epochs=2, verbose=0, shuffle=False)
    after = {
        "encoder": _values(model.encoder_variables),
        "discriminator": _values(model.discriminator_variables),
        "optimizer": _values(model.optimizer.variables),
        "discriminator_optimizer": _values(
            model.discriminator_optimizer.variables
        ),
    }
    run_dir = os.path.join(out_dir, name)
    os.makedirs(run_dir, exist_ok=True)
    model.encoder.save(os.path.join(run_dir, "encoder.keras"))
    outputs = model.encoder.predict(fixed_batch(3), verbose=0)
    arrays = {f"output/{k}": np.asarray(v) for k, v in outputs.items()}
    for key in before:
        for i, (b, a) in enumerate(zip(before[key], after[key])):
            arrays[f"before/{key}/{i}"] = b
            arrays[f"after/{key}/{i}"] = a
    arrays["iterations/optimizer"] = np.asarray(model.optimizer.iterations)
    arrays["iterations/discriminator_optimizer"] = np.asarray(
        model.discriminator_optimizer.iterations
    )
    arrays["steps"] = np.asarray(2 * len(pipeline))
    for key, values in history.history.items():
        arrays[f"history/{key}"] = np.asarray(values)
    arrays["mesh_devices"] = np.asarray(
        _mesh_size(model.encoder_variables[0])
    )
    np.savez(os.path.join(out_dir, f"train-{name}.npz"), **arrays)


def _mesh_size(variable):
    """Devices a variable is laid out on (1 without a distribution)."""
    import keras

    if keras.backend.backend() != "jax":
        return 1
    return len(variable.value.sharding.device_set)


def load(out_dir, backend):
    import keras
    import numpy as np

    arrays = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*", "encoder.keras"))):
        trained_on = os.path.basename(os.path.dirname(path))
        encoder = keras.saving.load_model(path)
        outputs = encoder.predict(fixed_batch(3), verbose=0)
        for key, value in outputs.items():
            arrays[f"{trained_on}/{key}"] = np.asarray(value)
    np.savez(os.path.join(out_dir, f"load-{backend}.npz"), **arrays)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "mode", choices=("run", "gradients", "train", "parallel", "load")
    )
    parser.add_argument("out_dir")
    parser.add_argument("--without-tensorflow", action="store_true")
    args = parser.parse_args(argv)
    if args.without_tensorflow:
        hide_tensorflow()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)
    import keras

    backend = keras.backend.backend()
    if args.mode in ("run", "gradients"):
        gradients(args.out_dir, backend)
    if args.mode in ("run", "train"):
        train(args.out_dir, backend)
    if args.mode == "parallel":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        train(args.out_dir, backend, name=f"{backend}-parallel")
    if args.mode == "load":
        load(args.out_dir, backend)
    if args.without_tensorflow and "tensorflow" in sys.modules:
        raise SystemExit("tensorflow was imported")


if __name__ == "__main__":
    main()
