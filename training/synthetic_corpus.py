# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""An embedded, fully synthetic emotional-speech corpus, so that Gen-SER can be trained and tested offline.

It is NOT real speech: each clip is a source-filter "vowel string" (a harmonic glottal source shaped by vowel
formants, with consonant-like noise bursts between syllables). Emotions change the prosody the way acted speech
tends to: pitch level and range, tempo, loudness, jitter and breathiness (voice quality) and spectral tilt.
Voices differ in base pitch and vocal-tract length; sentences differ in their vowel sequence and accent pattern.
Everything is drawn from one seed, so the corpus is identical on every machine.

Output: an ``audiofolder`` directory (16 kHz mono 16-bit WAV files plus ``metadata.csv`` with
``file_name,label,speaker,sentence``), loadable with ``datasets.load_dataset("audiofolder", data_dir=...)``.
"""

import argparse
import csv
import wave
from pathlib import Path

import numpy as np

SAMPLING_RATE = 16000

# Prosody per emotion: pitch factor, pitch range (semitones), syllables per second, loudness (dB),
# jitter (relative f0 perturbation), breathiness (noise-to-voice ratio), spectral tilt (harmonic roll-off power).
EMOTIONS = {
    "anger": dict(pitch=1.35, range=7.0, tempo=5.5, loudness=0.0, jitter=0.020, breath=0.05, tilt=0.9),
    "fear": dict(pitch=1.55, range=3.0, tempo=6.5, loudness=-6.0, jitter=0.045, breath=0.30, tilt=1.4),
    "happiness": dict(pitch=1.30, range=9.0, tempo=5.0, loudness=-3.0, jitter=0.010, breath=0.08, tilt=1.2),
    "neutral": dict(pitch=1.00, range=3.0, tempo=4.2, loudness=-8.0, jitter=0.008, breath=0.08, tilt=1.6),
    "sadness": dict(pitch=0.88, range=1.5, tempo=3.0, loudness=-14.0, jitter=0.015, breath=0.25, tilt=2.2),
}

# Declared arousal per emotion, in [0, 1] (the usual circumplex placement: anger and fear high, sadness low), written
# as the `arousal` column: the only dimensional labels this project has, for testing dimensional targets.
AROUSAL = {"anger": 0.9, "fear": 0.8, "happiness": 0.7, "neutral": 0.3, "sadness": 0.1}

# First three formants (Hz) of a few vowels of an adult male vocal tract.
VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]])


def _formant_gain(frequencies: np.ndarray, formants: np.ndarray, bandwidth: float = 90.0) -> np.ndarray:
    """Summed resonance gain of `formants` (..., 3) at `frequencies` (..., K)."""
    gain = np.zeros_like(frequencies)
    for i in range(formants.shape[-1]):
        centre = formants[..., i : i + 1]
        gain += 1.0 / (1.0 + ((frequencies - centre) / (bandwidth * (1 + i))) ** 2)
    return gain


def synthesize(emotion: str, voice: dict, sentence: dict, rng: np.random.Generator) -> np.ndarray:
    """One utterance as float32 samples in [-1, 1]."""
    style = EMOTIONS[emotion]
    tempo = style["tempo"] * rng.uniform(0.9, 1.1)
    durations = rng.uniform(0.75, 1.25, size=len(sentence["vowels"])) / tempo
    gap = int(0.04 * SAMPLING_RATE)
    syllable_lengths = (durations * SAMPLING_RATE).astype(int)
    n = int(syllable_lengths.sum() + gap * len(syllable_lengths))

    # Which syllable each sample belongs to, and where inside it.
    bounds = np.concatenate([[0], np.cumsum(syllable_lengths + gap)])
    index = np.clip(np.searchsorted(bounds, np.arange(n), side="right") - 1, 0, len(syllable_lengths) - 1)
    within = np.arange(n) - bounds[index]
    voiced = within < syllable_lengths[index]
    position = np.clip(within / syllable_lengths[index], 0, 1)

    # Pitch: declination plus the sentence's accents, scaled by the emotion's range, with jitter.
    time = np.arange(n) / n
    accents = sentence["accents"][index] * np.sin(np.pi * position)
    contour = (accents - 0.5 * time) * style["range"] / 12.0
    jitter = style["jitter"] * np.convolve(rng.standard_normal(n), np.ones(160) / np.sqrt(160), mode="same")
    f0 = voice["f0"] * style["pitch"] * 2.0**contour * (1 + jitter)

    phase = 2 * np.pi * np.cumsum(f0) / SAMPLING_RATE
    harmonics = np.arange(1, 41)
    frequencies = f0[:, None] * harmonics[None]
    formants = VOWELS[sentence["vowels"]][index] * voice["tract"]
    amplitude = _formant_gain(frequencies, formants) / harmonics[None] ** style["tilt"]
    amplitude[frequencies > 0.45 * SAMPLING_RATE] = 0
    source = (amplitude * np.sin(phase[:, None] * harmonics[None])).sum(axis=1)
    source /= np.abs(source).max() + 1e-9

    envelope = np.where(voiced, np.sin(np.pi * position) ** 0.5, 0.0)
    noise = rng.standard_normal(n)
    burst = np.where(~voiced, 0.15, 0.0)  # consonant-like friction between syllables
    signal = envelope * ((1 - style["breath"]) * source + style["breath"] * noise) + burst * noise
    gain = 10 ** ((style["loudness"] + rng.uniform(-2, 2)) / 20) * 0.5
    signal = signal / (np.abs(signal).max() + 1e-9) * gain
    return signal.astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sampling_rate)
        handle.writeframes(pcm.tobytes())


def generate_corpus(
    output_dir: str | Path,
    num_speakers: int = 6,
    num_sentences: int = 10,
    emotions: tuple[str, ...] = tuple(EMOTIONS),
    seed: int = 0,
) -> Path:
    """Writes ``num_speakers * num_sentences * len(emotions)`` clips and their ``metadata.csv``; returns the folder."""
    unknown = set(emotions) - set(EMOTIONS)
    if unknown:
        raise ValueError(f"Unknown synthetic emotions {sorted(unknown)}; choose from {sorted(EMOTIONS)}.")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    voices = [
        dict(f0=rng.uniform(95, 130) if i % 2 == 0 else rng.uniform(180, 240), tract=1.0 if i % 2 == 0 else 1.17)
        for i in range(num_speakers)
    ]
    sentences = []
    for _ in range(num_sentences):
        length = int(rng.integers(5, 10))
        vowels = rng.integers(0, len(VOWELS), size=length)
        sentences.append(dict(vowels=vowels, accents=rng.uniform(-0.3, 1.0, size=length)))
    rows = []
    for s, voice in enumerate(voices):
        for k, sentence in enumerate(sentences):
            for emotion in emotions:
                file_name = f"spk{s:02d}_sent{k:02d}_{emotion}.wav"
                write_wav(output_dir / file_name, synthesize(emotion, voice, sentence, rng))
                rows.append(
                    dict(
                        file_name=file_name,
                        label=emotion,
                        speaker=f"spk{s:02d}",
                        sentence=f"sent{k:02d}",
                        arousal=AROUSAL[emotion],
                    )
                )
    with open(output_dir / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file_name", "label", "speaker", "sentence", "arousal"])
        writer.writeheader()
        writer.writerows(rows)
    return output_dir


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    parser.add_argument("--num_speakers", type=int, default=6)
    parser.add_argument("--num_sentences", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = generate_corpus(args.output_dir, args.num_speakers, args.num_sentences, seed=args.seed)
    print(f"wrote {len(list(folder.glob('*.wav')))} clips to {folder}")
