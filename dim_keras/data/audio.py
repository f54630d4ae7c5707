"""Speech datasets for speaker representations (the audio modality).

An `AudioDataset` holds its utterances in memory as float32 mono waveforms
in [-1, 1] at 16 kHz, one array per utterance, labelled by speaker. The
encoder sees fixed-length chunks `[chunk_length, 1]`; an utterance shorter
than one chunk is padded to one by repeating it (`pad_to`), as speaker
toolkits do with short test utterances, and `with_chunk_length` gives the
same utterances at another chunk length:

- `chunks(split)`: every chunk of every utterance, in order (evaluation);
- `training_pairs(batch_size)`: batches `[B, 2, chunk_length, 1]` whose
  element i holds two random chunks of one speaker (positives), the other
  elements other speakers (negatives), served by a numpy-only
  `keras.utils.PyDataset` (no TensorFlow needed);
- `tf_training_pairs(batch_size)`: the same sampling as a `tf.data`
  pipeline in graph ops.

Waveform values are left as decoded (no normalization here).
"""

import numpy as np

from dim_keras import checks
from dim_keras import recipes
from dim_keras.data.speaker_pairs import SpeakerIndex
from dim_keras.data.speaker_pairs import SpeakerPairs
from dim_keras.data.speaker_pairs import base_seed
from dim_keras.data.speaker_pairs import check_batch_size
from dim_keras.data.speaker_pairs import check_labels

SAMPLE_RATE = 16000


def chunk_length_of(chunk_seconds, sample_rate=SAMPLE_RATE):
    """Samples per chunk of `chunk_seconds` at `sample_rate`.

    Args:
        chunk_seconds: float, positive.
        sample_rate: int.

    Returns:
        int, at least 1.

    Raises:
        ValueError: for a chunk length that is not a positive number.
    """
    checks.check_chunk_seconds(chunk_seconds)
    return max(1, int(round(chunk_seconds * sample_rate)))


def pad_to(wave, length):
    """`wave` repeated end to end up to `length` samples (or as it is when
    it has at least `length`).

    Args:
        wave: 1-D array, at least one sample.
        length: int.

    Returns:
        A 1-D array of `max(len(wave), length)` samples.
    """
    if len(wave) >= length:
        return wave
    return np.resize(wave, length)


