"""Batches of same-speaker chunk pairs (`dim_keras.data.audio`), in numpy.

`SpeakerPairs` serves `AudioDataset.training_pairs` as a
`keras.utils.PyDataset` (no TensorFlow needed); `SpeakerIndex` is the
utterances of each speaker, which `AudioDataset.tf_training_pairs` reads too.
"""

import math

import keras
import numpy as np


def check_batch_size(batch_size):
    if batch_size < 2:
        raise ValueError(
            "batch_size must be at least 2 (negatives are the other elements "
            f"of the batch). Received: batch_size={batch_size}"
        )


def base_seed(seed):
    """`seed`, or a fresh random one when None."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % 2**31)
    return int(seed)


def check_labels(labels, count):
    if labels is not None and len(labels) != count:
        raise ValueError(
            "labels must give one label per training utterance. "
            f"Received: {len(labels)} labels for {count} utterances"
        )


class SpeakerIndex:
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
        labels: int64 `[N]` or None: given, batches are `(pairs,
            labels)`, each pair labelled by its first chunk's utterance.
    """

    def __init__(self, waveforms, speaker_ids, chunk_length, batch_size,
                 seed=None, steps_per_epoch=None, labels=None):
        super().__init__()
        check_batch_size(batch_size)
        check_labels(labels, len(speaker_ids))
        self.labels = None if labels is None else np.asarray(labels,
                                                             np.int64)
        if steps_per_epoch is not None and steps_per_epoch < 1:
            raise ValueError(
                "steps_per_epoch must be at least 1 or None. Received: "
                f"steps_per_epoch={steps_per_epoch}"
            )
        self.waveforms = waveforms
        self.index = SpeakerIndex(waveforms, speaker_ids)
        self.chunk_length = int(chunk_length)
        self.batch_size = int(batch_size)
        self.seed = base_seed(seed)
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
        firsts = np.empty(self.batch_size, np.int64)
        for i, k in enumerate(speakers):
            utts = plan.by_speaker[plan.first[k]:][:plan.count[k]]
            if len(utts) > 1:
                pair = rng.choice(utts, 2, replace=False)
            else:
                pair = (utts[0], utts[0])
            firsts[i] = pair[0]
            for j, u in enumerate(pair):
                wave = self.waveforms[u]
                start = rng.integers(0, len(wave) - size + 1)
                out[i, j, :, 0] = wave[start:start + size]
        if self.labels is not None:
            return out, self.labels[firsts]
        return out

    def on_epoch_end(self):
        self.epoch += 1
