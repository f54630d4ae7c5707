"""LibriSpeech (`--dataset librispeech`): read speech, labelled by speaker.

The data is looked for in the data directory, in this order:

1. a TFDS-prepared `librispeech` (`<data_dir>/librispeech/<config>/<version>`);
   its `train_clean100`, `dev_clean` and `test_clean` splits are read;
2. the official OpenSLR archives (`train-clean-100.tar.gz`,
   `dev-clean.tar.gz`, `test-clean.tar.gz`: any of them), extracted safely
   beside themselves on first use, or an already extracted `LibriSpeech/`
   folder (`LibriSpeech/<subset>/<speaker>/<chapter>/<utterance>.flac`);
3. otherwise `dev-clean.tar.gz` (337 MB, 40 speakers) is downloaded into
   the data directory; offline, one line says where to put the data.

The subsets found are read together: speakers are LibriSpeech speaker ids
and a seeded fraction of each speaker's utterances is held out as `test`
(as `dim_keras.data.audio_folder` does). Everything is held in memory as
float32: about 230 MB per hour of speech (dev-clean: 1.2 GB,
train-clean-100: 23 GB).
"""

import glob
import io
import os
import shutil
import urllib.request

from dim_keras.data import archives
from dim_keras.data import audio_folder
from dim_keras.data import tfds_data
from dim_keras.data.image_dataset import DatasetError

NAME = "librispeech"
FOLDER = "LibriSpeech"
SUBSETS = ("train-clean-100", "dev-clean", "test-clean")
TFDS_SPLITS = {
    "train-clean-100": "train_clean100",
    "dev-clean": "dev_clean",
    "test-clean": "test_clean",
}
HOME = "https://www.openslr.org/12"
URL = "https://www.openslr.org/resources/12/dev-clean.tar.gz"


def archive_name(subset):
    return f"{subset}.tar.gz"


def data_directory(data_dir):
    """The absolute data directory (TFDS's default when None)."""
    return os.path.abspath(
        os.path.expanduser(data_dir or tfds_data.default_data_dir()))


def prepared_tfds(data_dir):
    """`dataset_info.json` of a TFDS-prepared librispeech, or None."""
    pattern = os.path.join(data_dir, NAME, "*", "*", "dataset_info.json")
    found = sorted(glob.glob(pattern), reverse=True)
    return found[0] if found else None


def _extracted(data_dir, subset):
    """The subset's extracted folder in `data_dir`, or None."""
    candidates = [
        os.path.join(data_dir, FOLDER, subset),
        os.path.join(data_dir, archive_name(subset) + ".extracted", FOLDER,
                     subset),
    ]
    if os.path.basename(data_dir) == FOLDER:
        candidates.append(os.path.join(data_dir, subset))
    for path in candidates:
        if os.path.isdir(path):
            return path
    return None


def find_subsets(data_dir):
    """The subsets present in `data_dir`.

    Args:
        data_dir: str, absolute.

    Returns:
        Dict of subset name to its extracted folder or its archive, in
        `SUBSETS` order.
    """
    found = {}
    for subset in SUBSETS:
        folder = _extracted(data_dir, subset)
        archive = os.path.join(data_dir, archive_name(subset))
        if folder is not None:
            found[subset] = folder
        elif os.path.isfile(archive):
            found[subset] = archive
    return found


def status(data_dir=None):
    """Whether the data is present, and where (for `dim-keras datasets`)."""
    data_dir = data_directory(data_dir)
    info = prepared_tfds(data_dir)
    if info is not None:
        return {"present": True,
                "where": f"prepared in {os.path.dirname(info)}"}
    found = find_subsets(data_dir)
    if found:
        return {"present": True, "where": ", ".join(found.values())}
    return {
        "present": False,
        "where": f"dev-clean.tar.gz downloaded into {data_dir} on first use, "
                 "or put LibriSpeech archives there (--data-dir)",
    }


def _hint(data_dir):
    return (
        f"download dev-clean.tar.gz (and/or train-clean-100.tar.gz, "
        f"test-clean.tar.gz) from {HOME} into {data_dir}, or pass --data-dir "
        "DIR holding them, the extracted LibriSpeech/ folder or a prepared "
        "TFDS librispeech."
    )


def subset_folder(source, subset):
    """The extracted folder of a subset, extracting its archive if needed.

    Raises:
        DatasetError: for an unsafe, damaged or unofficial archive.
    """
    if os.path.isdir(source):
        return source
    target = source + ".extracted"
    try:
        archives.safe_extract(source, target)
    except (ValueError, OSError, EOFError) as e:  # tarfile errors included
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DatasetError(
            f"Cannot extract {source} ({detail}). Received: path={source!r}"
        ) from None
    folder = os.path.join(target, FOLDER, subset)
    if not os.path.isdir(folder):
        raise DatasetError(
            f"{source} holds no {FOLDER}/{subset}/; is it the official archive "
            f"({HOME})? Received: path={source!r}"
        )
    return folder


