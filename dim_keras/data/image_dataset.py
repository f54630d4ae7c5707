"""The dataset objects every loader returns.

Every dataset is an `ImageDataset`: images are uint8 `[H, W, 3]` with pixel
values 0-255 (the encoder scales them itself), labels are int64 class ids
(-1 where unlabelled). Small datasets (`digits`, `folder:PATH`) are held in
memory as numpy arrays and need no TensorFlow; TFDS datasets
(`TFDSImageDataset`) are streamed with `tf.data` (`training_dataset()`,
`labelled_dataset(split)`), and `arrays(split)` materializes a split when
numpy arrays are wanted.
"""

import numpy as np

from dim_keras.data import augment


def _hash_threshold(fraction):
    if not 0 < fraction < 1:
        raise ValueError(
            f"held_out_fraction must be in (0, 1). Received: "
            f"held_out_fraction={fraction!r}")
    return max(1, int(round(fraction * HASH_BUCKETS)))


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message says how to fix it."""


class ImageDataset:
    """A labelled image dataset held in memory.

    Args:
        name: str, the `--dataset` name.
        image_size: int, height and width of the images.
        num_classes: int or None when unlabelled.
        splits: dict of split name to `(images, labels)` numpy arrays;
            `images` uint8 `[N, H, W, 3]`, `labels` int64 `[N]`.
        default_encoder: str, encoder architecture suited to the size.
        default_epochs: int, epochs `dim-keras train` runs by default.
        augmentation: `augment.Augmentation` applied to training images
            when the run augments (`TrainConfig.augment`).
        class_names: list of str or None.
        default_settings: dict, the dataset's training recipe
            (`dim_keras.recipes`): settings a run takes when it does not
            set them; None or missing ones take the reference's.
    """

    modality = "image"
    in_memory = True

    def __init__(
        self,
        name,
        image_size,
        num_classes,
        splits,
        default_encoder="basic32x32",
        default_epochs=100,
        augmentation=augment.NONE,
        class_names=None,
        default_settings=None,
    ):
        self.name = name
        self.image_size = image_size
        self.num_classes = num_classes
        self.splits = splits
        self.default_encoder = default_encoder
        self.default_epochs = default_epochs
        self.augmentation = augmentation
        self.class_names = class_names
        self.default_settings = dict(default_settings or {})

    @property
    def split_names(self):
        return list(self.splits)

    def _check_split(self, split):
        if split not in self.split_names:
            raise ValueError(
                f"Dataset {self.name!r} has splits {sorted(self.split_names)}. "
                f"Received: split={split!r}"
            )

    def num_examples(self, split):
        """Number of examples of a split."""
        self._check_split(split)
        return len(self.splits[split][1])

    @property
    def num_training_images(self):
        return len(self.training_images())

    def arrays(self, split):
        """Returns `(images, labels)` of a split as numpy arrays.

        Args:
            split: str, e.g. `"train"` or `"test"`.

        Returns:
            `(uint8 [N, H, W, 3], int64 [N])`.
        """
        self._check_split(split)
        return self.splits[split]

    def training_images(self):
        """Images used for unsupervised training (uint8 `[N, H, W, 3]`)."""
        return self.arrays("train")[0]

    def training_dataset(self, seed=None):
        """Training images as a `tf.data.Dataset` of uint8 `[H, W, 3]`."""
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(self.training_images())

    def labelled_dataset(self, split):
        """`(image, label)` pairs of a split as a `tf.data.Dataset`."""
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(self.arrays(split))


# Streamed training examples are held out of the online probe's labels by
# a hash of their TFDS id into this many buckets.
HASH_BUCKETS = 10000


class TFDSImageDataset(ImageDataset):
    """A TFDS dataset streamed with `tf.data` (not held in memory).

    Args:
        name: str, the `--dataset` name.
        builder: a prepared TFDS builder.
        image_size: int, size of the images the encoder sees.
        source_size: int, size of the stored images.
        train_splits: TFDS splits used for unsupervised training.
        eval_splits: dict of our split name to TFDS split name.
        default_encoder, default_epochs, augmentation, default_settings:
            as `ImageDataset`.
    """

    in_memory = False

    def __init__(
        self,
        name,
        builder,
        image_size,
        source_size,
        train_splits,
        eval_splits,
        default_encoder,
        default_epochs,
        augmentation,
        default_settings=None,
    ):
        label = builder.info.features["label"]
        super().__init__(
            name,
            image_size=image_size,
            num_classes=label.num_classes,
            splits={},
            default_encoder=default_encoder,
            default_epochs=default_epochs,
            augmentation=augmentation,
            class_names=list(label.names),
            default_settings=default_settings,
        )
        self.builder = builder
        self.source_size = source_size
        self.train_splits = list(train_splits)
        self.eval_splits = dict(eval_splits)
        self._arrays = {}

    @property
    def split_names(self):
        return list(self.eval_splits)

    def _tfds_split_size(self, tfds_split):
        try:
            return self.builder.info.splits[tfds_split].num_examples
        except KeyError:  # split sizes unknown to the info (mocked data)
            dataset = self.builder.as_dataset(split=tfds_split)
            count = int(dataset.cardinality())
            if count < 0:
                count = sum(1 for _ in dataset)
            return count

    def num_examples(self, split):
        self._check_split(split)
        return self._tfds_split_size(self.eval_splits[split])

    @property
    def num_training_images(self):
        return sum(self._tfds_split_size(s) for s in self.train_splits)

    def training_dataset(self, shuffle_files=True, seed=None,
                         held_out_fraction=None):
        """Training images, as stored (`source_size`), uint8 `[H, W, 3]`.

        Decoding runs in parallel inside TFDS; resizing or cropping to
        `image_size` is the pipeline's job (`augment.batch_transform`).

        Args:
            shuffle_files: bool.
            seed: int or None, the file shuffling seed.
            held_out_fraction: float or None; given, elements are
                `(image, label)` pairs for the online probe, the label -1
                for the examples `held_out_examples` holds out (and for
                unlabelled ones).

        Returns:
            A `tf.data.Dataset`.
        """
        import tensorflow as tf
        import tensorflow_datasets as tfds

        read_config = tfds.ReadConfig(
            shuffle_seed=seed, add_tfds_id=held_out_fraction is not None)
        dataset = self.builder.as_dataset(
            split="+".join(self.train_splits),
            shuffle_files=shuffle_files,
            read_config=read_config,
        )
        if held_out_fraction is None:
            return dataset.map(lambda x: x["image"])
        threshold = _hash_threshold(held_out_fraction)

        def probe_pair(x):
            held = tf.strings.to_hash_bucket_fast(
                x["tfds_id"], HASH_BUCKETS) < threshold
            label = tf.cast(x["label"], tf.int64)
            return x["image"], tf.where(held, tf.constant(-1, tf.int64), label)

        return dataset.map(probe_pair, num_parallel_calls=tf.data.AUTOTUNE)

    def held_out_examples(self, held_out_fraction, limit, bank_limit):
        """The held-out examples of the training split, and a bank of others.

        An example is held out when the hash of its TFDS id falls in the
        first `held_out_fraction` of the buckets: the same examples whose
        labels `training_dataset(held_out_fraction=...)` hides.

        Args:
            held_out_fraction: float in (0, 1).
            limit: int, most held-out images read.
            bank_limit: int, most other labelled images read.

        Returns:
            `(images, labels, bank_images, bank_labels)`: numpy arrays,
            images uint8 `[N, image_size, image_size, 3]`, labels int64.
        """
        import tensorflow as tf
        import tensorflow_datasets as tfds

        threshold = _hash_threshold(held_out_fraction)
        dataset = self.builder.as_dataset(
            split="+".join(self.train_splits), shuffle_files=False,
            read_config=tfds.ReadConfig(add_tfds_id=True))
        dataset = dataset.filter(lambda x: x["label"] >= 0)
        size = self.image_size

        def part(held, count):
            chosen = dataset.filter(
                lambda x: (tf.strings.to_hash_bucket_fast(
                    x["tfds_id"], HASH_BUCKETS) < threshold) == held)
            chosen = chosen.take(count).map(
                lambda x: (augment.resize_uint8(x["image"], size)
                           if self.source_size != size else x["image"],
                           tf.cast(x["label"], tf.int64)))
            images, labels = [], []
            for x, y in chosen.batch(512).as_numpy_iterator():
                images.append(x)
                labels.append(y)
            if not images:
                return (np.zeros((0, size, size, 3), np.uint8),
                        np.zeros((0,), np.int64))
            return (np.concatenate(images).astype(np.uint8),
                    np.concatenate(labels).astype(np.int64))

        return part(True, limit) + part(False, bank_limit)

    def labelled_dataset(self, split):
        """`(image, label)` pairs of a split, resized to `image_size`."""
        import tensorflow as tf

        self._check_split(split)
        dataset = self.builder.as_dataset(
            split=self.eval_splits[split], as_supervised=True
        )
        if self.source_size != self.image_size:
            size = self.image_size
            dataset = dataset.map(
                lambda x, y: (augment.resize_uint8(x, size), y),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        return dataset

    def arrays(self, split):
        """A split as numpy arrays (read once, then kept)."""
        if split not in self._arrays:
            from dim_keras.progress import Progress

            images, labels = [], []
            batches = self.labelled_dataset(split).batch(1024)
            # On a terminal only: reading a large split takes a while.
            with Progress(f"Reading {self.name} ({split})",
                          self.num_examples(split), "images",
                          log=False) as progress:
                for x, y in batches.as_numpy_iterator():
                    images.append(x)
                    labels.append(y)
                    progress.advance(len(x))
            self._arrays[split] = (
                np.concatenate(images).astype(np.uint8),
                np.concatenate(labels).astype(np.int64),
            )
        return self._arrays[split]

    def training_images(self):
        """Every training image in memory, resized to `image_size`."""
        size = self.image_size
        dataset = self.training_dataset(shuffle_files=False)
        if self.source_size != size:
            dataset = dataset.map(lambda x: augment.resize_uint8(x, size))
        from dim_keras.progress import Progress

        batches = []
        with Progress(f"Reading {self.name} (training images)",
                      self.num_training_images, "images",
                      log=False) as progress:
            for batch in dataset.batch(1024).as_numpy_iterator():
                batches.append(batch)
                progress.advance(len(batch))
        return np.concatenate(batches).astype(np.uint8)
