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
                                 num_classes=3, sample_rate=16000,
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
    assert examples == ("12 utterances of 3 speakers, speech chunks of "
                        "0.025 s (400 samples)")
    assert "two chunks of one speaker" in augmentation


def test_example_inputs_are_images_only():
    images = _images()
    config = _resolved(images, batch_size=4)
    part = modalities.Images().held_out_part(config, images)
    assert part is not None
    batch = np.asarray(modalities.Images().example_batch(config, images))
    assert batch.shape == (4, 32, 32, 3)
    assert modalities.Speech().example_batch(config, _speech()) is None


def test_only_speech_pairs_move_to_the_epoch_a_run_resumes_from():
    pairs = types.SimpleNamespace(epoch=0, on_epoch_end=lambda: None)
    modalities.Speech().start_at_epoch(pairs, 3)
    assert pairs.epoch == 3
    batches = types.SimpleNamespace(epoch=0, on_epoch_end=lambda: None)
    modalities.Images().start_at_epoch(batches, 3)
    assert batches.epoch == 0


def test_speech_monitors_hold_out_utterances_read_as_middle_chunks():
    from dim_keras.data.audio import AudioDataset

    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(3), 10)
    waves = [rng.normal(size=600).astype(np.float32) for _ in ids]
    data = AudioDataset("s", {"train": (waves, ids)}, ["a", "b", "c"],
                        chunk_length=400)
    config = _resolved(data, batch_size=3)
    part = modalities.Speech().held_out_part(config, data)
    assert part.images.shape == (3, 400, 1)  # 10% of 30 utterances
    held = np.flatnonzero(part.probe_labels < 0)
    np.testing.assert_array_equal(part.labels, ids[held])
    np.testing.assert_array_equal(part.images[:, :, 0],
                                  np.stack([waves[u][100:500] for u in held]))
    assert part.bank_images.shape == (27, 400, 1)
    pipeline, _ = modalities.Speech().training_input(config, data, part)
    pairs, labels = next(iter(pipeline))
    assert np.asarray(pairs).shape == (3, 2, 400, 1)
    assert set(np.asarray(labels).tolist()) <= {-1, 0, 1, 2}
    one = AudioDataset("s", {"train": (waves[:10], ids[:10])}, ["a"],
                       chunk_length=400)
    assert modalities.Speech().held_out_part(config, one) is None


def test_speech_runs_at_their_chunk_length_and_images_have_none(capsys):
    from dim_keras.data.audio import AudioDataset

    ids = np.array([0, 0, 1, 1])
    data = AudioDataset("s", {"train": ([np.ones(3000)] * 4, ids)},
                        ["a", "b"], chunk_length=16000)
    config = _resolved(data)
    assert config.chunk_seconds == 0.5 and config.encoder == "wave1d"
    lines = []
    run = modalities.Speech().for_run(config.replace(chunk_seconds=0.1),
                                      data, lines.append)
    assert run.chunk_length == 1600 and run.padded == {"train": 0}
    assert lines == [run.usage()]
    legacy = modalities.Speech().for_run(config.replace(chunk_seconds=None),
                                         data, lines.append)
    assert legacy.chunk_length == 16000 and legacy.padded == {"train": 4}
    with pytest.raises(RunError, match="at least 160 samples .*0.005"):
        modalities.Speech().for_run(config.replace(chunk_seconds=0.005),
                                    data, lines.append)
    images = _images()
    with pytest.raises(RunError, match="Received: chunk_seconds=0.5"):
        modalities.Images().check_settings(
            _resolved(images, chunk_seconds=0.5), images)


def test_speech_batch_is_one_pair_per_speaker_and_more_is_warned():
    from dim_keras.data.audio import AudioDataset

    ids = np.arange(6) % 3
    data = AudioDataset("s", {"train": ([np.ones(2000)] * 6, ids)},
                        ["a", "b", "c"], chunk_length=1600)
    config = _resolved(data, chunk_seconds=0.1)
    assert config.batch_size == 3 and config.estimator == "nce"
    lines = []
    modalities.Speech().for_run(config, data, lines.append)
    assert len(lines) == 1
    modalities.Speech().for_run(config.replace(batch_size=4), data,
                                lines.append)
    assert lines[-1].startswith("Warning: batch_size=4 is more than the 3")
    assert _resolved(data, batch_size=8).batch_size == 8
