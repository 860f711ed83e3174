"""Tempo from the shared onset envelope, with the metrical level chosen on evidence.

The onset envelope's autocorrelation gives every periodicity of the track; its peaks, and each
peak at x2, x1/2, x3/2 and x2/3, are the candidate tempi. Each candidate is described by a few
numbers (how strong the envelope repeats at its period, at twice and half its period and at
the periods of its subdivisions, in the whole envelope and in the low and high mel bands, and
how far it is from 120 BPM), and a linear score of them picks one. The weights were fitted on
the tuning half of the evaluation set (bench/evalset/SOURCES.md); the chosen period is then
refined on eight multiples of itself, so the estimate is finer than one frame.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from playlista.errors import InvalidInputError

SR = 22050
HOP_LENGTH = 512
MIN_BPM, MAX_BPM = 40.0, 240.0
LEVELS = (1.0, 2.0, 0.5, 1.5, 2 / 3)
MIN_SECONDS = 4.0
N_PEAKS = 4
MAX_LAG = 640  # 14.9 s at 43 frames per second: eight periods at 40 BPM are 12 s
REFINE_MULTIPLES = 8
# Mel bands (of 128) whose onsets are mostly kick and bass, and mostly cymbals and hi-hats.
LOW_BANDS, HIGH_BANDS = slice(0, 16), slice(80, 128)
# The fitted score of a candidate: one weight per feature of candidate_features().
FEATURES = (
    "acf", "acf_double_period", "acf_half_period", "acf_third_period", "low_acf", "high_acf",
    "high_acf_half_period", "low_acf_double_period", "octave", "octave_squared", "peak",
    "onsets_per_beat", "onsets_per_beat_squared", "beat_coverage", "offbeat_coverage",
)  # fmt: skip
WEIGHTS = np.array([
    1.59, 1.11, 0.46, -0.57, 1.93, 0.59, 0.21, 0.96, -0.05, -1.68, 1.34, 0.05, -0.37, 1.12, -0.36
])  # fmt: skip


class Tempo(NamedTuple):
    """A tempo estimate: beats per minute and a confidence in [0, 1]."""

    bpm: float
    confidence: float


class Periodicity(NamedTuple):
    """Normalised autocorrelations of the onset envelopes (lag in frames), and onsets per
    second."""

    full: np.ndarray
    low: np.ndarray
    high: np.ndarray
    frame_rate: float
    onset_rate: float
    onsets: np.ndarray  # shape (t,), bool: an onset peak within a frame


def tempo(
    *,
    onset_envelope: np.ndarray,
    mel: np.ndarray | None = None,
    y: np.ndarray | None = None,
    sr: int = SR,
    hop_length: int = HOP_LENGTH,
) -> Tempo:
    """Tempo of a track from its onset envelope [shape=(t,)] and mel power [shape=(128, t)].

    ``onset_envelope`` is librosa's ``onset_strength`` of the log mel power at ``hop_length``
    samples per frame; ``mel`` (optional) adds the low- and high-band evidence; ``y`` is
    accepted for the shared front end's signature and not read. Returns the bpm in [40, 240]
    and a confidence: the candidate's share of the softmax of the scores, times how strongly
    the envelope repeats at the chosen period (1 on a click track, near 0 on noise).
    """
    periodicity = periodicities(
        onset_envelope=onset_envelope, mel=mel, sr=sr, hop_length=hop_length
    )
    candidates = candidate_tempi(periodicity)
    features = np.stack([candidate_features(periodicity, c) for c in candidates])
    scores = features @ WEIGHTS
    best = int(np.argmax(scores))
    weights = np.exp(scores - scores[best])
    share = float(weights[best] / weights.sum())
    bpm = refine(periodicity.full, candidates[best], periodicity.frame_rate)
    strength = float(np.clip(_at(periodicity.full, 60 * periodicity.frame_rate / bpm), 0, 1))
    return Tempo(bpm=bpm, confidence=share * strength)


def periodicities(
    *, onset_envelope: np.ndarray, mel: np.ndarray | None, sr: int, hop_length: int
) -> Periodicity:
    """The autocorrelations the candidates are scored on."""
    envelope = _checked_envelope(onset_envelope)
    frame_rate = sr / hop_length
    if envelope.size < MIN_SECONDS * frame_rate:
        raise InvalidInputError(f"{envelope.size / frame_rate:.1f} s is too short for a tempo")
    if not envelope.any():
        raise InvalidInputError("the onset envelope is flat: no onsets")
    if mel is None:
        return of_envelopes(envelope, envelope, envelope, frame_rate)
    if mel.ndim != 2 or mel.shape[1] != envelope.size or mel.shape[0] < HIGH_BANDS.stop:
        raise InvalidInputError(f"mel must have shape (128, {envelope.size}), got {mel.shape}")
    low, high = band_envelopes(mel)
    return of_envelopes(envelope, low, high, frame_rate)


def band_envelopes(mel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectral flux of the low and the high mel bands [shape=(t,) each]."""
    bands = np.concatenate([mel[LOW_BANDS], mel[HIGH_BANDS]])
    db = 10 * np.log10(np.maximum(bands, 1e-10))
    flux = np.maximum(np.diff(db, axis=1, prepend=db[:, :1]), 0)
    n_low = LOW_BANDS.stop - LOW_BANDS.start
    return flux[:n_low].mean(axis=0), flux[n_low:].mean(axis=0)