class AudioDataset:
    """Utterances labelled by speaker, held in memory.

    Args:
        name: str, the `--dataset` name.
        splits: dict of split name to `(waveforms, speaker_ids)`:
            `waveforms` a list of float32 1-D numpy arrays (those shorter
            than `chunk_length` are padded by repeating them), `speaker_ids`
            int64 `[N]` indexing `class_names`.
        class_names: list of str, the speaker names, sorted.
        chunk_length: int, samples per chunk the encoder sees.
        sample_rate: int, samples per second of every waveform.
        skipped: dict of reason to list of paths left out when loading.
        default_epochs: int, epochs `dim-keras train` runs by default.
        skipped_seconds: float, the audio of the files left out, in
            seconds (as far as it could be decoded).
        dropped_speakers: list of str, speakers left with no usable file.

    Attributes:
        utterances: dict of split to `(waveforms, speaker_ids)` as given.
        splits: the same with every waveform at least one chunk long.
        padded: dict of split to the number of utterances padded.

    Raises:
        ValueError: for an empty or not 1-D waveform, or a speaker id
            outside `class_names`.
    """

    modality = "audio"
    in_memory = True

    def __init__(
        self,
        name,
        splits,
        class_names,
        chunk_length=SAMPLE_RATE,
        sample_rate=SAMPLE_RATE,
        skipped=None,
        default_epochs=20,
        skipped_seconds=0.0,
        dropped_speakers=(),
    ):
        self.name = name
        self.sample_rate = int(sample_rate)
        self.chunk_length = int(chunk_length)
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        if self.chunk_length < 1:
            raise ValueError(
                "chunk_length must be at least 1. Received: "
                f"chunk_length={chunk_length}")
        self.skipped = dict(skipped or {})
        self.skipped_seconds = float(skipped_seconds)
        self.dropped_speakers = list(dropped_speakers)
        self.default_encoder = "wave1d"
        self.default_epochs = default_epochs
        self.default_settings = recipes.SPEECH
        self.utterances, self.splits, self.padded = {}, {}, {}
        for split, (waveforms, speaker_ids) in splits.items():
            waveforms = [np.asarray(w, dtype=np.float32) for w in waveforms]
            speaker_ids = np.asarray(speaker_ids, dtype=np.int64)
            self._check_split_data(split, waveforms, speaker_ids)
            self.utterances[split] = (waveforms, speaker_ids)
            self.splits[split] = (
                [pad_to(w, self.chunk_length) for w in waveforms], speaker_ids)
            self.padded[split] = sum(
                len(w) < self.chunk_length for w in waveforms)

    def with_chunk_length(self, chunk_length):
        """The same utterances cut into chunks of `chunk_length` samples.

        Args:
            chunk_length: int, at least 1.

        Returns:
            An `AudioDataset` (this one when the length is the same).
        """
        if int(chunk_length) == self.chunk_length:
            return self
        other = AudioDataset(
            self.name, self.utterances, self.class_names,
            chunk_length=chunk_length, sample_rate=self.sample_rate,
            skipped=self.skipped, default_epochs=self.default_epochs,
            skipped_seconds=self.skipped_seconds,
            dropped_speakers=self.dropped_speakers)
        other.default_settings = self.default_settings
        return other

    def with_chunk_seconds(self, chunk_seconds):
        """`with_chunk_length` for a chunk of `chunk_seconds` seconds.

        Raises:
            ValueError: for a chunk length that is not a positive number.
        """
        return self.with_chunk_length(
            chunk_length_of(chunk_seconds, self.sample_rate))

    def usage(self):
        """One line: the files and seconds used, padded and left out."""
        used = sum(len(w) for w, _ in self.utterances.values())
        seconds = sum(len(x) for w, _ in self.utterances.values()
                      for x in w) / self.sample_rate
        padded = sum(self.padded.values())
        skipped = sum(len(v) for v in self.skipped.values())
        chunk = self.chunk_length / self.sample_rate
        line = (f"Used {used} of {used + skipped} audio files "
                f"({_duration(seconds)} of speech, {self.num_classes} "
                f"speakers) in chunks of {chunk:g} s")
        if padded:
            line += (f"; {padded} shorter than a chunk, padded by repeating "
                     "them")
        line += f"; left out {skipped} ({_duration(self.skipped_seconds)})"
        if skipped:
            line += ": " + ", ".join(
                f"{len(paths)} {reason}" + (
                    f" (first: {paths[0]})" if reason == "unreadable" else "")
                for reason, paths in sorted(self.skipped.items()))
        if self.dropped_speakers:
            names = self.dropped_speakers
            line += (f"; dropped {len(names)} speaker(s) with no usable file"
                     f" ({', '.join(names[:3])}"
                     f"{', ...' if len(names) > 3 else ''})")
        return line + "."

    def _check_split_data(self, split, waveforms, speaker_ids):
        if len(waveforms) != len(speaker_ids):
            raise ValueError(
                f"Split {split!r} has {len(waveforms)} waveforms but "
                f"{len(speaker_ids)} speaker ids. Received: split={split!r}"
            )
        for i, wave in enumerate(waveforms):
            if wave.ndim != 1 or len(wave) < 1:
                raise ValueError(
                    "Every waveform must be 1-D with at least one sample. "
                    f"Received: shape={wave.shape} (split {split!r}, "
                    f"utterance {i})"
                )
        if len(speaker_ids) and (
            speaker_ids.min() < 0 or speaker_ids.max() >= self.num_classes
        ):
            raise ValueError(
                f"Speaker ids must lie in [0, {self.num_classes}). Received: "
                f"speaker_ids in [{speaker_ids.min()}, {speaker_ids.max()}]"
            )

    @property
    def split_names(self):
        return list(self.splits)

    def _check_split(self, split):
        if split not in self.splits:
            raise ValueError(
                f"Dataset {self.name!r} has splits {sorted(self.splits)}. "
                f"Received: split={split!r}"
            )

    def num_examples(self, split):
        """Number of utterances of a split."""
        self._check_split(split)
        return len(self.splits[split][1])

    def chunks(self, split, hop=None, max_per_utterance=None):
        """Fixed, deterministic chunks of every utterance of a split.

        Args:
            split: str, e.g. `"train"` or `"test"`.
            hop: int or None, samples between chunk starts (None:
                `chunk_length`, non-overlapping).
            max_per_utterance: int or None, the first chunks of each
                utterance kept (None: all).

        Returns:
            `(x, labels, utterance_index)`: float32 `[N, chunk_length, 1]`,
            int64 `[N]` speaker ids, int64 `[N]` index of each chunk's
            utterance in the split (to average per utterance).

        Raises:
            ValueError: for an unknown split or a hop or maximum below 1.
        """
        self._check_split(split)
        hop = self.chunk_length if hop is None else int(hop)
        if hop < 1:
            raise ValueError(f"hop must be at least 1. Received: hop={hop}")
        if max_per_utterance is not None and max_per_utterance < 1:
            raise ValueError(
                "max_per_utterance must be at least 1 or None. Received: "
                f"max_per_utterance={max_per_utterance}"
            )
        waveforms, speaker_ids = self.splits[split]
        size = self.chunk_length
        pieces, labels, owners = [], [], []
        for u, wave in enumerate(waveforms):
            starts = np.arange(0, len(wave) - size + 1, hop)
            if max_per_utterance is not None:
                starts = starts[:max_per_utterance]
            pieces.append(wave[starts[:, None] + np.arange(size)])
            labels.append(np.full(len(starts), speaker_ids[u], np.int64))
            owners.append(np.full(len(starts), u, np.int64))
        if not pieces:
            return (np.zeros((0, size, 1), np.float32),
                    np.zeros(0, np.int64), np.zeros(0, np.int64))
        x = np.concatenate(pieces).astype(np.float32)[..., None]
        return x, np.concatenate(labels), np.concatenate(owners)

    def training_pairs(self, batch_size, seed=None, steps_per_epoch=None,
                       labels=None):
        """Same-speaker chunk pairs of the train split, without TensorFlow.

        Args:
            batch_size: int, at least 2.
            seed: int or None; the same seed serves the same batches.
            steps_per_epoch: int or None (None: about one pass over the
                training audio, at least 1).
            labels: int64 `[N]` per training utterance, or None; given,
                batches are `(pairs, labels)`, each pair labelled by its
                first chunk's utterance (-1: the online probe does not
                learn from it).

        Returns:
            A `SpeakerPairs` (`keras.utils.PyDataset`) of float32
            `[batch_size, 2, chunk_length, 1]` batches.
        """
        waveforms, speaker_ids = self.splits["train"]
        return SpeakerPairs(waveforms, speaker_ids, self.chunk_length,
                            batch_size, seed=seed,
                            steps_per_epoch=steps_per_epoch, labels=labels)

    def middle_chunks(self, split, utterances):
        """The middle chunk of each of some utterances of a split.

        Args:
            split: str.
            utterances: int array, indices into the split.

        Returns:
            float32 `[len(utterances), chunk_length, 1]`.
        """
        self._check_split(split)
        waveforms = self.splits[split][0]
        size = self.chunk_length
        out = np.empty((len(utterances), size, 1), np.float32)
        for i, u in enumerate(utterances):
            wave = waveforms[u]
            start = (len(wave) - size) // 2
            out[i, :, 0] = wave[start:start + size]
        return out

    def tf_training_pairs(self, batch_size, seed=None, labels=None):
        """The `training_pairs` sampling as an endless `tf.data.Dataset`.

        All training audio is kept in one flat float32 tensor (a constant
        of the pipeline's graph, so it must stay under 2 GB) with each
        utterance's start, length and speaker; chunks are drawn with
        stateless random ops from `seed` and gathered.

        Args:
            batch_size: int, at least 2.
            seed: int or None; the same seed serves the same batches.
            labels: as `training_pairs`.

        Returns:
            A `tf.data.Dataset` of float32 `[batch_size, 2, chunk_length,
            1]` batches (with labels: `(pairs, labels)`), repeated
            forever, prefetched.
        """
        import tensorflow as tf

        check_batch_size(batch_size)
        waveforms, speaker_ids = self.splits["train"]
        check_labels(labels, len(speaker_ids))
        plan = SpeakerIndex(waveforms, speaker_ids)
        seed = base_seed(seed)
        size = self.chunk_length
        flat = tf.constant(np.concatenate(waveforms).astype(np.float32))
        starts = tf.constant(plan.starts)
        lengths = tf.constant(plan.lengths)
        by_speaker = tf.constant(plan.by_speaker)  # utterances, speaker-major
        first = tf.constant(plan.first)
        count = tf.constant(plan.count)
        num_speakers = len(plan.speakers)
        replace = batch_size > num_speakers
        if labels is not None:
            utterance_labels = tf.constant(np.asarray(labels, np.int64))

        def speakers_of_step(step):
            key = tf.stack([tf.constant(seed, tf.int64), step])
            if replace:
                return tf.random.stateless_uniform(
                    [batch_size], key, 0, num_speakers, tf.int64)
            noise = tf.random.stateless_uniform([num_speakers], key)
            return tf.argsort(noise)[:batch_size]

        def pair(index, speaker):
            key = tf.stack([tf.constant(seed, tf.int64), -1 - index])
            r = tf.random.stateless_uniform([4], key, dtype=tf.float64)
            n = tf.cast(count[speaker], tf.float64)
            k1 = tf.cast(tf.floor(r[0] * n), tf.int64)
            k1 = tf.minimum(k1, count[speaker] - 1)
            others = tf.maximum(n - 1.0, 1.0)
            k2 = (k1 + 1 + tf.cast(tf.floor(r[1] * others), tf.int64)) % (
                tf.cast(count[speaker], tf.int64))
            utts = tf.gather(by_speaker, first[speaker] + tf.stack([k1, k2]))
            room = tf.cast(tf.gather(lengths, utts) - size + 1, tf.float64)
            offsets = tf.cast(tf.floor(r[2:] * room), tf.int64)
            offsets = tf.minimum(offsets, tf.cast(room, tf.int64) - 1)
            begin = tf.gather(starts, utts) + offsets
            idx = begin[:, None] + tf.range(size, dtype=tf.int64)[None]
            chunks = tf.gather(flat, idx)[..., None]
            if labels is None:
                return chunks
            return chunks, tf.gather(utterance_labels, utts[0])

        data = tf.data.Dataset.counter(dtype=tf.int64).map(speakers_of_step)
        data = data.unbatch().enumerate().map(
            pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return data.batch(batch_size, drop_remainder=True).prefetch(
            tf.data.AUTOTUNE)


def _duration(seconds):
    """`seconds` as `12.3 s` or `4.5 min`."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"
