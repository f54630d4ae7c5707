"""Fine-tuning on few labels: the encoder and a linear head, end to end.

The other half of the semi-supervised comparison (the Keras SimCLR
example's): for each rung of the few-label ladder and each draw of the
labelled images (`few_labels.draw_labelled`, the same images as the
few-label probes), a copy of the encoder with a linear softmax head on Y
is trained end to end on those images only, and scored on the whole test
split; beside it, the same network trained from random initialization on
the same images. What pretraining buys shows as the difference.
"""

import time

import numpy as np

from dim_keras.evaluation.few_labels import draw_labelled
from dim_keras.evaluation.few_labels import ladder_for

# Adam steps of each fine-tuning, its learning rate and largest batch.
FINETUNE_STEPS = 200
FINETUNE_LEARNING_RATE = 1e-3
FINETUNE_BATCH_SIZE = 64


def finetune_model(encoder, num_classes, initial=True, seed=0):
    """A trainable copy of `encoder` with a linear softmax head on Y.

    Args:
        encoder: a Functional encoder with output `"y"`.
        num_classes: int.
        initial: bool, start from `encoder`'s weights (True) or from a
            fresh random initialization of its architecture (False).
        seed: int, seeds the head's (and a random encoder's) initializers.

    Returns:
        A compiled `keras.Model` from images to class probabilities.
    """
    import keras

    keras.utils.set_random_seed(seed)
    copy = keras.models.clone_model(encoder)
    if initial:
        copy.set_weights(encoder.get_weights())
    copy.trainable = True
    images = keras.Input(shape=encoder.input_shape[1:],
                         dtype=encoder.inputs[0].dtype)
    y = copy(images)["y"]
    probabilities = keras.layers.Dense(num_classes, activation="softmax",
                                       name="head")(y)
    model = keras.Model(images, probabilities, name="finetune")
    model.compile(
        optimizer=keras.optimizers.Adam(FINETUNE_LEARNING_RATE),
        loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _finetune_once(encoder, initial, images, labels, test_images,
                   test_labels, num_classes, steps, seed, batch_size):
    model = finetune_model(encoder, num_classes, initial=initial, seed=seed)
    batch = min(batch_size, len(labels))
    epochs = max(1, int(np.ceil(steps * batch / len(labels))))
    model.fit(images, labels, batch_size=batch, epochs=epochs, verbose=0,
              shuffle=True)
    predicted = np.argmax(model.predict(test_images, batch_size=256,
                                        verbose=0), axis=1)
    return float(np.mean(predicted == test_labels)), epochs


def finetune_probes(encoder, train_images, train_labels, test_images,
                    test_labels, num_classes, ladder, draws, seed=0,
                    steps=FINETUNE_STEPS, batch_size=FINETUNE_BATCH_SIZE):
    """Fine-tuned DIM encoder against the same network from scratch.

    Args:
        encoder: the trained Functional encoder (left unchanged).
        train_images: array `[N, H, W, 3]`, the labelled training split.
        train_labels: int array `[N]`.
        test_images: array `[M, H, W, 3]`.
        test_labels: int array `[M]`.
        num_classes: int.
        ladder: labels per class (`few_labels.ladder_for` keeps the rungs
            the split allows).
        draws: int, draws of the labelled images per rung (the few-label
            probes' draws, same seeds).
        seed: int.
        steps: int, Adam steps of each fine-tuning (about: whole epochs
            of the labelled images).
        batch_size: int, largest batch (the labelled images when fewer).

    Returns:
        List of records `probe="finetune"`, `representation` `"dim"` (from
        the trained weights) or `"random"` (from random initialization),
        `layer="y"` (the head's input), `labels_per_class`, `draws`,
        `accuracy` (the mean over draws), `accuracy_std`,
        `accuracy_per_draw`, sizes, the settings and `seconds`.
    """
    train_labels = np.asarray(train_labels).astype("int64")
    test_labels = np.asarray(test_labels).astype("int64")
    records = []
    for n in ladder_for(train_labels, ladder):
        subsets = [draw_labelled(train_labels, n, seed + 1000 * n + d)
                   for d in range(draws)]
        for representation, initial in (("dim", True), ("random", False)):
            started = time.perf_counter()
            scores = []
            for d, rows in enumerate(subsets):
                accuracy, epochs = _finetune_once(
                    encoder, initial, np.asarray(train_images)[rows],
                    train_labels[rows], test_images, test_labels,
                    num_classes, steps, seed + d, batch_size)
                scores.append(accuracy)
            records.append({
                "probe": "finetune",
                "representation": representation,
                "layer": "y",
                "labels_per_class": int(n),
                "draws": int(draws),
                "accuracy": float(np.mean(scores)),
                "accuracy_std": float(np.std(scores)),
                "accuracy_per_draw": [float(s) for s in scores],
                "train_size": int(len(subsets[0])),
                "test_size": int(len(test_labels)),
                "model": "encoder + linear softmax head on y, end to end",
                "initialization": ("trained encoder" if initial
                                   else "random"),
                "steps": int(steps),
                "epochs": int(epochs),
                "learning_rate": FINETUNE_LEARNING_RATE,
                "batch_size": int(min(batch_size, len(subsets[0]))),
                "seed": int(seed),
                "seconds": round(time.perf_counter() - started, 2),
            })
    return records
