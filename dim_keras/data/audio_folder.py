"""`folder:PATH` speech datasets: one sub-folder of audio files per speaker.

Layouts read:

- `PATH/<speaker>/**/<file>`: a fixed, seeded fraction of each speaker's
  usable files (at least one when it has two or more) is held out as
  `test`, so the test speakers are the training speakers (speaker
  identification on held-out utterances);
- `PATH/train/<speaker>/...` with `PATH/test/<speaker>/...` (or `val/`):
  those folders are the splits.

Files `.wav`, `.flac`, `.ogg` and `.mp3` (any case; hidden files ignored)
are decoded up front, in parallel, with `soundfile`, mixed down to mono and
resampled to 16 kHz (8 kHz telephone speech and 44.1/48 kHz recordings
alike). A file that cannot be decoded, is silent or lasts under
`MIN_FILE_SECONDS` (0.1 s) is left out; a file shorter than one chunk is
kept and padded to one by repeating it (`dim_keras.data.audio.pad_to`). A
speaker left with no usable file is dropped. `AudioDataset.usage()` says in
one line how many files and seconds were used, padded and left out.
"""

import collections
import concurrent.futures
import math
import os

import numpy as np

from dim_keras.data.audio import SAMPLE_RATE
from dim_keras.data.audio import AudioDataset
from dim_keras.data.audio import chunk_length_of  # noqa: F401 (re-exported)
from dim_keras.data.image_dataset import DatasetError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
SILENCE_PEAK = 1e-4
# Files shorter than this are left out; longer ones shorter than a chunk are
# padded to one.
MIN_FILE_SECONDS = 0.1
UNREADABLE, SILENT = "unreadable", "silent"
SHORT = f"shorter than {MIN_FILE_SECONDS:g} s"


def is_audio(name):
    """Whether a file name is an audio file this loader reads."""
    return name.lower().endswith(AUDIO_EXTENSIONS) and not name.startswith(".")


def _files_under(folder):
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(parent, f) for f in sorted(files) if is_audio(f)]
    return found


def holds_audio(root):
    """Whether `root` holds audio files and no images (any depth).

    Args:
        root: str, a `folder:PATH` folder.

    Returns:
        bool; False for a missing folder.
    """
    from dim_keras.data.folder import _is_image

    found = False
    for _, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if _is_image(name):
                return False
            found = found or is_audio(name)
    return found


def scan(folder):
    """Lists the audio files of one split folder with their speakers.

    Args:
        folder: str, holding one sub-folder per speaker.

    Returns:
        `(paths, speakers)`: lists of the same length, speakers in sorted
        folder-name order.
    """
    paths, speakers = [], []
    for name in sorted(os.listdir(folder)):
        sub = os.path.join(folder, name)
        if name.startswith(".") or not os.path.isdir(sub):
            continue
        files = _files_under(sub)
        paths += files
        speakers += [name] * len(files)
    return paths, speakers


def to_mono(data, rate, sample_rate=SAMPLE_RATE):
    """Samples `[n]` or `[n, channels]` to float32 mono at `sample_rate`.

    Integer samples are scaled to [-1, 1]; channels are averaged; the
    result is resampled (polyphase) and clipped to [-1, 1].
    """
    from scipy import signal

    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float64) / float(-np.iinfo(data.dtype).min)
    if data.ndim == 2:
        data = data.mean(axis=1)
    data = np.nan_to_num(data.astype(np.float64))
    if rate != sample_rate:
        common = math.gcd(int(rate), int(sample_rate))
        data = signal.resample_poly(data, sample_rate // common, rate // common)
    return np.clip(data, -1.0, 1.0).astype(np.float32)


def decode(source, sample_rate=SAMPLE_RATE):
    """Decodes an audio file (or file-like object) to float32 mono.

    Args:
        source: str path or binary file-like object.
        sample_rate: int, the rate returned.

    Returns:
        float32 `[n]` in [-1, 1], or None when it cannot be decoded.
    """
    import soundfile

    try:
        data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError, EOFError):
        # soundfile.LibsndfileError is a RuntimeError.
        return None
    if data.size == 0 or rate <= 0:
        return None
    return to_mono(data, rate, sample_rate)


