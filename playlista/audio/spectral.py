"""The spectral family: spectral shape, MFCC, chroma and zero-crossing rate, from one spectrogram.

As librosa computes them (``spectral_centroid``, ``spectral_rolloff``, ``spectral_flatness``,
``spectral_bandwidth``, ``mfcc``, ``chroma_stft``, ``zero_crossing_rate``), from the magnitude
spectrogram the front end (:mod:`playlista.audio.frontend`) made once.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import librosa
import numba
import numpy as np
import scipy.fft

from playlista.audio import frontend
from playlista.audio.inputs import analysis_input, checked_spectrogram, finite, require_sound
from playlista.audio.prepare import ANALYSIS_SR
from playlista.audio.sources import N_MFCC, ROLL_PERCENT
from playlista.errors import InvalidInputError

SR = ANALYSIS_SR
N_FFT = frontend.N_FFT
HOP_LENGTH = frontend.HOP_LENGTH
TUNING_FRAME_STEP = 8  # every 8th frame estimates the tuning as well as all of them


class SpectralFeatures(NamedTuple):
    """Frame averages of the spectral family; see :func:`spectral`."""

    centroid_hz: float
    rolloff_hz: float
    flatness: float
    bandwidth_hz: float
    zero_crossing_rate: float | None
    mfcc_mean: np.ndarray
    mfcc_std: np.ndarray
    chroma_mean: np.ndarray


def spectral(
    *,
    y: np.ndarray | None = None,
    sr: float = SR,
    S: np.ndarray | None = None,
    mel_db: np.ndarray | None = None,
) -> SpectralFeatures:
    """Frame averages of librosa's spectral descriptors, MFCC and chroma from one spectrogram.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)] or None
        Mono samples at 22.05 kHz (another ``sr`` is resampled first): needed for the
        zero-crossing rate (None without them), and for ``S`` when ``S`` is not given.
    sr : int > 0
        Sampling rate of ``y`` in Hz.
    S : np.ndarray [shape=(1 + n_fft // 2, t)] or None
        Magnitude spectrogram at 22.05 kHz (n_fft=2048, hop 512), as the front end
        (:func:`playlista.audio.frontend.front_end`) or ``librosa.stft`` gives it.
    mel_db : np.ndarray [shape=(128, t)] or None
        The front end's log-mel spectrogram of ``S``; computed from ``S`` if not given.

    Returns
    -------
    SpectralFeatures
        The frame means of what librosa's ``spectral_centroid``, ``spectral_rolloff`` (85 % of
        the magnitude), ``spectral_bandwidth`` (Hz), ``spectral_flatness`` (0-1) and
        ``zero_crossing_rate`` compute; ``mfcc_mean`` and ``mfcc_std`` [shape=(13,)] of 13 MFCCs
        of the 128-band log-mel spectrogram; ``chroma_mean`` [shape=(12,)], C first, each frame
        scaled to max 1, tuned to the track's tuning as librosa estimates it.
    """
    if y is not None:
        y = analysis_input(y, sr=sr)
        require_sound(y)
    if S is None:
        if y is None:
            raise InvalidInputError("spectral() needs y or S")
        front = frontend.front_end(y=y)
        S, mel_db = front.S, front.mel_db
    frames = np.ascontiguousarray(checked_spectrogram(S).T)  # one row per frame
    n_fft = 2 * (frames.shape[1] - 1)
    freqs = np.arange(frames.shape[1], dtype=np.float64) * (SR / n_fft)
    shape = np.empty((frames.shape[0], 4))
    _frame_shape(frames, freqs, ROLL_PERCENT, shape)
    centroid, bandwidth, rolloff, flatness = shape.T
    power = np.square(frames)
    if mel_db is None:
        mel_db = frontend.power_to_db(power @ frontend.mel_basis(n_fft).T).T
    mfcc = scipy.fft.dct(mel_db, axis=0, type=2, norm="ortho")[:N_MFCC]  # (13, t)
    tuning = estimate_tuning(power=power[::TUNING_FRAME_STEP], n_fft=n_fft)
    chroma = power @ _chroma_basis(n_fft, round(float(tuning), 2)).T  # (t, 12)
    peak = chroma.max(axis=1, keepdims=True)
    chroma = np.divide(chroma, peak, out=np.zeros_like(chroma), where=peak > 1e-30)
    zcr = None
    if y is not None:
        zcr = finite(zero_crossing_rate(y=y), "zero-crossing rate")
    return SpectralFeatures(
        centroid_hz=finite(centroid.mean(), "spectral centroid"),
        rolloff_hz=finite(rolloff.mean(), "spectral rolloff"),
        flatness=finite(flatness.mean(), "spectral flatness"),
        bandwidth_hz=finite(bandwidth.mean(), "spectral bandwidth"),
        zero_crossing_rate=zcr,
        mfcc_mean=finite(mfcc.mean(axis=1), "MFCC mean"),
        mfcc_std=finite(mfcc.std(axis=1), "MFCC std"),
        chroma_mean=finite(chroma.mean(axis=0), "chroma mean"),
    )


def estimate_tuning(*, power: np.ndarray, n_fft: int = N_FFT, resolution: float = 0.01) -> float:
    """``librosa.estimate_tuning(S=power.T)``: the tuning offset in fractions of a semitone.

    ``power`` [shape=(t, 1 + n_fft // 2)] at 22.05 kHz. As librosa does: the spectral peaks
    between 150 Hz and 4 kHz that reach a tenth of their frame's maximum, parabolically
    interpolated, those of at least the median magnitude, and the most common deviation from
    equal temperament in steps of ``resolution``. Only the bins of that band are read.
    """
    freqs = np.arange(power.shape[1]) * (SR / n_fft)
    lo = max(1, int(np.argmax(freqs >= 150.0)))
    hi = int(np.argmax(freqs >= 4000.0))
    x = power[:, lo - 1 : hi + 1].astype(np.float64)
    mid, left, right = x[:, 1:-1], x[:, :-2], x[:, 2:]
    loud = x * (x > 0.1 * power.max(axis=1, keepdims=True))
    peak = (loud[:, 1:-1] > loud[:, :-2]) & (loud[:, 1:-1] >= loud[:, 2:])
    curvature = right + left - 2 * mid
    slope = (right - left) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(slope) >= np.abs(curvature), 0.0, -slope / curvature)
    pitches = ((np.arange(lo, hi) + shift) * (SR / n_fft))[peak]
    mags = (mid + 0.5 * slope * shift)[peak]
    if pitches.size == 0:
        return 0.0
    kept = pitches[(mags >= np.median(mags)) & (pitches > 0)]
    residual = np.mod(12 * np.log2(kept / (440.0 / 16)), 1.0)
    residual[residual >= 0.5] -= 1.0
    counts, edges = np.histogram(residual, np.linspace(-0.5, 0.5, int(np.ceil(1 / resolution)) + 1))
    return float(edges[np.argmax(counts)])


def zero_crossing_rate(
    *, y: np.ndarray, frame_length: int = N_FFT, hop_length: int = HOP_LENGTH
) -> float:
    """Mean of ``librosa.feature.zero_crossing_rate(y)`` over its frames.

    Sign changes between neighbouring samples (|y| <= 1e-10 counts as 0, and 0 as positive)
    are counted once over the whole signal; each frame's count is a difference of their
    running total.
    """
    padded = np.pad(np.asarray(y, np.float32), frame_length // 2, mode="edge")  # center=True
    n_frames = 1 + (padded.size - frame_length) // hop_length
    counts = np.empty(n_frames, np.int64)
    _frame_sign_changes(padded, frame_length, hop_length, counts)
    # librosa counts the pairs inside a frame and divides by the frame's length.
    return float(counts.mean() / frame_length)


@numba.njit(cache=True, nogil=True)
def _frame_sign_changes(
    y: np.ndarray, frame_length: int, hop_length: int, counts: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Sign changes between neighbours inside each frame (|y| <= 1e-10 counts as positive).

    One pass keeps the running total; a frame's count is its value at the frame's last
    sample less its value at the frame's first.
    """
    n_frames = counts.size
    at_start = np.zeros(n_frames, np.int64)
    total = 0
    was_negative = y[0] < -1e-10
    for i in range(y.size):
        if i > 0:
            negative = y[i] < -1e-10
            total += negative != was_negative
            was_negative = negative
        if i % hop_length == 0 and i // hop_length < n_frames:
            at_start[i // hop_length] = total
        end = i - frame_length + 1
        if end >= 0 and end % hop_length == 0 and end // hop_length < n_frames:
            counts[end // hop_length] = total - at_start[end // hop_length]


@numba.njit(cache=True, nogil=True)
def _frame_shape(
    S: np.ndarray, freqs: np.ndarray, roll_percent: float, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Centroid, bandwidth, rolloff and flatness of each frame of ``S`` [shape=(t, bins)].

    librosa's definitions: the magnitude-weighted mean frequency and the standard deviation
    around it; the lowest frequency with ``roll_percent`` of the magnitude below it (a float32
    running total, as librosa sums); the power's geometric over arithmetic mean, power floored
    at 1e-10, the logarithm taken of products of 16 bins (each >= 1e-10: no product leaves
    float64's range).
    """
    t, bins = S.shape
    for i in range(t):
        total = 0.0
        total32 = np.float32(0.0)
        first = 0.0
        second = 0.0
        power_sum = 0.0
        log_sum = 0.0
        product = 1.0
        for k in range(bins):
            m32 = S[i, k]
            m = np.float64(m32)
            total += m
            total32 += m32
            first += m * freqs[k]
            second += m * freqs[k] * freqs[k]
            p = max(np.float64(m32 * m32), 1e-10)
            power_sum += p
            product *= p
            if k % 16 == 15:
                log_sum += np.log(product)
                product = 1.0
        log_sum += np.log(product)
        centroid = 0.0
        spread = 0.0
        rolloff = 0.0
        if total > 0.0:
            centroid = first / total
            spread = max(second / total - centroid * centroid, 0.0)
            threshold = np.float32(roll_percent) * total32
            running = np.float32(0.0)
            for k in range(bins):
                running += S[i, k]
                if running >= threshold:
                    rolloff = freqs[k]
                    break
        out[i, 0] = centroid
        out[i, 1] = np.sqrt(spread)
        out[i, 2] = rolloff
        out[i, 3] = np.exp(log_sum / bins) / (power_sum / bins)


@cache
def _chroma_basis(n_fft: int, tuning: float) -> np.ndarray:
    return librosa.filters.chroma(sr=SR, n_fft=n_fft, tuning=tuning, n_chroma=12).astype(np.float32)
