"""The time-frequency front end every descriptor shares: two STFTs of the mono analysis signal.

One magnitude spectrogram (2048-point frames every 512 samples at 22.05 kHz, as
``librosa.stft`` computes them), its 128-band mel power and log-mel, and the onset envelope of
that (:class:`FrontEnd`) feed the spectral shape, MFCC, chroma, the key and the tempo. One finer
complex spectrogram (512-point frames every 256 samples, 86 frames a second: the time grid
essentia's onset detectors were designed on) gives the onset detection functions the onset
rate counts. Both are computed one block of frames at a time into preallocated arrays, in
float32.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import librosa
import numba
import numpy as np
import scipy.fft
import scipy.signal

from playlista.errors import InvalidInputError

SR = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
FRAME_RATE = SR / HOP_LENGTH  # 43.07 frames per second
ONSET_N_FFT = 512
ONSET_HOP = 256
FRAME_BLOCK = 512  # frames per FFT call: a few MB of temporaries, reused


class FrontEnd(NamedTuple):
    """The shared arrays of one mono 22.05 kHz signal; ``t`` is the number of STFT frames.

    The spectrograms are in librosa's layout, one column per frame, and frame-major in memory
    (``S.T`` is C-contiguous), which is how the frame-wise descriptors read them.
    """

    y: np.ndarray  # shape (n,), float32
    S: np.ndarray  # shape (1025, t): |STFT|, n_fft 2048, hop 512, Hann, centred
    mel: np.ndarray  # shape (128, t): mel power, mel_basis() @ S**2
    mel_db: np.ndarray  # shape (128, t): librosa.power_to_db(mel)
    onset_envelope: np.ndarray  # shape (t,): librosa.onset.onset_strength(S=mel_db)


class OnsetFunctions(NamedTuple):
    """Onset detection functions [shape=(t,)] at ``frame_rate`` frames per second.

    ``hfc`` is the high-frequency content (essentia's 'Brossier' type: the magnitude spectrum
    weighted by frequency), ``complex`` the complex-domain spectral difference (Bello et al.,
    as essentia's OnsetDetection 'complex' computes it), both from Hann-windowed frames
    normalised as essentia's ``Windowing`` does.
    """

    hfc: np.ndarray
    complex: np.ndarray
    frame_rate: float


def front_end(*, y: np.ndarray, sr: int = SR) -> FrontEnd:
    """The front end of mono float ``y`` [shape=(n,)] sampled at 22.05 kHz."""
    if sr != SR:
        raise InvalidInputError(f"the front end is defined at {SR} Hz, got sr={sr!r}")
    if not isinstance(y, np.ndarray) or y.ndim != 1 or not np.issubdtype(y.dtype, np.floating):
        raise InvalidInputError("y must be a float numpy array of shape (n,)")
    if y.size < N_FFT or not np.isfinite(y).all():
        raise InvalidInputError("y is shorter than one frame or holds NaN or infinite samples")
    y = np.ascontiguousarray(y, dtype=np.float32)
    frames = magnitude_spectrogram(y=y)  # (t, 1025)
    mel = _mel_bands(np.square(frames))  # (t, 128)
    mel_db = power_to_db(mel)
    return FrontEnd(y, frames.T, mel.T, mel_db.T, onset_envelope(mel_db=mel_db.T))


def power_to_db(power: np.ndarray) -> np.ndarray:
    """``librosa.power_to_db(power)``: 10 log10, floored at 1e-10 and at 80 dB below the peak."""
    db = 10.0 * np.log10(np.maximum(power, np.float32(1e-10)))
    return np.maximum(db, db.max() - np.float32(80.0))


def onset_envelope(*, mel_db: np.ndarray) -> np.ndarray:
    """``librosa.onset.onset_strength(S=mel_db)`` [shape=(t,)] of log-mel ``mel_db`` [(128, t)].

    The mean over bands of the rise from one frame to the next, delayed by three frames (one
    for the difference, two for centred 2048-point frames), as librosa aligns it.
    """
    rise = np.maximum(mel_db.T[1:] - mel_db.T[:-1], np.float32(0)).mean(axis=1)
    delay = 1 + N_FFT // (2 * HOP_LENGTH)
    return np.concatenate([np.zeros(delay, np.float32), rise])[: mel_db.shape[1]].astype(np.float32)


@cache
def mel_basis(n_fft: int = N_FFT) -> np.ndarray:
    """librosa's 128-band mel filter bank [shape=(128, 1 + n_fft // 2)], float32."""
    return librosa.filters.mel(sr=SR, n_fft=n_fft, n_mels=N_MELS).astype(np.float32)


def magnitude_spectrogram(
    *, y: np.ndarray, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH
) -> np.ndarray:
    """|STFT| of mono float32 ``y`` [shape=(n,)]: shape (1 + n // hop_length, 1 + n_fft // 2).

    Frames are those of ``librosa.stft(y, n_fft=n_fft, hop_length=hop_length)`` (a periodic
    Hann window, centred frames, zero padding), transposed: one row per frame.
    """
    y = _checked(y)
    n_frames = 1 + y.size // hop_length
    magnitude = np.empty((n_frames, 1 + n_fft // 2), np.float32)
    window = _window(n_fft)
    frames = _frames(y, n_fft, hop_length)
    for start in range(0, n_frames, FRAME_BLOCK):
        stop = min(start + FRAME_BLOCK, n_frames)
        np.abs(scipy.fft.rfft(frames[start:stop] * window, axis=1), out=magnitude[start:stop])
    return magnitude


def onset_functions(*, y: np.ndarray, sr: float = SR) -> OnsetFunctions:
    """The HFC and complex-domain onset detection functions of mono ``y`` [shape=(n,)].

    512-point frames every 256 samples at 22.05 kHz: the frame rate (86.13 per second) and
    frame length (23 ms) of essentia's OnsetRate at 44.1 kHz.
    """
    y = _checked(y)
    n_frames = 1 + y.size // ONSET_HOP
    hfc = np.empty(n_frames, np.float32)
    complex_domain = np.empty(n_frames, np.float32)
    # essentia's Windowing: a symmetric Hann window scaled to an area of 2.
    symmetric = scipy.signal.get_window("hann", ONSET_N_FFT, fftbins=False)
    window = (symmetric * (2.0 / symmetric.sum())).astype(np.float32)
    frames = _frames(y, ONSET_N_FFT, ONSET_HOP)
    bin_hz = float(np.float32(sr / ONSET_N_FFT))
    previous = np.zeros((3, 1 + ONSET_N_FFT // 2), np.complex64)
    previous[1:] = 1  # phase 0 before the first frame
    for start in range(0, n_frames, FRAME_BLOCK):
        stop = min(start + FRAME_BLOCK, n_frames)
        spectrum = scipy.fft.rfft(frames[start:stop] * window, axis=1)
        _onset_kernel(spectrum, previous, bin_hz, hfc[start:stop], complex_domain[start:stop])
    return OnsetFunctions(hfc=hfc, complex=complex_domain, frame_rate=sr / ONSET_HOP)


@numba.njit(cache=True, nogil=True)
def _onset_kernel(
    X: np.ndarray, previous: np.ndarray, bin_hz: float, hfc: np.ndarray, distance: np.ndarray
) -> None:  # pragma: no cover - compiled
    """HFC and Bello's complex-domain difference of each frame of ``X`` [shape=(t, bins)].

    Each bin's prediction has the previous frame's magnitude ``a1`` and the phase extrapolated
    from the two previous frames, ``u1 * u1 * conj(u2)`` in unit phasors (phase 0 before the
    first frame); its distance from the bin ``x`` (magnitude ``a0``) is
    ``sqrt(a1**2 + a0**2 - 2 a1 Re(u1 u1 conj(u2) conj(x)))``. ``previous`` [shape=(3, bins)]
    holds ``a1``, ``u1`` and ``u2`` across calls and is updated.
    """
    t, bins = X.shape
    for i in range(t):
        h = 0.0
        d = 0.0
        for k in range(bins):
            x = X[i, k]
            a0 = np.sqrt(x.real * x.real + x.imag * x.imag)
            a1 = previous[0, k].real
            u1 = previous[1, k]
            u2 = previous[2, k]
            turn = u1 * u1 * u2.conjugate()
            along = turn.real * x.real + turn.imag * x.imag  # Re(turn * conj(x))
            d += np.sqrt(max(a1 * a1 + a0 * a0 - 2.0 * a1 * along, 0.0))
            h += k * a0
            previous[2, k] = u1
            previous[1, k] = x / a0 if a0 > 0.0 else 1.0 + 0.0j
            previous[0, k] = a0
        hfc[i] = h * bin_hz
        distance[i] = d


def _mel_bands(power: np.ndarray, n_fft: int = N_FFT) -> np.ndarray:
    """``librosa.feature.melspectrogram(S=power)`` [shape=(t, 128)], over each band's bins only."""
    basis = mel_basis(n_fft)
    lo, hi = _mel_support(n_fft)
    out = np.empty((power.shape[0], basis.shape[0]), np.float32)
    _banded_product(power, basis, lo, hi, out)
    return out


@cache
def _mel_support(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """The first and one-past-last bin of each mel band's triangle."""
    nonzero = mel_basis(n_fft) > 0
    lo = np.argmax(nonzero, axis=1)
    hi = nonzero.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    return lo.astype(np.int64), np.where(nonzero.any(axis=1), hi, lo).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _banded_product(
    power: np.ndarray, basis: np.ndarray, lo: np.ndarray, hi: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """``out = power @ basis.T`` where row ``b`` of ``basis`` is zero outside [lo[b], hi[b])."""
    for i in range(power.shape[0]):
        for band in range(basis.shape[0]):
            acc = np.float32(0.0)
            for k in range(lo[band], hi[band]):
                acc += basis[band, k] * power[i, k]
            out[i, band] = acc


def _checked(y: object) -> np.ndarray:
    if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype != np.float32:
        raise InvalidInputError("the front end needs mono float32 samples of shape (n,)")
    return y


def _window(n_fft: int) -> np.ndarray:
    return scipy.signal.get_window("hann", n_fft, fftbins=True).astype(np.float32)


def _frames(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Centred frames of ``y`` as librosa makes them (zero padding), a view [shape=(t, n_fft)]."""
    padded = np.pad(y, n_fft // 2)
    return np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
