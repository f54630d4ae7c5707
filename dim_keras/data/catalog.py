"""What `dim-keras datasets` prints: every dataset and where its data is.

Presence is read from the files alone (TFDS's `dataset_info.json`, the
archives), without importing TensorFlow.
"""

import os

from dim_keras import recipes
from dim_keras.data import registry


def _split_counts(info):
    counts = {}
    for split in info.get("splits", []):
        lengths = split.get("shardLengths") or []
        counts[split["name"]] = sum(int(n) for n in lengths)
    return counts


def status(name, data_dir=None):
    """Where a dataset's data is expected and whether it is there.

    Args:
        name: a `registry.DATASETS` name.
        data_dir: str or None (TFDS's default data directory).

    Returns:
        Dict with `present` (bool), `where` (str) and `splits` (dict of
        split name to count: the prepared counts where known).
    """
    from dim_keras.data import tfds_data

    spec = registry.DATASETS[name]
    splits = dict(spec.splits)
    if name == "librispeech":
        from dim_keras.data import librispeech

        return dict(librispeech.status(data_dir), splits=splits)
    if name == "digits":
        return {"present": True, "where": spec.source, "splits": splits}
    if name == "tiny_imagenet":
        tfds_dir, source = _tiny_locations(data_dir)
        tfds_name = "tiny_imagenet"
        archive = "tiny-imagenet-200.zip (or tiny-imagenet-200/)"
    else:
        tfds_dir = os.path.abspath(data_dir or tfds_data.default_data_dir())
        tfds_name = name
        archive = registry.TFDS_ARCHIVES[name][1]
        path = os.path.join(tfds_dir, archive)
        source = path if os.path.exists(path) else None
    prepared = tfds_data.prepared_info(tfds_dir, tfds_name)
    if prepared is not None:
        counts = _split_counts(prepared[1])
        if name == "tiny_imagenet" and "validation" in counts:
            counts["test"] = counts.pop("validation")
        splits.update({k: v for k, v in counts.items() if k in splits})
        where = f"prepared in {os.path.dirname(prepared[0])}"
        return {"present": True, "where": where, "splits": splits}
    if source is not None:
        where = f"{source} (prepared into {tfds_dir} on first use)"
        return {"present": True, "where": where, "splits": splits}
    where = (
        f"downloaded into {tfds_dir} on first use, or put {archive} there "
        "(--data-dir)"
    )
    return {"present": False, "where": where, "splits": splits}


def _tiny_locations(data_dir):
    from dim_keras.data import tfds_data

    return tfds_data.tiny_imagenet_locations(data_dir)


def _speech_recipe():
    scheme = recipes.scheme_settings(None, modality="audio")
    values = dict(recipes.SPEECH, **scheme)
    values["batch_size"] = (f"one pair per speaker (at most "
                            f"{recipes.SPEECH_BATCH_LIMIT})")
    settings = ", ".join(f"{name}={values[name]}" for name in (
        "chunk_seconds", "lr", "critic_units", "critic_norm", "batch_size",
        "score_temperature"))
    return (f"{settings}; wave1d on two chunks of one speaker, "
            f"{scheme['estimator']}")


def describe_all(data_dir=None):
    """Lines describing every dataset name, for `dim-keras datasets`."""
    lines = []
    for name, spec in registry.DATASETS.items():
        state = status(name, data_dir)
        if spec.modality == "audio":
            lines.append(
                f"{name:14s} speech, 16 kHz, "
                f"{recipes.SPEECH['chunk_seconds']:g} s chunks  one class "
                "per speaker  splits: 20% of each speaker's utterances held "
                "out"
            )
        else:
            splits = ", ".join(
                f"{k} {v:,}" for k, v in state["splits"].items())
            lines.append(
                f"{name:14s} {spec.image_size}x{spec.image_size}  "
                f"{spec.num_classes} classes  splits: {splits}  "
                f"augmentation (when on): {spec.augmentation.describe()}"
            )
        lines.append(
            f"{'':14s} data: {'present' if state['present'] else 'absent'}"
            f" - {state['where']}"
        )
        recipe = (_speech_recipe() if spec.modality == "audio"
                  else recipes.describe(spec.recipe))
        lines.append(f"{'':14s} recipe: {recipe}")
    lines.append(
        f"{'folder:PATH':14s} 32x32 or 64x64 (from the images, or the "
        "encoder's)  one class per sub-folder (or none)  splits: "
        "PATH/train + PATH/test (or val), else 20% held out"
    )
    lines.append(f"{'':14s} data: your images under PATH (any common format),"
                 " or speech: PATH/<speaker>/**/*.wav|flac|ogg|mp3 (any "
                 "sample rate, resampled to 16 kHz)")
    lines.append(f"{'':14s} recipe: 32x32: {recipes.describe(recipes.CIFAR_LIKE)};"
                 f" 64x64: {recipes.describe(recipes.SIXTY_FOUR)};"
                 f" speech: {_speech_recipe()}")
    two = recipes.scheme_settings(2)
    lines.append(
        "views=2 is multi-view DIM (" + ", ".join(
            f"{k}={two[k]}" for k in recipes.SCHEME_FIELDS if k != "views")
        + "); --views 1 trains one view with a dataset's other settings; "
        f"--recipe paper trains the paper's single-view DIM "
        f"({recipes.describe(recipes.named('paper', {}))}, the dataset's "
        "encoder).")
    return lines
