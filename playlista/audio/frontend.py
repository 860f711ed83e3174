"""The shared time-frequency front end that the tempo and key estimators read.

One STFT of mono 22.05 kHz samples feeds everything: its magnitude ``S``, the 128-band mel
power computed from it and the onset envelope computed from that. The analysis pipeline
computes these once per track; :func:`front_end` is the same definition for callers that start
from samples (tests, benchmarks).
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import librosa
import numpy as np

from playlista.errors import InvalidInputError

SR = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
FRAME_RATE = SR / HOP_LENGTH  # 43.07 frames per second


class FrontEnd(NamedTuple):
    """Arrays of one mono 22.05 kHz signal; ``t`` is the number of STFT frames."""

    y: np.ndarray  # shape (n,), float32
    S: np.ndarray  # shape (1025, t): |STFT|, n_fft 2048, hop 512, Hann, centred
    mel: np.ndarray  # shape (128, t): mel power, mel_basis() @ S**2
    onset_envelope: np.ndarray  # shape (t,): onset_strength of power_to_db(mel)


@cache
def mel_basis() -> np.ndarray:
    """librosa's mel filter bank for the front end [shape=(128, 1025)], float32."""
    return librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


def front_end(*, y: np.ndarray, sr: int = SR) -> FrontEnd:
    """The front end of mono float ``y`` [shape=(n,)] sampled at 22.05 kHz."""
    if sr != SR:
        raise InvalidInputError(f"the front end is defined at {SR} Hz, got sr={sr!r}")
    if not isinstance(y, np.ndarray) or y.ndim != 1 or not np.issubdtype(y.dtype, np.floating):
        raise InvalidInputError("y must be a float numpy array of shape (n,)")
    if y.size < N_FFT or not np.isfinite(y).all():
        raise InvalidInputError("y is shorter than one frame or holds NaN or infinite samples")
    y = np.ascontiguousarray(y, dtype=np.float32)
    S = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH, window="hann", center=True))
    mel = mel_basis() @ (S * S)
    envelope = librosa.onset.onset_strength(
        S=librosa.power_to_db(mel), sr=SR, hop_length=HOP_LENGTH
    )
    return FrontEnd(y=y, S=S, mel=mel, onset_envelope=envelope.astype(np.float32))
