"""Use an exported DIM encoder in a plain TensorFlow `tf.data` pipeline.

Needs only TensorFlow, Keras and scikit-learn (for its bundled digits), not
dim_keras. First train and export an encoder:

    dim-keras train --out runs/digits
    dim-keras export runs/digits            # -> runs/digits/export/saved_model

then:

    python examples/tf_data_pipeline.py runs/digits/export/saved_model

The pipeline decodes raw digits into uint8 RGB images of the encoder's size,
maps them through the SavedModel's `serve` endpoint to the representation
`y` (once: the features are cached), and trains a linear softmax classifier
on `y`. It prints the test accuracy.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


def image_size_of(encoder):
    """Height and width the `serve` endpoint takes, from its signature."""
    spec = encoder.signatures["serve"].structured_input_signature[1]
    (images,) = spec.values()
    return images.shape[1], images.shape[2]


def raw_digits(seed=0):
    """The 8x8 digits as uint8 [N, 8, 8, 1] (0-255) and labels, split."""
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return train_test_split(
        images[..., None], digits.target, test_size=0.2,
        random_state=seed, stratify=digits.target,
    )


def pipeline(encoder, images, labels, size, batch_size=64, shuffle=False):
    """tf.data: raw uint8 images -> encoder features `y`, with labels."""

    def to_rgb(x, y):  # what a user's decoding step would do
        x = tf.image.resize(tf.cast(x, tf.float32), size)
        x = tf.image.grayscale_to_rgb(x)
        return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8), y

    def encode(x, y):  # the exported encoder, inside the graph
        return encoder.serve(x)["y"], y

    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    ds = ds.batch(batch_size).map(to_rgb, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(encode).cache()  # encode once, reuse every epoch
    if shuffle:  # reshuffle the cached features every epoch
        ds = ds.unbatch().apply(
            tf.data.experimental.assert_cardinality(len(images)))
        ds = ds.shuffle(len(images), seed=0).batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("saved_model", help="dim-keras export output")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)

    encoder = tf.saved_model.load(args.saved_model)
    size = image_size_of(encoder)
    x_train, x_test, y_train, y_test = raw_digits()
    train = pipeline(encoder, x_train, y_train, size, shuffle=True)
    test = pipeline(encoder, x_test, y_test, size)

    y_dim = train.element_spec[0].shape[-1]
    classifier = keras.Sequential([
        keras.Input((y_dim,)),
        keras.layers.Normalization(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    classifier.layers[0].adapt(train.map(lambda y, _: y))
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    classifier.fit(train, epochs=args.epochs, shuffle=False, verbose=0)
    _, accuracy = classifier.evaluate(test, verbose=0)
    print(f"Linear classifier on y ({y_dim} dims, {args.epochs} epochs): "
          f"test accuracy {accuracy:.3f} on {len(x_test)} digits.")
    return accuracy


if __name__ == "__main__":
    main()
