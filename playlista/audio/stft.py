"""A magnitude spectrogram computed one block of frames at a time.

A whole-track STFT of an hour at 22.05 kHz is 1.3 GB; its blocks are a few MB, and the
frames are those ``librosa.stft(y, center=True)`` gives, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import librosa
import numpy as np

from playlista.errors import InvalidInputError

TUNING_FRAME_STEP = 8
# Frame-wise descriptors run on blocks of frames: a few MB of temporaries that the allocator
# reuses, where whole-track float64 temporaries are mapped afresh and page-faulted on every
# call (measured on a 3-min track: 0.7 s whole, 0.3 s in blocks).
FRAME_BLOCK = 1024


class Spectrogram(NamedTuple):
    """A magnitude spectrogram handed out in blocks of frames, and every 8th frame of it."""

    tuning_frames: np.ndarray
    blocks: Callable[[], Iterator[np.ndarray]]


def blocks_of(
    *, y: np.ndarray | None, S: np.ndarray | None, n_fft: int, hop_length: int
) -> Spectrogram:
    """``S`` in blocks, or the STFT of ``y`` computed one block at a time.

    Blocks of ``y``'s STFT are the frames ``librosa.stft(y, center=True)`` would give, so
    that a long track never holds its whole spectrogram (1.3 GB for an hour at 22 kHz).
    """
    if S is not None:
        S = _checked_spectrogram(S)
        return Spectrogram(
            S[:, ::TUNING_FRAME_STEP],
            lambda: (S[:, i : i + FRAME_BLOCK] for i in range(0, S.shape[1], FRAME_BLOCK)),
        )
    if y is None:
        raise InvalidInputError("spectral() needs y or S")
    padded = np.pad(y, n_fft // 2)  # what center=True does, with librosa's zero padding
    n_frames = 1 + y.size // hop_length
    span = (FRAME_BLOCK - 1) * hop_length + n_fft

    def magnitude(samples: np.ndarray, hop: int) -> np.ndarray:
        return np.abs(librosa.stft(samples, n_fft=n_fft, hop_length=hop, center=False))

    return Spectrogram(
        magnitude(padded, hop_length * TUNING_FRAME_STEP),
        lambda: (
            magnitude(padded[i * hop_length : i * hop_length + span], hop_length)
            for i in range(0, n_frames, FRAME_BLOCK)
        ),
    )


def zero_crossing_rate(y: np.ndarray, *, frame_length: int, hop_length: int) -> float:
    """Mean of ``librosa.feature.zero_crossing_rate(y)`` over its frames, one block at a time.

    librosa marks crossings frame by frame: a boolean per sample per frame, four times the
    signal at 75 % overlap, for the whole track at once.
    """
    padded = np.pad(y, frame_length // 2, mode="edge")  # what center=True does
    n_frames = 1 + (padded.size - frame_length) // hop_length
    span = (FRAME_BLOCK - 1) * hop_length + frame_length
    total = 0.0
    for i in range(0, n_frames, FRAME_BLOCK):
        rates = librosa.feature.zero_crossing_rate(
            padded[i * hop_length : i * hop_length + span],
            frame_length=frame_length,
            hop_length=hop_length,
            center=False,
        )
        total += float(rates.sum())
    return total / n_frames


def _checked_spectrogram(S: np.ndarray) -> np.ndarray:
    if not (isinstance(S, np.ndarray) and S.ndim == 2 and S.shape[0] > 1 and S.shape[1] > 0):
        raise InvalidInputError("S must be a magnitude spectrogram of shape (1 + n_fft // 2, t)")
    if not (np.isfinite(S).all() and S.max() > 0):
        raise InvalidInputError("S must be finite and not all zero")
    return S
