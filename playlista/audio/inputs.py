"""What the descriptor functions accept: checks of their samples, rates and spectrograms."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import soxr

from playlista.audio.prepare import ANALYSIS_SR
from playlista.errors import InvalidInputError

SR = ANALYSIS_SR
MIN_SECONDS = 1.0
# Below this RMS the estimators report arbitrary values (essentia's beat tracker found 738 BPM
# in digital silence, a key profile says A minor), so they are not asked.
SILENCE_RMS = 10 ** (-80 / 20)


def check_rate(sr: object) -> None:
    if isinstance(sr, bool) or not isinstance(sr, numbers.Real) or not 0 < float(sr) < math.inf:
        raise InvalidInputError(f"sr must be a positive number of Hz, got {sr!r}")


def check_samples(y: object, *, sr: float | None, ndims: tuple[int, ...]) -> np.ndarray:
    """Return ``y`` if it is finite floating-point audio of an accepted shape, else raise."""
    if not isinstance(y, np.ndarray) or y.ndim not in ndims:
        shapes = " or ".join({1: "(n,)", 2: "(channels, n)"}[n] for n in ndims)
        raise InvalidInputError(f"y must be a numpy array of shape {shapes}")
    if not np.issubdtype(y.dtype, np.floating):
        raise InvalidInputError(f"y must hold floating-point samples, got {y.dtype}")
    if sr is not None:
        check_rate(sr)
        if y.shape[-1] < MIN_SECONDS * sr:
            seconds = y.shape[-1] / sr
            raise InvalidInputError(f"{seconds:.2f} s of audio is too short (< {MIN_SECONDS} s)")
    if y.size == 0 or not np.isfinite(y).all():
        raise InvalidInputError("y is empty or holds NaN or infinite samples")
    return y


def checked_spectrogram(S: object) -> np.ndarray:
    if not (isinstance(S, np.ndarray) and S.ndim == 2 and S.shape[1] > 1 and S.shape[0] > 0):
        raise InvalidInputError("S must be a magnitude spectrogram of shape (t, 1 + n_fft // 2)")
    if not (np.isfinite(S).all() and S.max() > 0):
        raise InvalidInputError("S must be finite and not all zero")
    return np.asarray(S, np.float32)


def analysis_input(y: object, *, sr: float) -> np.ndarray:
    """Mono float32 samples at 22.05 kHz, contiguous."""
    y = check_samples(y, sr=sr, ndims=(1,))
    y = np.ascontiguousarray(y, dtype=np.float32)
    if sr == SR:
        return y
    return np.ascontiguousarray(soxr.resample(y, sr, SR), dtype=np.float32)


def require_sound(y: np.ndarray) -> None:
    # A float32 dot product is cheap and far more precise than this threshold needs.
    rms = math.sqrt(float(np.dot(y, y)) / y.size)
    if rms < SILENCE_RMS:
        raise InvalidInputError(f"silent input (RMS {rms:.1e} < -80 dBFS)")


def finite(value: Any, what: str) -> Any:
    """``value`` as a float, or an array as float64, if every element is finite; else raise."""
    if not np.isfinite(value).all():
        raise InvalidInputError(f"{what} is not finite")
    return np.asarray(value, dtype=np.float64) if np.ndim(value) else float(value)