def problem(wave, sample_rate=SAMPLE_RATE):
    """Why a decoded waveform is unusable (`UNREADABLE`, `SILENT`,
    `SHORT`: under `MIN_FILE_SECONDS`), or None when it is usable."""
    if wave is None:
        return UNREADABLE
    if len(wave) == 0 or np.max(np.abs(wave)) < SILENCE_PEAK:
        return SILENT
    if len(wave) < MIN_FILE_SECONDS * sample_rate:
        return SHORT
    return None


def decode_all(paths, sample_rate=SAMPLE_RATE, workers=None,
               description="Decoding audio"):
    """Decodes `paths` in parallel threads.

    Returns:
        `(waves, reasons, seconds)`: per path the float32 waveform (None
        when unusable), the reason it is unusable (None when usable) and
        its length in seconds (0 when it cannot be decoded).
    """
    from dim_keras.progress import Progress

    def load(path):
        wave = decode(path, sample_rate)
        reason = problem(wave, sample_rate)
        seconds = 0.0 if wave is None else len(wave) / sample_rate
        return (None, reason, seconds) if reason else (wave, None, seconds)

    waves, reasons, seconds = [], [], []
    workers = workers or min(8, (os.cpu_count() or 1) + 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool, Progress(
            description, len(paths), "files", log=False) as progress:
        for i, (wave, reason, length) in enumerate(pool.map(load, paths)):
            waves.append(wave)
            reasons.append(reason)
            seconds.append(length)
            progress.update(i + 1)
    return waves, reasons, seconds


def split_by_utterance(speakers, test_fraction, seed):
    """Indices `(train, test)` holding out a seeded fraction per speaker.

    A speaker with n >= 2 utterances has `round(test_fraction * n)` of
    them, at least 1 and at most n - 1, held out; one with a single
    utterance keeps it for training.

    Args:
        speakers: list of speaker names, one per utterance.
        test_fraction: float in [0, 1).
        seed: int.

    Returns:
        Two sorted int64 index arrays.
    """
    rng = np.random.default_rng(seed)
    speakers = np.asarray(speakers, dtype=object)
    test = []
    for name in sorted(set(speakers.tolist())):
        own = np.flatnonzero(speakers == name)
        if len(own) < 2:
            continue
        n_test = min(len(own) - 1, max(1, int(round(test_fraction * len(own)))))
        test += rng.permutation(own)[:n_test].tolist()
    test = np.sort(np.array(test, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(speakers)), test).astype(np.int64)
    return train, test


class Skips:
    """What was left out while loading, for `AudioDataset.usage()`."""

    def __init__(self):
        self.total = 0
        self.seconds = 0.0
        self.paths = collections.defaultdict(list)

    def add(self, paths, reasons, seconds=None):
        """Counts `paths` and records those with a reason (and, given the
        length of each in seconds, the seconds left out)."""
        self.total += len(paths)
        seconds = seconds or [0.0] * len(paths)
        for path, reason, length in zip(paths, reasons, seconds):
            if reason is not None:
                self.paths[reason].append(path)
                self.seconds += length

    def as_dict(self):
        return {k: list(v) for k, v in self.paths.items()}


def build(name, root, train, test, chunk_length, skips, test_fraction=0.2,
          seed=0):
    """An `AudioDataset` from decoded utterances, after the checks.

    Args:
        name: str, the dataset's name.
        root: str, named in errors.
        train: `(waves, speakers)` lists; a wave is None when unusable.
        test: `(waves, speakers)` of an explicit test split, or None to
            hold out utterances of `train` (`split_by_utterance`).
        chunk_length: int, samples per chunk.
        skips: `Skips` of what was left out.
        test_fraction, seed: the hold-out when `test` is None.

    Returns:
        An `AudioDataset`.

    Raises:
        DatasetError: nothing usable, fewer than 2 speakers, or test
            speakers missing from train.
    """
    def usable(waves, speakers):
        keep = [i for i, w in enumerate(waves) if w is not None]
        return [waves[i] for i in keep], [speakers[i] for i in keep]

    all_speakers = set(train[1]) | set(test[1] if test else [])
    waves, speakers = usable(*train)
    if test is not None:
        test_waves, test_speakers = usable(*test)
    else:
        train_idx, test_idx = split_by_utterance(speakers, test_fraction, seed)
        test_waves = [waves[i] for i in test_idx]
        test_speakers = [speakers[i] for i in test_idx]
        waves = [waves[i] for i in train_idx]
        speakers = [speakers[i] for i in train_idx]
    classes = sorted(set(speakers))
    dropped = sorted(all_speakers - set(speakers) - set(test_speakers))
    if not waves:
        raise DatasetError(
            "No usable audio files (" + ", ".join(AUDIO_EXTENSIONS) + ") in "
            f"speaker folders. Received: path={root!r}"
        )
    if len(classes) < 2:
        raise DatasetError(
            "Speaker datasets need at least 2 speakers with usable audio; "
            f"found {len(classes)}. Received: path={root!r}"
        )
    missing = sorted(set(test_speakers) - set(classes))
    if missing:
        raise DatasetError(
            f"Test speakers {missing[:5]} have no usable training audio. "
            f"Received: path={root!r}"
        )
    index = {c: k for k, c in enumerate(classes)}

    def ids(names):
        return np.array([index[n] for n in names], dtype=np.int64)

    return AudioDataset(
        name,
        {"train": (waves, ids(speakers)),
         "test": (test_waves, ids(test_speakers))},
        classes,
        chunk_length=chunk_length,
        sample_rate=SAMPLE_RATE,
        skipped=skips.as_dict(),
        skipped_seconds=skips.seconds,
        dropped_speakers=dropped,
    )


def read_folders(folders, root, name, chunk_seconds=1.0,
                 sample_rate=SAMPLE_RATE, test_fraction=0.2, seed=0):
    """Decodes speaker folders into an `AudioDataset`.

    Args:
        folders: list of folders each holding `<speaker>/**/<file>`, read
            together, utterances held out per speaker; or a dict
            `{"train": folder, "test": folder}` of explicit splits.
        root: str, named in messages.
        name: str, the dataset's name.
        chunk_seconds, sample_rate, test_fraction, seed: as
            `load_audio_folder`.

    Returns:
        An `AudioDataset`.

    Raises:
        DatasetError: see `build`.
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError(
            f"Only {SAMPLE_RATE} Hz is supported. Received: "
            f"sample_rate={sample_rate}"
        )
    chunk_length = chunk_length_of(chunk_seconds, sample_rate)
    skips = Skips()

    def read(folder_list, what):
        paths, speakers = [], []
        for folder in folder_list:
            p, s = scan(folder)
            paths += p
            speakers += s
        waves, reasons, seconds = decode_all(
            paths, sample_rate, description=f"Decoding {root} ({what})")
        skips.add(paths, reasons, seconds)
        return waves, speakers

    if isinstance(folders, dict):
        train = read([folders["train"]], "train")
        test = read([folders["test"]], "test")
    else:
        train, test = read(folders, "all"), None
    return build(name, root, train, test, chunk_length, skips,
                 test_fraction, seed)


def load_audio_folder(root, chunk_seconds=1.0, sample_rate=SAMPLE_RATE,
                      test_fraction=0.2, seed=0):
    """Loads `folder:PATH` speech as an in-memory `AudioDataset`.

    Args:
        root: str, the dataset folder.
        chunk_seconds: float, length of the chunks the encoder sees (a run
            sets its own: `AudioDataset.with_chunk_seconds`).
        sample_rate: int, 16000 (every file is resampled to it).
        test_fraction: float, fraction of each speaker's files held out as
            `test` when there is no train/test layout.
        seed: int, seed of that hold-out.

    Returns:
        An `AudioDataset` with splits `train` and `test`.

    Raises:
        DatasetError: for a missing folder, no usable audio, fewer than two
            speakers, or test speakers missing from train; one line.
    """
    from dim_keras.data.folder import TEST_FOLDERS

    if not os.path.isdir(root):
        raise DatasetError(f"No such folder. Received: path={root!r}")
    folders = [root]
    train = os.path.join(root, "train")
    if os.path.isdir(train):
        folders = [train]
        for test in TEST_FOLDERS:
            if os.path.isdir(os.path.join(root, test)):
                folders = {"train": train, "test": os.path.join(root, test)}
                break
    return read_folders(folders, root, f"folder:{root}", chunk_seconds,
                        sample_rate, test_fraction, seed)
