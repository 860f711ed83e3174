"""Harmonic pitch-class profiles of many frames at once, as essentia's KeyExtractor makes them.

essentia's ``KeyExtractor`` runs ``SpectralPeaks``, ``SpectralWhitening`` and ``HPCP`` frame by
frame; here the same three steps run on every frame of a magnitude spectrogram in a few numpy
operations, with essentia's parameters and formulas (essentia 2.1, ``src/algorithms/spectral``):
the 60 strongest spectral peaks between 25 Hz and 3.5 kHz, parabolically interpolated; each
whitened against a smoothed spectral envelope sampled every 100 Hz; each peak and its first
subharmonics adding a cosine-weighted contribution to 12 pitch classes, A = 440 Hz first.
"""

from __future__ import annotations

import math

import numpy as np

from playlista.errors import InvalidInputError

MIN_HZ, MAX_HZ = 25.0, 3500.0
MAX_PEAKS = 60
PEAK_THRESHOLD = 1e-4
REFERENCE_HZ = 440.0
SIZE = 12
HARMONICS = 4
_ENVELOPE_STEP_HZ = 100.0
_SILENT_DB = -100.0


def hpcp(*, S: np.ndarray, sr: float) -> np.ndarray:
    """12-bin HPCP of each frame of magnitude spectrogram ``S`` [shape=(t, 1 + n_fft // 2)].

    ``S`` holds frames of a Hann window normalised to an area of 2 (essentia's
    ``Windowing``), at ``sr`` Hz. Returns [shape=(t, 12)], pitch class A first, not normalised.
    """
    if not isinstance(S, np.ndarray) or S.ndim != 2 or S.shape[1] < 3:
        raise InvalidInputError("S must be a magnitude spectrogram of shape (t, bins)")
    bin_hz = (sr / 2) / (S.shape[1] - 1)
    freqs, mags = spectral_peaks(S=S, bin_hz=bin_hz)
    white = whitened(S=S, freqs=freqs, mags=mags, bin_hz=bin_hz)
    return _pitch_classes(freqs, white)


