"""Speech datasets for speaker representations (the audio modality).

An `AudioDataset` holds its utterances in memory as float32 mono waveforms
in [-1, 1] at 16 kHz, one array per utterance, labelled by speaker. The
encoder sees fixed-length chunks `[chunk_length, 1]`:

- `chunks(split)`: every chunk of every utterance, in order (evaluation);
- `training_pairs(batch_size)`: batches `[B, 2, chunk_length, 1]` whose
  element i holds two random chunks of one speaker (positives), the other
  elements other speakers (negatives), served by a numpy-only
  `keras.utils.PyDataset` (no TensorFlow needed);
- `tf_training_pairs(batch_size)`: the same sampling as a `tf.data`
  pipeline in graph ops.

Waveform values are left as decoded (no normalization here).
"""

import math

import keras
import numpy as np

SAMPLE_RATE = 16000


def _check_batch_size(batch_size):
    if batch_size < 2:
        raise ValueError(
            "batch_size must be at least 2 (negatives are the other elements "
            f"of the batch). Received: batch_size={batch_size}"
        )


def _base_seed(seed):
    """`seed`, or a fresh random one when None."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % 2**31)
    return int(seed)


class AudioDataset:
    """Utterances labelled by speaker, held in memory.

    Args:
        name: str, the `--dataset` name.
        splits: dict of split name to `(waveforms, speaker_ids)`:
            `waveforms` a list of float32 1-D numpy arrays (each at least
            `chunk_length` samples), `speaker_ids` int64 `[N]` indexing
            `class_names`.
        class_names: list of str, the speaker names, sorted.
        chunk_length: int, samples per chunk the encoder sees.
        sample_rate: int, samples per second of every waveform.
        skipped: dict of reason to list of paths left out when loading.
        default_epochs: int, epochs `dim-keras train` runs by default.

    Raises:
        ValueError: for a waveform shorter than `chunk_length` or a speaker
            id outside `class_names`.
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
    ):
        self.name = name
        self.sample_rate = int(sample_rate)
        self.chunk_length = int(chunk_length)
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.skipped = dict(skipped or {})
        self.default_encoder = "wave1d"
        self.default_epochs = default_epochs
        self.default_settings = None
        self.splits = {}
        for split, (waveforms, speaker_ids) in splits.items():
            waveforms = [np.asarray(w, dtype=np.float32) for w in waveforms]
            speaker_ids = np.asarray(speaker_ids, dtype=np.int64)
            self._check_split_data(split, waveforms, speaker_ids)
            self.splits[split] = (waveforms, speaker_ids)

    def _check_split_data(self, split, waveforms, speaker_ids):
        if len(waveforms) != len(speaker_ids):
            raise ValueError(
                f"Split {split!r} has {len(waveforms)} waveforms but "
                f"{len(speaker_ids)} speaker ids. Received: split={split!r}"
            )
        for i, wave in enumerate(waveforms):
            if wave.ndim != 1 or len(wave) < self.chunk_length:
                raise ValueError(
                    "Every waveform must be 1-D with at least chunk_length="
                    f"{self.chunk_length} samples. Received: "
                    f"shape={wave.shape} (split {split!r}, utterance {i})"
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

    def training_pairs(self, batch_size, seed=None, steps_per_epoch=None):
        """Same-speaker chunk pairs of the train split, without TensorFlow.

        Args:
            batch_size: int, at least 2.
            seed: int or None; the same seed serves the same batches.
            steps_per_epoch: int or None (None: about one pass over the
                training audio, at least 1).

        Returns:
            A `SpeakerPairs` (`keras.utils.PyDataset`) of float32
            `[batch_size, 2, chunk_length, 1]` batches.
        """
        waveforms, speaker_ids = self.splits["train"]
        return SpeakerPairs(waveforms, speaker_ids, self.chunk_length,
                            batch_size, seed=seed,
                            steps_per_epoch=steps_per_epoch)

    def tf_training_pairs(self, batch_size, seed=None):
        """The `training_pairs` sampling as an endless `tf.data.Dataset`.

        All training audio is kept in one flat float32 tensor (a constant
        of the pipeline's graph, so it must stay under 2 GB) with each
        utterance's start, length and speaker; chunks are drawn with
        stateless random ops from `seed` and gathered.

        Args:
            batch_size: int, at least 2.
            seed: int or None; the same seed serves the same batches.

        Returns:
            A `tf.data.Dataset` of float32 `[batch_size, 2, chunk_length,
            1]` batches, repeated forever, prefetched.
        """
        import tensorflow as tf

        _check_batch_size(batch_size)
        waveforms, speaker_ids = self.splits["train"]
        plan = _SpeakerIndex(waveforms, speaker_ids)
        seed = _base_seed(seed)
        size = self.chunk_length
        flat = tf.constant(np.concatenate(waveforms).astype(np.float32))
        starts = tf.constant(plan.starts)
        lengths = tf.constant(plan.lengths)
        by_speaker = tf.constant(plan.by_speaker)  # utterances, speaker-major
        first = tf.constant(plan.first)
        count = tf.constant(plan.count)
        num_speakers = len(plan.speakers)
        replace = batch_size > num_speakers

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
            return tf.gather(flat, idx)[..., None]

        data = tf.data.Dataset.counter(dtype=tf.int64).map(speakers_of_step)
        data = data.unbatch().enumerate().map(
            pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return data.batch(batch_size, drop_remainder=True).prefetch(
            tf.data.AUTOTUNE)


class _SpeakerIndex:
    """The utterances of each speaker, as flat int64 arrays.

    Attributes:
        speakers: speaker ids with at least one utterance, sorted.
        by_speaker: utterance indices grouped by speaker (in `speakers`
            order); speaker k's are `by_speaker[first[k]:][:count[k]]`.
        starts, lengths: each utterance's start in the concatenated audio
            and its length.
    """

    def __init__(self, waveforms, speaker_ids):
        speaker_ids = np.asarray(speaker_ids, dtype=np.int64)
        if len(np.unique(speaker_ids)) < 2:
            raise ValueError(
                "Training pairs need at least 2 speakers in the train split. "
                f"Received: speakers={np.unique(speaker_ids).tolist()}"
            )
        self.lengths = np.array([len(w) for w in waveforms], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.starts = self.starts.astype(np.int64)
        order = np.argsort(speaker_ids, kind="stable")
        self.speakers, self.first, self.count = np.unique(
            speaker_ids[order], return_index=True, return_counts=True)
        self.by_speaker = order.astype(np.int64)
        self.first = self.first.astype(np.int64)
        self.count = self.count.astype(np.int64)


class SpeakerPairs(keras.utils.PyDataset):
    """Batches of same-speaker chunk pairs, drawn afresh every epoch.

    Element i of a batch holds two chunks at random offsets of one speaker,
    from two different utterances when the speaker has more than one. The
    speakers of a batch are distinct when `batch_size` is at most the
    number of speakers (the other elements are the negatives), else drawn
    with replacement. Batch `index` of epoch `e` depends on `(seed, e,
    index)` only, so batches may be served in any order, by any worker.

    Args:
        waveforms: list of float32 1-D arrays, each at least
            `chunk_length` samples.
        speaker_ids: int64 `[N]`, at least 2 distinct.
        chunk_length: int, samples per chunk.
        batch_size: int, at least 2.
        seed: int or None.
        steps_per_epoch: int or None (None: `ceil(total samples /
            (batch_size * chunk_length))`, at least 1).
    """

    def __init__(self, waveforms, speaker_ids, chunk_length, batch_size,
                 seed=None, steps_per_epoch=None):
        super().__init__()
        _check_batch_size(batch_size)
        if steps_per_epoch is not None and steps_per_epoch < 1:
            raise ValueError(
                "steps_per_epoch must be at least 1 or None. Received: "
                f"steps_per_epoch={steps_per_epoch}"
            )
        self.waveforms = waveforms
        self.index = _SpeakerIndex(waveforms, speaker_ids)
        self.chunk_length = int(chunk_length)
        self.batch_size = int(batch_size)
        self.seed = _base_seed(seed)
        self.epoch = 0
        total = int(self.index.lengths.sum())
        self.steps = steps_per_epoch or max(
            1, math.ceil(total / (self.batch_size * self.chunk_length)))

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(
                f"Batch index out of range [0, {len(self)}). "
                f"Received: index={index}"
            )
        rng = np.random.default_rng([self.seed, self.epoch, index])
        plan = self.index
        speakers = rng.choice(len(plan.speakers), self.batch_size,
                              replace=self.batch_size > len(plan.speakers))
        size = self.chunk_length
        out = np.empty((self.batch_size, 2, size, 1), np.float32)
        for i, k in enumerate(speakers):
            utts = plan.by_speaker[plan.first[k]:][:plan.count[k]]
            if len(utts) > 1:
                pair = rng.choice(utts, 2, replace=False)
            else:
                pair = (utts[0], utts[0])
            for j, u in enumerate(pair):
                wave = self.waveforms[u]
                start = rng.integers(0, len(wave) - size + 1)
                out[i, j, :, 0] = wave[start:start + size]
        return out

    def on_epoch_end(self):
        self.epoch += 1
