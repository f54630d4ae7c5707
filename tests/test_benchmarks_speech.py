"""The speech benchmark scripts: grammar, speakers, split, a tiny corpus."""

import json
import os
import shutil

import numpy as np
import pytest

from benchmarks import make_speech
from benchmarks import speech_baseline


def test_sentences_are_seeded_and_varied():
    first = [make_speech.sentence(np.random.default_rng(7))
             for _ in range(3)]
    assert len(set(first)) == 1  # One seed, one sentence.
    rng = np.random.default_rng(0)
    sentences = [make_speech.sentence(rng) for _ in range(200)]
    assert len(set(sentences)) == 200
    assert all(s[0].isupper() and s[-1] in ".?" and "{" not in s
               for s in sentences)


def test_plurals():
    assert [make_speech.plural(w) for w in
            ("bus", "box", "city", "day", "knife", "tree")] == [
        "buses", "boxes", "cities", "days", "knives", "trees"]


def test_speakers_distinct_or_sharing_base_voices():
    speakers = make_speech.draw_speakers(24, seed=0)
    pairs = {(s["voice"], s["variant"]) for s in speakers}
    assert len(pairs) == 24
    assert all(25 <= s["pitch"] <= 75 and 130 <= s["speed"] <= 190
               for s in speakers)
    assert speakers == make_speech.draw_speakers(24, seed=0)
    shared = make_speech.draw_speakers(12, seed=0, base_voices=4)
    assert len({(s["voice"], s["variant"]) for s in shared}) == 4
    with pytest.raises(ValueError, match="base_voices=0"):
        make_speech.draw_speakers(4, seed=0, base_voices=0)


def test_split_holds_out_utterances_and_cuts_whole_chunks():
    # 2 speakers x 5 utterances of 2.5 s: 20% held out is 1 utterance each;
    # each utterance gives 2 whole 1 s chunks (the last 0.5 s is dropped).
    corpus = {name: [np.full(40000, k, "float32") for k in range(5)]
              for name in ("a", "b")}
    train_x, train_y, test_x, test_y, counts = (
        speech_baseline.split_and_chunk(corpus, 0.2, 1.0, seed=0))
    assert counts == {"train_utterances": 8, "test_utterances": 2}
    assert train_x.shape == (16, 16000) and test_x.shape == (4, 16000)
    assert sorted(test_y.tolist()) == [0, 0, 1, 1]
    # No utterance (marked by its constant value) on both sides.
    for label in (0, 1):
        held = set(test_x[test_y == label, 0].tolist())
        assert not held & set(train_x[train_y == label, 0].tolist())


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng is not installed")
def test_tiny_corpus_is_16_khz_speech(tmp_path):
    import soundfile

    out = str(tmp_path / "corpus")
    make_speech.main(["--out", out, "--speakers", "2", "--utterances", "2",
                      "--seed", "3", "--jobs", "1"])
    assert sorted(os.listdir(out)) == ["corpus.json", "spk00", "spk01"]
    for speaker in ("spk00", "spk01"):
        assert sorted(os.listdir(os.path.join(out, speaker))) == [
            "utt000.wav", "utt001.wav"]
        info = soundfile.info(os.path.join(out, speaker, "utt000.wav"))
        assert info.samplerate == 16000 and info.channels == 1
        assert info.subtype == "PCM_16" and 2.0 <= info.duration <= 5.0
        samples, _ = soundfile.read(os.path.join(out, speaker, "utt001.wav"))
        assert np.sqrt(np.mean(samples ** 2)) > 0.01  # Not silent.
    with open(os.path.join(out, "corpus.json")) as f:
        corpus = json.load(f)
    texts = [u["text"] for u in corpus["utterances"]]
    assert len(texts) == 4 == len(set(texts))


def test_words_and_clips_for_short_utterance_corpora():
    rng = np.random.default_rng(0)
    phrases = [make_speech.words(rng, 2) for _ in range(50)]
    assert all(len(p.split()) == 2 for p in phrases)
    assert len(set(phrases)) > 40
    samples = np.arange(16000 * 3, dtype="float32")
    clips = make_speech.cut_into_clips(samples, 16000, 0.3, 0.6,
                                       np.random.default_rng(1))
    lengths = [len(c) / 16000 for c in clips]
    assert all(0.3 <= x <= 0.6 + 1e-9 for x in lengths)
    assert len(clips) >= 5
    # Consecutive: each clip starts where the last one ended.
    starts = [int(c[0]) for c in clips]
    assert starts == [0] + list(np.cumsum([len(c) for c in clips])[:-1])
    assert 3.0 - sum(lengths) < 0.3


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng is not installed")
def test_tiny_corpus_of_8_khz_clips_and_of_words(tmp_path):
    import soundfile

    out = str(tmp_path / "clips")
    make_speech.main(["--out", out, "--speakers", "2", "--utterances", "1",
                      "--seed", "3", "--jobs", "1", "--rate", "8000",
                      "--clip-seconds", "0.3", "0.6"])
    names = sorted(os.listdir(os.path.join(out, "spk00")))
    assert len(names) >= 3 and names[0] == "utt000-c00.wav"
    for name in names:
        info = soundfile.info(os.path.join(out, "spk00", name))
        assert info.samplerate == 8000 and 0.3 <= info.duration <= 0.6
    words = str(tmp_path / "words")
    make_speech.main(["--out", words, "--speakers", "2", "--utterances", "3",
                      "--seed", "3", "--jobs", "1", "--words", "1",
                      "--min-seconds", "0.2", "--max-seconds", "1.5"])
    with open(os.path.join(words, "corpus.json")) as f:
        corpus = json.load(f)
    assert all(len(u["text"].split()) == 1 for u in corpus["utterances"])
    assert len(corpus["utterances"]) == 6
