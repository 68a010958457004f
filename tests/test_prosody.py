"""The prosodic statistics `benchmarks/evaluate_prosody.py` measures against the encoder's features."""

import numpy as np

from benchmarks.evaluate_prosody import prosodic_statistics

RATE = 16000


def harmonic_tone(f0: float, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))).astype(np.float32)


def test_pitch_and_loudness_follow_the_voice():
    low, high = prosodic_statistics(harmonic_tone(100, 2.0)), prosodic_statistics(harmonic_tone(200, 2.0))
    assert abs(low[0]) < 1.0 and abs(high[0] - 12) < 1.0  # semitones re 100 Hz: one octave apart
    quiet = prosodic_statistics(harmonic_tone(150, 2.0, amplitude=0.03))
    loud = prosodic_statistics(harmonic_tone(150, 2.0, amplitude=0.3))
    assert abs((loud[4] - quiet[4]) - 20) < 1.0  # ten times the amplitude is 20 dB louder
    assert loud[8] > 0.9  # a steady tone is voiced throughout
    assert abs(loud[10] - np.log(2.0)) < 1e-3  # log duration


def test_a_silent_or_very_short_clip_gives_finite_statistics():
    for clip in (np.zeros(RATE, dtype=np.float32), harmonic_tone(150, 0.02)):
        assert np.isfinite(prosodic_statistics(clip)).all()