def of_envelopes(
    full: np.ndarray, low: np.ndarray, high: np.ndarray, frame_rate: float
) -> Periodicity:
    acfs = [autocorrelation(e) for e in (full, low, high)]
    peaks = onset_peaks(full)
    near = peaks.copy()
    near[1:] |= peaks[:-1]
    near[:-1] |= peaks[1:]
    rate = float(peaks.sum() * frame_rate / peaks.size)
    return Periodicity(acfs[0], acfs[1], acfs[2], frame_rate, rate, near)


def onset_peaks(envelope: np.ndarray) -> np.ndarray:
    """Onsets [shape=(t,), bool]: local maxima of the envelope above its mean plus half a
    deviation."""
    e = np.asarray(envelope, dtype=np.float64)
    threshold = e.mean() + 0.5 * e.std()
    peaks = np.zeros(e.size, dtype=bool)
    peaks[1:-1] = (e[1:-1] > threshold) & (e[1:-1] >= e[:-2]) & (e[1:-1] > e[2:])
    return peaks


def coverage(onsets: np.ndarray, lag: float) -> tuple[float, float]:
    """The share of beats, at the phase where most beats have one, that have an onset, and
    the share of the points halfway between them that have one."""
    beats = np.arange(0.0, onsets.size - lag, lag)
    if beats.size < 4:
        return 0.0, 0.0
    phases = np.arange(0.0, lag, 1.0)
    idx = np.rint(phases[:, None] + beats[None, :]).astype(np.intp)
    on = onsets[np.minimum(idx, onsets.size - 1)].mean(axis=1)
    best = int(np.argmax(on))
    half = np.minimum(np.rint(idx[best] + lag / 2).astype(np.intp), onsets.size - 1)
    return float(on[best]), float(onsets[half].mean())


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Autocorrelation of ``x`` minus its local mean, 1 at lag 0, MAX_LAG lags."""
    x = np.asarray(x, dtype=np.float64)
    x = x - np.convolve(x, np.ones(64) / 64, mode="same")  # slow swells are not beats
    n = 1 << int(np.ceil(np.log2(2 * x.size)))
    spectrum = np.fft.rfft(x, n)
    acf = np.fft.irfft(spectrum * spectrum.conj(), n)[: min(x.size, MAX_LAG)]
    acf /= np.arange(x.size, x.size - acf.size, -1)  # unbiased: each lag's mean product
    return acf / acf[0] if acf[0] > 0 else acf


def candidate_tempi(periodicity: Periodicity) -> np.ndarray:
    """The autocorrelation's strongest peaks in tempo range, each at every level of LEVELS."""
    acf, rate = periodicity.full, periodicity.frame_rate
    lags = np.arange(int(60 * rate / MAX_BPM), min(int(60 * rate / MIN_BPM) + 2, acf.size - 1))
    inner = acf[lags]
    is_peak = (inner >= acf[lags - 1]) & (inner >= acf[lags + 1])
    peaks = lags[is_peak][np.argsort(inner[is_peak])[::-1][:N_PEAKS]]
    if peaks.size == 0:
        peaks = lags[[int(np.argmax(inner))]]
    found: list[float] = []
    for lag in peaks:
        bpm = 60 * rate / _peak_lag(acf, int(lag))
        for level in LEVELS:
            c = bpm * level
            if MIN_BPM <= c <= MAX_BPM and all(abs(c / f - 1) > 0.02 for f in found):
                found.append(c)
    return np.array(found)


