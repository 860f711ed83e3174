"""Key from the shared magnitude spectrogram: treble and bass pitch-class profiles.

The STFT's bins are mapped onto semitones (A4 = 440 Hz), log-compressed, each note credited
with its octave, twelfth and double octave (so that a note's upper partials count for it rather
than for the fifth they sound) and folded into two pitch-class profiles: one of the middle and
upper registers, one of the bass. Each of the 24 keys is scored by the correlation of the
treble profile with a key profile plus BASS_WEIGHT times the bass profile's (the bass leans on
tonic and dominant roots, which separates a key from its relative). Profiles: the mean of
Temperley's (1999) and Krumhansl and Kessler's (1982), each scaled to unit norm. A profile of
the last seconds (pieces end on the tonic) is computed too; on the tuning half of the
evaluation set (bench/evalset/SOURCES.md, bench/tune.py) its fitted weight was 0, as it is here.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np

from playlista.errors import InvalidInputError

SR = 22050
N_FFT = 2048
TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
LOWEST_NOTE, HIGHEST_NOTE = 28, 100  # E1 (41 Hz) to E7 (2.6 kHz), MIDI numbers
BASS_TOP = 52  # notes below E3 (165 Hz) make the bass profile
COMPRESSION = 10.0
ENDING_SECONDS = 8.0
BASS_WEIGHT = 1.5
ENDING_WEIGHT = 0.0
# A note's salience adds its octave, twelfth and double octave at this weight, halved per
# step: the upper partials of a note count for it rather than for the fifth they sound.
HARMONIC_WEIGHT = 2.0
HARMONICS = (12, 19, 24)
KRUMHANSL = {
    "major": [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88],
    "minor": [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17],
}
TEMPERLEY = {
    "major": [5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0],
    "minor": [5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0],
}


class Key(NamedTuple):
    """A key estimate: tonic as essentia spells it, 'major' or 'minor', strength in [0, 1]."""

    tonic: str
    mode: str
    strength: float


class Profiles(NamedTuple):
    """Pitch-class profiles [shape=(12,)] of a track, C first."""

    treble: np.ndarray
    bass: np.ndarray
    ending: np.ndarray


class SemitoneMap(NamedTuple):
    """Weights [shape=(notes, bins)] of the STFT bins ``first_bin`` onwards on each note."""

    weights: np.ndarray
    first_bin: int

    def __matmul__(self, S: np.ndarray) -> np.ndarray:
        rows = S[self.first_bin : self.first_bin + self.weights.shape[1]]
        with np.errstate(invalid="ignore", over="ignore"):  # the caller rejects non-finite
            return self.weights @ rows


@cache
def semitone_map(sr: int = SR, n_fft: int = N_FFT) -> SemitoneMap:
    """Triangular weights of the STFT bins on each semitone, a semitone wide, or a bin wide
    where bins are wider than semitones; only the bins some note reads (a quarter of them)."""
    freqs = np.arange(1 + n_fft // 2) * sr / n_fft
    notes = np.arange(LOWEST_NOTE, HIGHEST_NOTE + 1)
    centres = 440.0 * 2.0 ** ((notes - 69) / 12)
    width = np.maximum(centres * (2 ** (1 / 12) - 1), sr / n_fft)
    weights = np.maximum(0.0, 1 - np.abs(freqs[None, :] - centres[:, None]) / width[:, None])
    used = np.flatnonzero(weights.any(axis=0))
    weights = weights[:, used[0] : used[-1] + 1]
    return SemitoneMap(
        (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32), int(used[0])
    )


def profiles(*, S: np.ndarray, sr: int = SR, n_fft: int = N_FFT, hop_length: int = 512) -> Profiles:
    """Treble, bass and ending pitch-class profiles of magnitude spectrogram ``S``
    [shape=(1 + n_fft // 2, t)]."""
    if not isinstance(S, np.ndarray) or S.ndim != 2 or S.shape[0] != 1 + n_fft // 2:
        raise InvalidInputError(f"S must have shape ({1 + n_fft // 2}, t)")
    notes = semitone_map(sr, n_fft) @ S
    if S.shape[1] == 0 or not np.isfinite(notes).all():
        raise InvalidInputError("S is empty or holds NaN or infinite values")
    peak = float(notes.max())
    if not peak > 0:
        raise InvalidInputError("no tonal content: the spectrogram is silent")
    notes = np.log1p(COMPRESSION * notes / peak)
    ending = _last_sounding(notes, int(ENDING_SECONDS * sr / hop_length))
    return profiles_of(notes.sum(axis=1), ending.sum(axis=1))


def profiles_of(
    energy: np.ndarray, ending: np.ndarray, harmonic_weight: float = HARMONIC_WEIGHT
) -> Profiles:
    """The profiles of compressed note energies summed over the track and over its ending
    [shape=(notes,)], LOWEST_NOTE first."""
    whole, last = (_salience(e, harmonic_weight) for e in (energy, ending))
    bass_rows = BASS_TOP - LOWEST_NOTE
    return Profiles(
        treble=_fold(whole[bass_rows:], BASS_TOP),
        bass=_fold(whole[:bass_rows], LOWEST_NOTE),
        ending=_fold(last, LOWEST_NOTE),
    )


def _salience(energy: np.ndarray, weight: float) -> np.ndarray:
    """Each note's energy plus its partials' (HARMONICS above it), ``weight`` halved per step."""
    salience = energy.astype(np.float64).copy()
    for step, interval in enumerate(HARMONICS):
        salience[:-interval] += weight * 0.5**step * energy[interval:]
    return salience


def key(*, S: np.ndarray, sr: int = SR, n_fft: int = N_FFT, hop_length: int = 512) -> Key:
    """Key of a track from its magnitude spectrogram ``S`` [shape=(1 + n_fft // 2, t)].

    Returns the tonic (C, C#, D, Eb, E, F, F#, G, Ab, A, Bb, B), 'major' or 'minor', and a
    strength in [0, 1]: the winning key's correlation with the treble profile, clipped at 0.
    """
    p = profiles(S=S, sr=sr, n_fft=n_fft, hop_length=hop_length)
    scores = key_scores(p)
    best = int(np.argmax(scores))
    mode, tonic = ("major", "minor")[best // 12], best % 12
    strength = float(np.clip(_correlations(p.treble)[best], 0.0, 1.0))
    return Key(TONICS[tonic], mode, strength)


def key_scores(
    p: Profiles, bass_weight: float = BASS_WEIGHT, ending_weight: float = ENDING_WEIGHT
) -> np.ndarray:
    """Scores of the 24 keys [shape=(24,)]: C major..B major, then C minor..B minor."""
    return (
        _correlations(p.treble)
        + bass_weight * _correlations(p.bass)
        + ending_weight * _correlations(p.ending)
    )


@cache
def key_profiles() -> np.ndarray:
    """The 24 key profiles [shape=(24, 12)], centred and of unit norm."""
    rows = []
    for mode in ("major", "minor"):
        base = sum(_unit(np.array(table[mode])) for table in (KRUMHANSL, TEMPERLEY))
        rows += [np.roll(base, tonic) for tonic in range(12)]
    return np.stack([_unit(r) for r in rows])


def _correlations(profile: np.ndarray) -> np.ndarray:
    return key_profiles() @ _unit(profile)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    norm = np.linalg.norm(x)
    return x / norm if norm > 0 else x


def _fold(energy: np.ndarray, first_note: int) -> np.ndarray:
    chroma = np.zeros(12)
    np.add.at(chroma, (first_note + np.arange(energy.size)) % 12, energy)
    return chroma


def _last_sounding(notes: np.ndarray, frames: int) -> np.ndarray:
    """The last ``frames`` frames before the music falls silent at the end."""
    level = notes.sum(axis=0)
    sounding = np.flatnonzero(level > 0.1 * level.max())
    end = int(sounding[-1]) + 1 if sounding.size else notes.shape[1]
    return notes[:, max(0, end - frames) : end]