def spectral_peaks(*, S: np.ndarray, bin_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """The :data:`MAX_PEAKS` strongest peaks of each frame between 25 Hz and 3.5 kHz.

    Returns frequencies and magnitudes [shape=(t, MAX_PEAKS)], parabolically interpolated;
    slots without a peak hold frequency 0 and magnitude 0.
    """
    lo = max(1, math.ceil(MIN_HZ / bin_hz))
    hi = min(S.shape[1] - 2, math.floor(MAX_HZ / bin_hz) + 1)
    left, mid, right = S[:, lo - 1 : hi - 1], S[:, lo:hi], S[:, lo + 1 : hi + 1]
    is_peak = (mid > left) & (mid > right) & (mid > PEAK_THRESHOLD)
    # The lowest bin counts as a peak when the spectrum falls away from it (PeakDetection).
    is_peak[:, 0] |= (S[:, lo] > S[:, lo + 1]) & (S[:, lo] > PEAK_THRESHOLD)
    curvature = left - 2 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(curvature != 0, 0.5 * (left - right) / curvature, 0.0)
    delta[:, 0] = np.where(S[:, lo] > S[:, lo + 1], 0.0, delta[:, 0])  # not interpolated
    position = (np.arange(lo, hi) + delta) * bin_hz
    value = mid - 0.25 * (left - right) * delta
    ok = is_peak & (position <= MAX_HZ)
    strength = np.where(ok, value, -np.inf)
    k = min(MAX_PEAKS, strength.shape[1])
    top = np.argpartition(-strength, k - 1, axis=1)[:, :k]
    chosen = np.take_along_axis(strength, top, axis=1)
    keep = np.isfinite(chosen)
    freqs = np.where(keep, np.take_along_axis(position, top, axis=1), 0.0)
    mags = np.where(keep, chosen, 0.0)
    return freqs.astype(np.float64), mags.astype(np.float64)


def whitened(*, S: np.ndarray, freqs: np.ndarray, mags: np.ndarray, bin_hz: float) -> np.ndarray:
    """Peak magnitudes [shape=(t, p)] whitened against each frame's spectral envelope.

    essentia's ``SpectralWhitening(maxFrequency=3500)``: the envelope is the energy-weighted
    mean energy in a window around every 100 Hz up to 4.2 kHz, interpolated at each peak; a
    peak well below it is suppressed, and high frequencies are tilted down 20 dB per 4 kHz.
    """
    top_hz = MAX_HZ * 1.2
    nyquist = bin_hz * (S.shape[1] - 1)
    grid = np.arange(0.0, min(top_hz, nyquist) + 1e-9, _ENVELOPE_STEP_HZ)
    weights = _envelope_weights(grid, bins=S.shape[1], nyquist=nyquist)
    used = int(np.flatnonzero(weights.any(axis=0))[-1]) + 1  # the windows reach ~6.6 kHz
    energy = np.square(S[:, :used])
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        numerator = (np.square(energy) @ weights[:, :used].T.astype(np.float32)).astype(np.float64)
        denominator = (energy @ weights[:, :used].T.astype(np.float32)).astype(np.float64)
        envelope = np.where(denominator > 0, numerator / denominator, 0.0)
    envelope[:, -1] = envelope[:, -2]
    envelope_db = 2 * _lin2db(np.sqrt(envelope))
    peak_db = 2 * _lin2db(mags)
    # essentia's break-point function: linear between the 100-Hz points.
    place = np.clip(freqs / _ENVELOPE_STEP_HZ, 0, grid.size - 1)
    index = np.minimum(place.astype(np.intp), grid.size - 2)
    low = np.take_along_axis(envelope_db, index, axis=1)
    high = np.take_along_axis(envelope_db, index + 1, axis=1)
    env_at_peak = low + (place - index) * (high - low)
    white = np.where(
        peak_db > env_at_peak,
        0.0,
        np.where(peak_db > env_at_peak - 30.0, peak_db - env_at_peak, -200.0),
    )
    white -= 20.0 * freqs / 4000.0
    white = np.where(freqs > top_hz - _ENVELOPE_STEP_HZ, peak_db, white)
    return np.where(mags > 0, 10 ** (white / 20), 0.0)


def _envelope_weights(grid: np.ndarray, *, bins: int, nyquist: float) -> np.ndarray:
    """The window weights [shape=(len(grid), bins)] of each envelope point (essentia's)."""
    weights = np.zeros((grid.size, bins))
    for row, freq in enumerate(grid):
        low = freq - max(50.0, freq * 0.34)
        high = freq + max(50.0, freq * 0.58)
        b = min(bins - 1, max(0, int(low / nyquist * (bins - 1.0) + 0.5)))
        e = min(bins, max(b + 1, int(high / nyquist * (bins - 1.0) + 0.5)))
        centre = (b + e) / 2
        half = e - centre
        i = np.arange(b, e)
        weights[row, b:e] = (1.0 - np.abs(i - centre) / half) ** 4
    return weights


def _harmonics() -> list[tuple[float, float]]:
    """(semitones below, weight) of the subharmonics a peak contributes to (essentia's table)."""
    table: list[list[float]] = []
    for i in range(HARMONICS + 1):
        semitone = 12.0 * math.log2(i + 1.0)
        octave_weight = max(1.0, semitone / 12.0 * 0.5)
        while semitone >= 12.0 - 1e-5:
            semitone -= 12.0
        for entry in table:
            if abs(entry[0] - semitone) < 1e-5:
                entry[1] += 1.0 / octave_weight
                break
        else:
            table.append([semitone, 1.0 / octave_weight])
    return [(s, w) for s, w in table]


_HARMONIC_TABLE = _harmonics()


def _pitch_classes(freqs: np.ndarray, mags: np.ndarray) -> np.ndarray:
    """Each peak's cosine-weighted contribution to the pitch class nearest it and its subharmonics.

    With 12 bins and a one-semitone window, a contribution falls on the nearest bin only (at
    exactly half a semitone both neighbours get cos(pi / 2) = 0).
    """
    t = freqs.shape[0]
    valid = (freqs >= MIN_HZ) & (freqs <= MAX_HZ) & (mags > 0)
    rows = np.broadcast_to(np.arange(t)[:, None], freqs.shape)[valid]
    f, energy = freqs[valid], mags[valid] ** 2
    out = np.zeros(t * SIZE)
    for semitone, weight in _HARMONIC_TABLE:
        position = np.log2(f * 2 ** (-semitone / 12) / REFERENCE_HZ) * SIZE
        nearest = np.ceil(position - 0.5)
        contribution = np.cos(np.pi * np.abs(position - nearest)) * energy * weight**2
        index = rows * SIZE + np.mod(nearest, SIZE).astype(np.intp)
        out += np.bincount(index, weights=contribution, minlength=t * SIZE)
    return out.reshape(t, SIZE)


def _lin2db(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(x < 1e-10, _SILENT_DB, 10 * np.log10(np.maximum(x, 1e-30)))