def candidate_features(periodicity: Periodicity, bpm: float) -> np.ndarray:
    """The numbers a candidate is scored on, in the order of FEATURES."""
    lag = 60 * periodicity.frame_rate / bpm
    full, low, high = periodicity.full, periodicity.low, periodicity.high
    octave = np.log2(bpm / 120.0)
    density = np.log2(max(periodicity.onset_rate, 0.1) * 60 / bpm)
    return np.array([
        _at(full, lag),
        _at(full, 2 * lag),
        _at(full, lag / 2),
        _at(full, lag / 3),
        _at(low, lag),
        _at(high, lag),
        _at(high, lag / 2),
        _at(low, 2 * lag),
        octave,
        octave * octave,
        float(_at(full, lag) >= max(_at(full, lag * 0.97), _at(full, lag * 1.03))),
        density,
        density * density,
        *coverage(periodicity.onsets, lag),
    ])  # fmt: skip


def refine(acf: np.ndarray, bpm: float, frame_rate: float) -> float:
    """The period near 60/bpm whose first REFINE_MULTIPLES multiples repeat most strongly."""
    lag = 60 * frame_rate / bpm
    steps = lag * np.linspace(0.97, 1.03, 121)
    k = np.arange(1, REFINE_MULTIPLES + 1)
    usable = k[k * lag * 1.03 < acf.size - 1]
    comb = np.array([sum(_at(acf, m * s) for m in usable) for s in steps])
    return float(np.clip(60 * frame_rate / steps[int(np.argmax(comb))], MIN_BPM, MAX_BPM))


def _peak_lag(acf: np.ndarray, lag: int) -> float:
    """A peak's lag to a fraction of a frame, by the parabola through it and its neighbours."""
    a, b, c = acf[lag - 1], acf[lag], acf[lag + 1]
    denominator = a - 2 * b + c
    return lag + (0.5 * (a - c) / denominator if denominator < 0 else 0.0)


def _at(acf: np.ndarray, lag: float) -> float:
    """The autocorrelation at a fractional lag: the largest of its two neighbours' linear
    interpolation and the nearest frame's (a peak one frame wide is not missed)."""
    if lag >= acf.size - 1 or lag < 1:
        return 0.0
    i = int(lag)
    frac = lag - i
    return float(max((1 - frac) * acf[i] + frac * acf[i + 1], acf[round(lag)]))


def _checked_envelope(onset_envelope: object) -> np.ndarray:
    if not isinstance(onset_envelope, np.ndarray) or onset_envelope.ndim != 1:
        raise InvalidInputError("onset_envelope must be a numpy array of shape (t,)")
    if (
        not np.issubdtype(onset_envelope.dtype, np.floating)
        or not np.isfinite(onset_envelope).all()
    ):
        raise InvalidInputError("onset_envelope must hold finite floating-point values")
    return onset_envelope