def download(url, target):
    """Downloads `url` to `target` through a `.partial` file.

    Raises:
        DatasetError: one line when the download fails (nothing is left).
    """
    partial = target + ".partial"
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with urllib.request.urlopen(url, timeout=60) as response, open(
                partial, "wb") as f:
            shutil.copyfileobj(response, f, 1 << 20)
        os.replace(partial, target)
    except OSError as e:  # URLError and socket errors are OSErrors
        if os.path.exists(partial):
            os.remove(partial)
        detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise DatasetError(
            f"Downloading {url} failed ({detail}); "
            f"{_hint(os.path.dirname(target))}"
        ) from None
    return target


def from_examples(examples, root, chunk_seconds=1.0, test_fraction=0.2,
                  seed=0):
    """An `AudioDataset` from TFDS librispeech examples (numpy dicts).

    Args:
        examples: iterable of dicts with `speech` (int16 samples at 16 kHz,
            or encoded bytes of the `lazy_decode` config), `speaker_id` and
            `id`.
        root: str, named in messages.
        chunk_seconds, test_fraction, seed: as `load_librispeech`.

    Returns:
        An `AudioDataset`.
    """
    chunk_length = audio_folder.chunk_length_of(chunk_seconds,
                                                audio_folder.SAMPLE_RATE)
    waves, speakers, ids, reasons, lengths = [], [], [], [], []
    for example in examples:
        speech = example["speech"]
        if isinstance(speech, bytes):
            wave = audio_folder.decode(io.BytesIO(speech))
        else:
            wave = audio_folder.to_mono(speech, audio_folder.SAMPLE_RATE)
        reason = audio_folder.problem(wave)
        waves.append(None if reason else wave)
        reasons.append(reason)
        lengths.append(0.0 if wave is None else len(wave) / audio_folder.SAMPLE_RATE)
        speakers.append(str(int(example["speaker_id"])))
        name = example["id"]
        ids.append(name.decode() if isinstance(name, bytes) else str(name))
    skips = audio_folder.Skips()
    skips.add(ids, reasons, lengths)
    return audio_folder.build(NAME, root, (waves, speakers), None,
                              chunk_length, skips, test_fraction, seed)


def _load_tfds(info_path, data_dir, chunk_seconds, test_fraction, seed):
    import tensorflow_datasets as tfds

    version_dir = os.path.dirname(info_path)
    config = os.path.basename(os.path.dirname(version_dir))
    version = os.path.basename(version_dir)
    try:
        builder = tfds.builder(f"{NAME}/{config}:{version}", data_dir=data_dir)
        splits = [TFDS_SPLITS[s] for s in SUBSETS
                  if TFDS_SPLITS[s] in builder.info.splits]
        if not splits:
            raise ValueError(f"none of the splits {sorted(TFDS_SPLITS.values())}")
        examples = tfds.as_numpy(builder.as_dataset(split="+".join(splits)))
        return from_examples(examples, version_dir, chunk_seconds,
                             test_fraction, seed)
    except DatasetError:
        raise
    except Exception as e:  # TFDS and TensorFlow raise many kinds
        detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise DatasetError(
            f"Cannot read the prepared librispeech ({detail}). "
            f"Received: path={version_dir!r}"
        ) from None


def load_librispeech(data_dir=None, chunk_seconds=1.0, test_fraction=0.2,
                     seed=0):
    """LibriSpeech speakers as an in-memory `AudioDataset`.

    Args:
        data_dir: str or None (TFDS's default data directory): holds a
            prepared TFDS librispeech, the OpenSLR archives or the
            extracted `LibriSpeech/` folder.
        chunk_seconds: float, length of the chunks the encoder sees.
        test_fraction: float, fraction of each speaker's utterances held
            out as `test`.
        seed: int, seed of that hold-out.

    Returns:
        An `AudioDataset` named `"librispeech"`.

    Raises:
        DatasetError: offline without the data, or data that cannot be
            read; one line saying what to do.
    """
    data_dir = data_directory(data_dir)
    info = prepared_tfds(data_dir)
    if info is not None:
        return _load_tfds(info, data_dir, chunk_seconds, test_fraction, seed)
    found = find_subsets(data_dir)
    if not found:
        if not tfds_data.reachable(URL):
            raise DatasetError(
                f"librispeech is not in {data_dir} and {URL} cannot be "
                f"reached: {_hint(data_dir)}"
            )
        archive = download(URL, os.path.join(data_dir, "dev-clean.tar.gz"))
        found = {"dev-clean": archive}
    folders = [subset_folder(source, subset)
               for subset, source in found.items()]
    return audio_folder.read_folders(folders, data_dir, NAME, chunk_seconds,
                                     test_fraction=test_fraction, seed=seed)
