"""A small multi-speaker speech corpus, synthesized with espeak-ng.

No speech corpus can be downloaded where dim-keras is measured, so this
script makes one: every speaker is a fixed espeak-ng setting, every
utterance a different sentence from a seeded grammar over a few hundred
common English words. The result is real (synthetic) speech with known
speakers, for measuring speaker representations; it is not human speech,
and a speaker here is a synthesizer setting, not a person.

Requirements: the espeak-ng program (Debian/Ubuntu:
`apt-get install -y espeak-ng`; version 1.51 was used), and the Python
packages soundfile and scipy (pinned in requirements.txt).

Speakers. Each speaker is one (voice, variant, pitch, speed), drawn with
`--seed`:

- voice: an espeak-ng English accent (`espeak-ng --voices=en`), those of
  `VOICES` that are installed: en-us, en-us-nyc, en-gb, en-gb-x-rp,
  en-gb-scotland, en-gb-x-gbclan (Lancaster), en-gb-x-gbcwmd (West
  Midlands), en-029 (Caribbean);
- variant: a voice variant (`espeak-ng --voices=variant`) from `VARIANTS`:
  male 1-8, female 1-5, croak, and the Klatt synthesizers klatt, klatt2,
  klatt3 (whispers and robots left out);
- base pitch `-p` drawn in `--pitch-range` (espeak's 0-99 scale, default
  25-75) and speed `-s` in `--speed-range` (words per minute, default
  130-190).

With `--base-voices K`, only K (voice, variant) pairs are drawn and the
speakers share them in turn, told apart by pitch and speed alone (harder
to tell apart); otherwise every speaker has its own pair. With
`--pitch-jitter` and `--speed-jitter`, each utterance moves its speaker's
pitch and speed by a uniform random amount up to those (harder still), and
`--gain-jitter-db` scales each utterance's loudness by up to that many dB.

Utterances. Each is a sentence from `sentence()`: one of a dozen templates
filled from the word lists below (names, nouns, verbs, adjectives, ...),
different from every other sentence of the corpus, spoken at the speaker's
settings, its leading and trailing silence trimmed (50 ms kept), and
accepted when it lasts `--min-seconds` to `--max-seconds` (2-5 s; else
another sentence is drawn). espeak-ng writes 22.05 kHz; the speech is
resampled to 16 kHz (`scipy.signal.resample_poly`, 320/441) and written as
mono 16-bit PCM WAV:

    OUT/spk00/utt000.wav ... OUT/spk23/utt039.wav
    OUT/corpus.json   every speaker's settings, every utterance's text

Short clips, as corpora of spoken words are (a few speakers, thousands of
clips under a second, often 8 kHz): `--words N` makes each utterance N
words drawn from the word lists instead of a sentence (words may repeat
across utterances, as in spoken-word corpora), `--rate R` writes the files
at R Hz (e.g. 8000), and `--clip-seconds LOW HIGH` cuts every accepted
utterance into consecutive clips lasting LOW-HIGH s each (drawn uniformly;
a last piece shorter than LOW is left out), written as
`uttNNN-cKK.wav`: with the arguments of a corpus of sentences, its
short-utterance version (the same speech, cut).

Usage:

    python benchmarks/make_speech.py --out /tmp/speech-corpus \\
        [--speakers 24] [--utterances 40] [--seed 0] [--jobs 2]
    # 6 speakers, 3,000 spoken words of 0.3-1 s at 8 kHz:
    python benchmarks/make_speech.py --out /tmp/words --speakers 6 \\
        --utterances 500 --words 1 --min-seconds 0.3 --max-seconds 1 \\
        --rate 8000
    # the default corpus cut into clips of 0.3-0.6 s:
    python benchmarks/make_speech.py --out /tmp/speech-clips \\
        --clip-seconds 0.3 0.6

The same arguments and espeak-ng version give the same files.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

SAMPLE_RATE = 16000
ESPEAK_RATE = 22050

VOICES = ("en-us", "en-us-nyc", "en-gb", "en-gb-x-rp", "en-gb-scotland",
          "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
            "f1", "f2", "f3", "f4", "f5", "croak", "klatt", "klatt2",
            "klatt3")

# About 500 common English words, by part of speech.
NAMES = """Anna Ben Carla David Emma Frank Grace Henry Irene Jack Kate Leo
Maria Nick Olivia Peter Rachel Sam Tom Uma Victor Wendy Alice Bob Clara Dan
Ellen George Helen Ian Julia Mark Nora Paul Rose Steve Laura Martin""".split()
NOUNS = """house garden river table window door car train bus city village
school teacher student doctor friend neighbour child family dog cat horse
bird fish tree flower forest mountain hill field road street bridge market
shop book letter paper story song picture camera phone computer kitchen
bread cheese apple orange coffee tea water cake dinner breakfast lunch
morning evening night week summer winter spring autumn weather rain snow
wind sun moon star sea beach island boat ship plane ticket station office
meeting question answer problem idea plan game match team player ball
hat coat shoe bag box key clock lamp chair bed room floor wall roof
farmer baker driver singer painter writer nurse pilot captain king queen
village lake valley park church library museum hospital hotel restaurant
bottle glass plate spoon knife basket blanket pillow mirror candle""".split()
ADJECTIVES = """big small old new young long short tall little large warm cold
hot cool quiet loud bright dark happy sad busy lazy quick slow early late
clean dirty heavy light empty full rich poor kind friendly strange simple
famous careful gentle brave clever calm green red blue yellow white black
brown golden silver wooden broken tired hungry lucky lovely pretty
wonderful terrible difficult easy important useful ordinary beautiful
narrow wide deep soft hard sweet fresh""".split()
# (base, past) of transitive verbs.
VERBS = [tuple(pair.split("/")) for pair in """see/saw find/found take/took
bring/brought buy/bought sell/sold make/made paint/painted open/opened
close/closed carry/carried watch/watched clean/cleaned fix/fixed
visit/visited follow/followed call/called meet/met leave/left need/needed
want/wanted like/liked love/loved read/read write/wrote draw/drew
catch/caught throw/threw hold/held keep/kept move/moved push/pushed
pull/pulled wash/washed cook/cooked eat/ate drink/drank hear/heard
build/built break/broke lose/lost send/sent show/showed teach/taught
help/helped ask/asked answer/answered remember/remembered forget/forgot
choose/chose change/changed count/counted check/checked order/ordered
borrow/borrowed share/shared""".split()]
# (base, past) of intransitive verbs.
INTRANSITIVE = [tuple(pair.split("/")) for pair in """arrive/arrived
leave/left sleep/slept wait/waited laugh/laughed smile/smiled run/ran
walk/walked swim/swam sing/sang dance/danced stop/stopped begin/began
return/returned listen/listened travel/travelled work/worked play/played
rest/rested""".split()]
ADVERBS = """quickly slowly quietly loudly carefully happily suddenly
gently early late often never always sometimes again together almost
really rather very""".split()
DEGREE = "very rather quite so too really".split()
PREPOSITIONS = """in on under near behind beside across through into over
from with without after before around""".split()
TIMES = [time.replace("_", " ") for time in """today yesterday tomorrow
tonight this_morning last_night next_week every_day on_monday on_friday
at_noon in_the_evening after_lunch before_dinner last_summer
next_spring""".split()]
DETERMINERS = "the a my your his her our their this that every one".split()
PRONOUNS = "I you he she we they".split()
NUMBERS = "two three four five six seven eight nine ten twelve".split()

TEMPLATES = (
    "{Det} {adj} {noun} {past} {det} {noun} {prep} {det} {noun}.",
    "{Name} {past} {det} {adj} {noun} {time}.",
    "{Pron} will {verb} {det} {noun} {prep} {det} {adj} {noun}.",
    "Did {name} {verb} {det} {noun} {prep} {det} {noun} {time}?",
    "{Det} {noun} {prep} {det} {noun} was {degree} {adj} {time}.",
    "When {det} {noun} {ipast}, {name} {past} {det} {adj} {noun}.",
    "{Name} and {name} {ipast} {adverb} {prep} {det} {adj} {noun}.",
    "{Pron} said that {det} {noun} {past} {number} {adj} {nouns}.",
    "{Time}, {det} {adj} {noun} {ipast} {prep} {det} {noun}.",
    "Please {verb} {det} {adj} {noun} before {name} {iverbs}.",
    "{Name} {adverb} {past} {number} {nouns} {prep} {det} {noun}.",
    "Why did {det} {adj} {noun} {iverb} {prep} {det} {noun} {time}?",
)
IRREGULAR_PLURALS = {"child": "children", "knife": "knives", "fish": "fish",
                     "shelf": "shelves"}


def plural(noun):
    """The plural of a noun of `NOUNS`."""
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def sentence(rng):
    """One sentence from the grammar, drawn with `rng`.

    Every `{field}` of a template gets its own draw (two `{noun}`s are
    usually different nouns); a capitalized field starts the sentence.

    Args:
        rng: a `numpy.random.Generator`.

    Returns:
        str, e.g. "Grace painted the golden boat near a market."
    """
    def pick(words):
        return words[int(rng.integers(len(words)))]

    draws = {
        "det": lambda: pick(DETERMINERS),
        "adj": lambda: pick(ADJECTIVES),
        "noun": lambda: pick(NOUNS),
        "nouns": lambda: plural(pick(NOUNS)),
        "past": lambda: pick(VERBS)[1],
        "verb": lambda: pick(VERBS)[0],
        "ipast": lambda: pick(INTRANSITIVE)[1],
        "iverb": lambda: pick(INTRANSITIVE)[0],
        "iverbs": lambda: pick(INTRANSITIVE)[0] + "s",
        "prep": lambda: pick(PREPOSITIONS),
        "time": lambda: pick(TIMES),
        "name": lambda: pick(NAMES),
        "pron": lambda: pick(PRONOUNS),
        "degree": lambda: pick(DEGREE),
        "adverb": lambda: pick(ADVERBS),
        "number": lambda: pick(NUMBERS),
    }
    parts = pick(TEMPLATES).split("{")
    text = parts[0]
    for part in parts[1:]:
        key, rest = part.split("}", 1)
        word = draws[key.lower()]()
        text += (word[0].upper() + word[1:] if key[0].isupper() else word)
        text += rest
    return text


def words(rng, count):
    """`count` words drawn with `rng` from every word list (a phrase, not
    a sentence: the utterances of a spoken-word corpus).

    Args:
        rng: a `numpy.random.Generator`.
        count: int, at least 1.

    Returns:
        str, e.g. "garden".
    """
    vocabulary = (NAMES + NOUNS + ADJECTIVES + [v[0] for v in VERBS]
                  + [v[0] for v in INTRANSITIVE] + ADVERBS)
    return " ".join(vocabulary[int(rng.integers(len(vocabulary)))]
                    for _ in range(count))


def cut_into_clips(samples, rate, low, high, rng):
    """Consecutive clips of `samples`, each lasting `low`-`high` s.

    Args:
        samples: 1-D array.
        rate: int, samples per second.
        low, high: floats, the clip lengths in seconds (drawn uniformly).
        rng: a `numpy.random.Generator`.

    Returns:
        list of 1-D arrays; a last piece shorter than `low` is left out.
    """
    clips, start = [], 0
    while True:
        length = int(round(rng.uniform(low, high) * rate))
        if start + length > len(samples):
            if len(samples) - start >= low * rate:
                clips.append(samples[start:])
            return clips
        clips.append(samples[start:start + length])
        start += length


def espeak_voices(program="espeak-ng"):
    """Names of the installed espeak-ng voices and variants."""
    names = set()
    for kind in ("en", "variant"):
        listing = subprocess.run([program, f"--voices={kind}"], check=True,
                                 capture_output=True, text=True).stdout
        for line in listing.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 5:
                names.add(fields[1])  # Language of a voice.
                names.add(os.path.basename(fields[4]))  # File of a variant.
    return names


def draw_speakers(count, seed, base_voices=None, pitch_range=(25, 75),
                  speed_range=(130, 190), installed=None):
    """The speakers' fixed espeak-ng settings.

    Args:
        count: int, speakers.
        seed: int.
        base_voices: int or None, distinct (voice, variant) pairs shared in
            turn by the speakers (None: one pair per speaker).
        pitch_range: (low, high) of the base pitch, inclusive.
        speed_range: (low, high) of the speed in words per minute.
        installed: set of installed voice and variant names, or None to
            take `VOICES` and `VARIANTS` as they are.

    Returns:
        List of dicts with `name`, `voice`, `variant`, `pitch`, `speed`.
    """
    voices = [v for v in VOICES if installed is None or v in installed]
    variants = [v for v in VARIANTS if installed is None or v in installed]
    pairs = [(v, w) for v in voices for w in variants]
    bases = count if base_voices is None else base_voices
    if not 1 <= bases <= len(pairs):
        raise ValueError(
            f"Between 1 and {len(pairs)} (voice, variant) pairs can be "
            f"drawn. Received: speakers={count}, base_voices={base_voices}")
    rng = np.random.default_rng(seed)
    chosen = [pairs[k] for k in rng.choice(len(pairs), bases, replace=False)]
    speakers = []
    for k in range(count):
        voice, variant = chosen[k % bases]
        speakers.append({
            "name": f"spk{k:02d}",
            "voice": voice,
            "variant": variant,
            "pitch": int(rng.integers(pitch_range[0], pitch_range[1] + 1)),
            "speed": int(rng.integers(speed_range[0], speed_range[1] + 1)),
        })
    return speakers


def trim_silence(samples, rate, threshold=0.01, margin_seconds=0.05):
    """Drops leading and trailing samples below `threshold` of the peak."""
    loud = np.flatnonzero(np.abs(samples) > threshold * np.abs(samples).max())
    if len(loud) == 0:
        return samples[:0]
    margin = int(margin_seconds * rate)
    return samples[max(0, loud[0] - margin):loud[-1] + margin + 1]


def synthesize(text, voice, variant, pitch, speed, workdir,
               program="espeak-ng"):
    """espeak-ng's speech of `text`, trimmed, at 16 kHz (float32)."""
    import soundfile
    from scipy.signal import resample_poly

    handle, path = tempfile.mkstemp(suffix=".wav", dir=workdir)
    os.close(handle)
    try:
        subprocess.run(
            [program, "-v", f"{voice}+{variant}", "-p", str(pitch),
             "-s", str(speed), "-w", path, text],
            check=True, capture_output=True)
        samples, rate = soundfile.read(path, dtype="float32")
    finally:
        os.remove(path)
    if rate != ESPEAK_RATE:
        raise RuntimeError(
            f"espeak-ng wrote {rate} Hz, not {ESPEAK_RATE} Hz. "
            f"Received: voice={voice}+{variant}")
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    samples = trim_silence(samples, rate)
    return resample_poly(samples, 320, 441).astype("float32")


