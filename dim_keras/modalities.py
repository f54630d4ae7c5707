"""The seam between a training run and the kind of data it learns from.

Images and speech are two implementations of one protocol, `Modality`: the
settings that apply, the data as the run reads it (speech: cut into the
run's chunks), the encoder's input, the training pipeline, the run's
description, the online monitors' held-out part and TensorBoard's example
inputs. Every dataset names its modality (`dataset.modality`:
`"image"` or `"audio"`) and `for_dataset` gives the implementation, so
training holds no branch on the kind of data. The evaluation has its own
seam (`dim_keras.evaluation.evaluate`), the defaults theirs
(`dim_keras.recipes.scheme_settings`).
"""

import keras

from dim_keras.networks.encoders import AUDIO_ENCODERS
from dim_keras.recipes import LEGACY_CHUNK_SECONDS
from dim_keras.runs import RunError


class Modality:
    """What a training run needs to know of its data's kind.

    Subclasses implement every method; `name` is the `dataset.modality`
    they serve.
    """

    name = None

    def check_settings(self, config, dataset):
        """Refuses settings that do not apply to this kind of data.

        Args:
            config: the run's resolved `TrainConfig`.
            dataset: the dataset the run trains on.

        Raises:
            RunError: naming the settings.
        """
        raise NotImplementedError

    def for_run(self, config, dataset, log=print):
        """The dataset as the run reads it (speech: at the run's chunk
        length), after one line about the data used.

        Args:
            config: the run's resolved `TrainConfig`.
            dataset: the dataset as loaded.
            log: callable for one-line messages.

        Returns:
            A dataset of the same kind.

        Raises:
            RunError: for data the run's encoder cannot read.
        """
        return dataset

    def encoder_input(self, dataset):
        """The input size arguments of `networks.build_encoder`.

        Returns:
            dict, e.g. `{"image_size": 32}`.
        """
        raise NotImplementedError

    def training_input(self, config, dataset, part):
        """The training pipeline and the steps per epoch `fit` needs.

        Args:
            config: the run's resolved `TrainConfig`.
            dataset: the dataset.
            part: the online monitors' `HeldOutPart`, or None.

        Returns:
            `(pipeline, steps_per_epoch)`: a `tf.data.Dataset` or a
            `keras.utils.PyDataset`, and the steps for `fit` (None: the
            pipeline's own length).
        """
        raise NotImplementedError

    def start_at_epoch(self, pipeline, epochs_done):
        """Moves a pipeline to the epoch a resumed run starts from.

        Args:
            pipeline: the pipeline of `training_input`.
            epochs_done: int, the epochs already done (restored).
        """

    def describe(self, config, dataset):
        """The run's data and augmentation, for its first log line.

        Returns:
            `(examples, augmentation)`: two short texts.
        """
        raise NotImplementedError

    def held_out_part(self, config, dataset):
        """The online monitors' held-out part of labelled training data.

        Returns:
            A `dim_keras.online_monitors.HeldOutPart`, or None where the
            monitors do not read this kind of data.
        """
        raise NotImplementedError

    def example_batch(self, config, dataset):
        """A few training inputs for TensorBoard's images, or None."""
        raise NotImplementedError


def _check_encoder(config, dataset, speech):
    if speech != (config.encoder in AUDIO_ENCODERS):
        kind = "speech" if speech else "images"
        wanted = ", ".join(AUDIO_ENCODERS) if speech else "an image encoder"
        raise RunError(
            f"Dataset {config.dataset} holds {kind}; its encoder must be "
            f"{wanted}. Received: encoder={config.encoder!r}"
        )


class Images(Modality):
    """Images: one view, two views or a channel split of each image."""

    name = "image"

    def check_settings(self, config, dataset):
        _check_encoder(config, dataset, speech=False)
        if config.chunk_seconds is not None:
            raise RunError(
                "chunk_seconds is a speech setting; images have no chunks. "
                f"Received: chunk_seconds={config.chunk_seconds}"
            )

    def encoder_input(self, dataset):
        return {"image_size": dataset.image_size}

    def training_input(self, config, dataset, part):
        from dim_keras.data.pipeline import dataset_pipeline

        probe = part is not None and config.online_probe
        pipeline = dataset_pipeline(
            dataset,
            config.batch_size,
            seed=config.seed,
            augment_images=config.augment,
            repeat=config.steps_per_epoch is not None,
            views=config.views,
            labels=part.probe_labels if probe else None,
            held_out_fraction=part.stream_fraction if probe else None,
            view_crop=config.view_crop,
        )
        return pipeline, config.steps_per_epoch

    def describe(self, config, dataset):
        examples = f"{dataset.num_training_images} images"
        if config.views == 2:
            from dim_keras.data.views import for_crop

            augmentation = ("two views, each by "
                            f"{for_crop(config.view_crop).describe()}")
        else:
            augmentation = (
                dataset.augmentation.describe() if config.augment else "none"
            )
        return examples, augmentation

    def held_out_part(self, config, dataset):
        from dim_keras.online_monitors import held_out_part
        from dim_keras.online_monitors import held_out_stream_part

        if not dataset.in_memory:
            return held_out_stream_part(dataset)
        images, labels = dataset.arrays("train")
        return held_out_part(images, labels, seed=config.seed)

    def example_batch(self, config, dataset):
        from dim_keras.data.pipeline import dataset_pipeline
        from dim_keras.monitors import EXAMPLE_IMAGES

        # A pipeline of its own, so that the training pipeline's shuffling
        # and augmentation draws are left as they are.
        examples = dataset_pipeline(
            dataset, min(config.batch_size, EXAMPLE_IMAGES), seed=config.seed,
            augment_images=config.augment, repeat=False, views=config.views,
            view_crop=config.view_crop)
        return next(iter(examples))


