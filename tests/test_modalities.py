"""The modality seam: what a run needs to know of images and of speech."""

import types

import numpy as np
import pytest

from dim_keras import modalities
from dim_keras.config import TrainConfig
from dim_keras.data import ImageDataset
from dim_keras.runs import RunError


def _images():
    rng = np.random.default_rng(0)
    splits = {"train": (rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8),
                        np.arange(6) % 2)}
    return ImageDataset("tiny", 32, 2, splits, default_epochs=1)


def _speech(chunk_length=400):
    return types.SimpleNamespace(modality="audio", chunk_length=chunk_length,
                                 num_classes=3,
                                 num_examples=lambda split: 12)


def _resolved(dataset, **settings):
    return TrainConfig(dataset="digits", **settings).resolved(dataset)


def test_each_dataset_finds_its_modality_and_an_unknown_one_is_named():
    assert isinstance(modalities.for_dataset(_images()), modalities.Images)
    assert isinstance(modalities.for_dataset(_speech()), modalities.Speech)
    with pytest.raises(ValueError, match="Received: modality='video'"):
        modalities.for_dataset(types.SimpleNamespace(modality="video"))


def test_the_encoder_input_is_the_image_size_or_the_chunk_length():
    assert modalities.Images().encoder_input(_images()) == {"image_size": 32}
    assert modalities.Speech().encoder_input(_speech(400)) == {
        "chunk_length": 400}


def test_each_modality_refuses_the_settings_of_the_other():
    images = _images()
    config = _resolved(images)
    modalities.Images().check_settings(config, images)  # accepted
    with pytest.raises(RunError, match="encoder='basic32x32'"):
        modalities.Speech().check_settings(config, _speech())
    with pytest.raises(RunError, match="encoder='wave1d'"):
        modalities.Images().check_settings(config.replace(encoder="wave1d"),
                                           images)
    speech = config.replace(encoder="wave1d", views=2)
    modalities.Speech().check_settings(speech, _speech())  # accepted
    with pytest.raises(RunError, match="alpha=1.0"):
        modalities.Speech().check_settings(speech.replace(alpha=1.0),
                                           _speech())
    with pytest.raises(RunError, match="occlusion=True"):
        modalities.Speech().check_settings(speech.replace(occlusion=True),
                                           _speech())


def test_descriptions_name_the_data_and_the_augmentation():
    images = _images()
    examples, augmentation = modalities.Images().describe(
        _resolved(images, augment=False), images)
    assert (examples, augmentation) == ("6 images", "none")
    _, augmentation = modalities.Images().describe(
        _resolved(images, views=2, view_crop="translate"), images)
    assert augmentation.startswith("two views, each by")
    examples, augmentation = modalities.Speech().describe(
        _resolved(images), _speech(400))
    assert examples == ("12 utterances of 3 speakers, speech chunks of 400 "
                        "samples")
    assert "two chunks of one speaker" in augmentation


def test_monitors_and_example_inputs_are_images_only():
    images = _images()
    config = _resolved(images, batch_size=4)
    part = modalities.Images().held_out_part(config, images)
    assert part is not None
    batch = np.asarray(modalities.Images().example_batch(config, images))
    assert batch.shape == (4, 32, 32, 3)
    assert modalities.Speech().held_out_part(config, _speech()) is None
    assert modalities.Speech().example_batch(config, _speech()) is None


def test_only_speech_pairs_move_to_the_epoch_a_run_resumes_from():
    pairs = types.SimpleNamespace(epoch=0, on_epoch_end=lambda: None)
    modalities.Speech().start_at_epoch(pairs, 3)
    assert pairs.epoch == 3
    batches = types.SimpleNamespace(epoch=0, on_epoch_end=lambda: None)
    modalities.Images().start_at_epoch(batches, 3)
    assert batches.epoch == 0