def draw_utterances(speakers, args, tries=4):
    """Each speaker's candidate utterances: text, pitch, speed and gain.

    `tries * args.utterances` candidates per speaker, from the speaker's own
    seeded stream, their sentences unique across the corpus (a speaker
    skips the sentences of the speakers before it). They are drawn here,
    in order, so that the corpus does not depend on `--jobs`.

    Returns:
        List (one per speaker) of lists of dicts.
    """
    used = set()
    drawn = []
    for index, speaker in enumerate(speakers):
        rng = np.random.default_rng([args.seed, index])
        candidates = []
        while len(candidates) < tries * args.utterances:
            text = words(rng, args.words) if args.words else sentence(rng)
            pitch = speaker["pitch"] + int(
                rng.integers(-args.pitch_jitter, args.pitch_jitter + 1))
            speed = speaker["speed"] + int(
                rng.integers(-args.speed_jitter, args.speed_jitter + 1))
            gain_db = float(rng.uniform(-args.gain_jitter_db,
                                        args.gain_jitter_db))
            if text in used and not args.words:
                continue
            used.add(text)
            candidates.append({"text": text, "pitch": min(max(pitch, 0), 99),
                               "speed": max(speed, 80),
                               "gain_db": round(gain_db, 2)})
        drawn.append(candidates)
    return drawn