# The kNN monitor's bank of speech chunks, at most (a chunk is larger than
# an image).
SPEECH_BANK_LIMIT = 2000


class Speech(Modality):
    """Speech: two chunks of one speaker, the batch's other speakers as
    negatives."""

    name = "audio"

    def check_settings(self, config, dataset):
        """Also refuses global DIM (`alpha` > 0: its critic's 3x3 convs
        need a 2-D map, speech maps have width 1), occlusion and a channel
        split (both about images)."""
        _check_encoder(config, dataset, speech=True)
        if config.alpha > 0:
            raise RunError(
                "Global DIM's critic convolves 3x3 over a 2-D map; speech "
                "maps are T x 1, so alpha must be 0 on speech. "
                f"Received: alpha={config.alpha}"
            )
        if config.occlusion or config.channel_split != "none":
            raise RunError(
                "occlusion and channel_split are image settings. Received: "
                f"occlusion={config.occlusion}, "
                f"channel_split={config.channel_split!r}"
            )

    def for_run(self, config, dataset, log=print):
        """Cuts the speech into the run's chunks (a run recorded before
        chunk lengths were a setting read 1 s chunks)."""
        from dim_keras.networks.encoders import min_chunk_length

        seconds = config.chunk_seconds or LEGACY_CHUNK_SECONDS
        try:
            data = dataset.with_chunk_seconds(seconds)
        except ValueError as e:
            raise RunError(str(e)) from None
        least = min_chunk_length(config.encoder)
        if data.chunk_length < least:
            raise RunError(
                f"{config.encoder} needs chunks of at least {least} samples "
                f"({least / data.sample_rate:g} s at {data.sample_rate} Hz): "
                "its strides leave no frame of a shorter one. Received: "
                f"chunk_seconds={seconds:g} ({data.chunk_length} samples)"
            )
        log(data.usage())
        if config.batch_size > data.num_classes:
            log(f"Warning: batch_size={config.batch_size} is more than the "
                f"{data.num_classes} training speakers, so a batch holds "
                "one speaker more than once and scores its chunks as "
                "negatives of each other; a batch of one pair per speaker "
                "(the default) learns speakers better.")
        return data

    def encoder_input(self, dataset):
        return {"chunk_length": dataset.chunk_length}

    def training_input(self, config, dataset, part):
        """On TensorFlow a `tf.data` pipeline (endless, so `fit` is given
        the steps); elsewhere a `keras.utils.PyDataset` that knows its
        own."""
        probe = part is not None and config.online_probe
        labels = part.probe_labels if probe else None
        pairs = dataset.training_pairs(config.batch_size, seed=config.seed,
                                       steps_per_epoch=config.steps_per_epoch,
                                       labels=labels)
        if keras.backend.backend() == "tensorflow":
            return (dataset.tf_training_pairs(config.batch_size,
                                              seed=config.seed,
                                              labels=labels), len(pairs))
        return pairs, None

    def start_at_epoch(self, pipeline, epochs_done):
        if hasattr(pipeline, "on_epoch_end"):  # the pairs of a PyDataset
            pipeline.epoch = epochs_done  # resumed: the next epoch's pairs

    def describe(self, config, dataset):
        seconds = dataset.chunk_length / dataset.sample_rate
        examples = (f"{dataset.num_examples('train')} utterances of "
                    f"{dataset.num_classes} speakers, speech chunks of "
                    f"{seconds:g} s ({dataset.chunk_length} samples)")
        augmentation = ("two chunks of one speaker, the other speakers of "
                        "the batch as negatives")
        return examples, augmentation

    def held_out_part(self, config, dataset):
        """A seeded part of the training utterances (`HELD_OUT_FRACTION`,
        at most `HELD_OUT_LIMIT`), each read as its middle chunk; the kNN
        bank, the middle chunks of up to `SPEECH_BANK_LIMIT` others. The
        online probe learns the speakers of the other utterances' pairs."""
        import numpy as np

        from dim_keras.online_monitors import held_out_part

        speakers = dataset.splits["train"][1]
        part = held_out_part(np.arange(len(speakers)), speakers,
                             seed=config.seed, bank_limit=SPEECH_BANK_LIMIT)
        if part is None:
            return None
        part.images = dataset.middle_chunks("train", part.images)
        part.bank_images = dataset.middle_chunks("train", part.bank_images)
        return part

    def example_batch(self, config, dataset):
        return None  # TensorBoard's example inputs are images


MODALITIES = {modality.name: modality for modality in (Images(), Speech())}


def for_dataset(dataset):
    """The `Modality` of a dataset.

    Args:
        dataset: an `ImageDataset`, an `AudioDataset`, or any dataset whose
            `modality` names one of `MODALITIES`.

    Returns:
        A `Modality`.

    Raises:
        ValueError: for an unknown modality.
    """
    name = getattr(dataset, "modality", None)
    if name not in MODALITIES:
        raise ValueError(
            f"Unknown modality; expected one of {sorted(MODALITIES)}. "
            f"Received: modality={name!r}"
        )
    return MODALITIES[name]