def speak(speaker, candidates, args, workdir):
    """Speaks a speaker's candidates in order until enough are accepted.

    A candidate is accepted when its trimmed speech lasts `--min-seconds`
    to `--max-seconds`; the accepted ones are written as
    `OUT/<speaker>/uttNNN.wav` at `--rate` (with `--clip-seconds`, cut
    into `uttNNN-cKK.wav`).

    Returns:
        `(records of the written utterances, number rejected)`.
    """
    import soundfile

    folder = os.path.join(args.out, speaker["name"])
    os.makedirs(folder, exist_ok=True)
    records = []
    rejected = 0
    accepted = 0
    for candidate in candidates:
        if accepted == args.utterances:
            break
        samples = synthesize(candidate["text"], speaker["voice"],
                             speaker["variant"], candidate["pitch"],
                             candidate["speed"], workdir, args.espeak)
        seconds = len(samples) / SAMPLE_RATE
        if not args.min_seconds <= seconds <= args.max_seconds:
            rejected += 1
            continue
        samples = np.clip(samples * 10 ** (candidate["gain_db"] / 20),
                          -1.0, 1.0)
        if args.rate != SAMPLE_RATE:
            from scipy.signal import resample_poly

            common = np.gcd(args.rate, SAMPLE_RATE)
            samples = resample_poly(samples, args.rate // common,
                                    SAMPLE_RATE // common)
        stem = f"utt{accepted:03d}"
        pieces = [(f"{stem}.wav", samples)]
        if args.clip_seconds:
            rng = np.random.default_rng(
                [args.seed, accepted, *speaker["name"].encode()])
            pieces = [(f"{stem}-c{k:02d}.wav", clip) for k, clip in
                      enumerate(cut_into_clips(samples, args.rate,
                                               *args.clip_seconds, rng))]
        for name, piece in pieces:
            soundfile.write(os.path.join(folder, name), piece, args.rate,
                            subtype="PCM_16")
            records.append({"speaker": speaker["name"], "file": name,
                            "utterance": stem, **candidate,
                            "seconds": round(len(piece) / args.rate, 3)})
        accepted += 1
    if accepted < args.utterances:
        raise RuntimeError(
            f"Only {accepted} of {len(candidates)} sentences lasted "
            f"{args.min_seconds}-{args.max_seconds} s. "
            f"Received: speaker={speaker}")
    return records, rejected


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", required=True,
                        help="folder to write (outside the repository)")
    parser.add_argument("--speakers", type=int, default=24)
    parser.add_argument("--utterances", type=int, default=40,
                        help="utterances per speaker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-voices", type=int, default=None,
                        help="distinct (voice, variant) pairs shared by the "
                        "speakers (default: one per speaker)")
    parser.add_argument("--pitch-range", type=int, nargs=2,
                        default=(25, 75), metavar=("LOW", "HIGH"))
    parser.add_argument("--speed-range", type=int, nargs=2,
                        default=(130, 190), metavar=("LOW", "HIGH"))
    parser.add_argument("--pitch-jitter", type=int, default=0,
                        help="per-utterance pitch change, up to +-this")
    parser.add_argument("--speed-jitter", type=int, default=0,
                        help="per-utterance speed change (wpm), up to +-this")
    parser.add_argument("--gain-jitter-db", type=float, default=0.0,
                        help="per-utterance loudness change, up to +-this")
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=5.0)
    parser.add_argument("--words", type=int, default=0,
                        help="utterances of this many words instead of "
                        "sentences (0: sentences)")
    parser.add_argument("--rate", type=int, default=SAMPLE_RATE,
                        help="sample rate of the files written")
    parser.add_argument("--clip-seconds", type=float, nargs=2, default=None,
                        metavar=("LOW", "HIGH"),
                        help="cut every utterance into clips of LOW-HIGH s")
    parser.add_argument("--jobs", type=int, default=2,
                        help="speakers synthesized at once")
    parser.add_argument("--espeak", default="espeak-ng",
                        help="the espeak-ng program")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if shutil.which(args.espeak) is None:
        sys.exit(f"{args.espeak} not found: install it "
                 "(Debian/Ubuntu: apt-get install -y espeak-ng).")
    start = time.perf_counter()
    version = subprocess.run([args.espeak, "--version"], check=True,
                             capture_output=True, text=True).stdout
    version = version.split("Data at")[0].strip()  # Not the install path.
    speakers = draw_speakers(args.speakers, args.seed, args.base_voices,
                             tuple(args.pitch_range), tuple(args.speed_range),
                             installed=espeak_voices(args.espeak))
    os.makedirs(args.out, exist_ok=True)
    candidates = draw_utterances(speakers, args)
    records = []
    rejected = 0
    with tempfile.TemporaryDirectory() as workdir:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            done = pool.map(lambda pair: speak(*pair, args, workdir),
                            zip(speakers, candidates))
            for speaker_records, speaker_rejected in done:
                records += speaker_records
                rejected += speaker_rejected
    with open(os.path.join(args.out, "corpus.json"), "w") as f:
        json.dump({"made_by": "benchmarks/make_speech.py",
                   "espeak_ng": version, "sample_rate": args.rate,
                   "arguments": {k: v for k, v in vars(args).items()
                                 if k not in ("out", "jobs", "espeak")},
                   "speakers": speakers, "utterances": records}, f, indent=1)
    seconds = np.array([r["seconds"] for r in records])
    print(f"{len(speakers)} speakers, {len(records)} utterances, "
          f"{seconds.sum() / 60:.1f} min of speech "
          f"({seconds.min():.2f}-{seconds.max():.2f} s, mean "
          f"{seconds.mean():.2f} s; {rejected} sentences of other lengths "
          f"left out), {args.rate} Hz mono 16-bit, in {args.out}; made in "
          f"{time.perf_counter() - start:.0f} s with {version}")


if __name__ == "__main__":
    main()
