"""MusiCNN's input and vocabulary, without TensorFlow: what the flow process also needs.

:func:`log_mel_patches` computes the models' input from 16 kHz samples and
:func:`spread_patches` picks a few patches across a track; ``LABELS`` are the two models'
tag vocabularies, in output order.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import librosa
import numpy as np
import scipy.fft

from playlista.errors import InvalidInputError

ModelName = Literal["MTT_musicnn", "MSD_musicnn"]
MODEL_NAMES: tuple[ModelName, ...] = ("MTT_musicnn", "MSD_musicnn")

SR = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s
N_TAGS = 50
EMBEDDING_SIZE = 200

# In output order, as in musicnn/configuration.py.
LABELS: dict[str, tuple[str, ...]] = {
    "MTT_musicnn": (
        "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock",
        "fast", "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian",
        "opera", "male", "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet",
        "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man",
        "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats",
        "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
    ),
    "MSD_musicnn": (
        "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
        "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
        "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s",
        "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
        "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
        "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal",
        "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy",
    ),
}  # fmt: skip


def log_mel_patches(*, y: np.ndarray, sr: int) -> np.ndarray:
    """MusiCNN's input: log-compressed mel spectrogram patches of mono ``y`` [shape=(n,)].

    ``y`` holds float32 samples at exactly ``sr`` = 16000 Hz. Returns [shape=(n_patches, 187,
    96)] float32: consecutive non-overlapping 3-second patches of ``log10(10000 * mel + 1)``,
    mel power rounded to float16 first, as musicnn's ``extractor.batch_data`` computed them;
    the trailing frames that do not fill a patch are dropped, as there. A clip shorter than
    one patch (2.98 s), where ``batch_data`` fails, is repeated until it fills one (the
    "repeat-pad" the models' training configuration names for short clips): at least one
    patch is always returned.
    """
    _check_16k(y, sr)
    log_mel = _log_compress(
        librosa.feature.melspectrogram(y=y, sr=SR, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS)
    )
    if len(log_mel) < PATCH_FRAMES:
        log_mel = np.tile(log_mel, (math.ceil(PATCH_FRAMES / len(log_mel)), 1))
    n_patches = len(log_mel) // PATCH_FRAMES
    return log_mel[: n_patches * PATCH_FRAMES].reshape(n_patches, PATCH_FRAMES, N_MELS)


def patch_count(n_samples: int) -> int:
    """How many patches :func:`log_mel_patches` cuts from ``n_samples`` samples at 16 kHz."""
    return max(1, (1 + n_samples // HOP) // PATCH_FRAMES)


# Samples at 16 kHz around patch ``k`` that its frames see: frame f is centred on sample
# HOP * f, and its window spans N_FFT samples.
PATCH_SPAN = (PATCH_FRAMES - 1) * HOP + N_FFT


def patch_start(k: int) -> int:
    """First 16-kHz sample (negative: before the track) that patch ``k``'s frames read."""
    return k * PATCH_FRAMES * HOP - N_FFT // 2


def log_mel_stretches(*, y: np.ndarray, sr: int) -> np.ndarray:
    """Patches [shape=(k, 187, 96)] from the stretches ``y`` [shape=(k, PATCH_SPAN)] they read.

    Row i is the stretch from :func:`patch_start` on of one patch, zeros where it lies outside
    the track (as the whole-track STFT pads): the frames are those of :func:`log_mel_patches`.
    """
    if sr != SR:
        raise InvalidInputError(f"MusiCNN needs samples at {SR} Hz, got {sr} Hz")
    if y.ndim != 2 or y.shape[1] != PATCH_SPAN or y.dtype != np.float32:
        raise InvalidInputError(f"stretches must be float32 (k, {PATCH_SPAN}), got {y.shape}")
    if not np.isfinite(y).all():
        raise InvalidInputError("MusiCNN needs finite samples")
    # librosa.stft's arithmetic (a float64 window, the FFT in float64, stored as complex64),
    # without its per-call set-up; the mel projection is one matmul instead of librosa's
    # einsum, which numpy runs ~100x slower on a few patches. Same values within rounding.
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT, axis=1)[:, ::HOP]
    spectrum = scipy.fft.rfft(_hann() * frames, axis=-1).astype(np.complex64)
    power = np.abs(spectrum) ** 2  # (k, 187, 257)
    mel = np.matmul(power, _mel_basis().T)  # (k, 187, 96)
    return _log_compress(np.swapaxes(mel, -1, -2))


@functools.cache
def _hann() -> np.ndarray:
    return librosa.filters.get_window("hann", N_FFT, fftbins=True)


@functools.cache
def _mel_basis() -> np.ndarray:
    return librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS)


def _check_16k(y: np.ndarray, sr: int) -> None:
    if sr != SR:
        raise InvalidInputError(f"MusiCNN needs samples at {SR} Hz, got {sr} Hz")
    if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype != np.float32:
        raise InvalidInputError("MusiCNN needs mono float32 samples of shape (n,)")
    if y.size == 0 or not np.isfinite(y).all():
        raise InvalidInputError("MusiCNN needs at least one sample, all of them finite")


def _log_compress(mel: np.ndarray) -> np.ndarray:
    """``log10(10000 * mel + 1)`` [shape=(..., frames, 96)] of mel power [(..., 96, frames)]."""
    # The models were trained on float16 spectrograms. numpy 1.x computed ``10000 * mel16`` in
    # float32 (value-based casting); numpy 2 keeps float16, which overflows to inf above 6.55,
    # common in loud music, and the network then gives one constant for every such patch.
    # So the float32 is explicit here. The clip keeps float16's own overflow out of the cast.
    mel16 = np.minimum(np.swapaxes(mel, -1, -2), np.finfo(np.float16).max).astype(np.float16)
    return np.log10(np.float32(10000) * mel16.astype(np.float32) + np.float32(1))


def spread_patches(n_patches: int, *, cap: int) -> np.ndarray:
    """Indices [shape=(min(n_patches, cap),)] of patches spread evenly over a whole track.

    The track is cut into ``cap`` equal parts and the patch at the middle of each is taken
    (one patch: the middle one); ``cap`` <= 0 takes every patch. The first and last patch,
    often silence or a fade, are left out: measured on corpus tracks, a few patches that
    include them give a mean embedding much further from the whole track's.
    """
    if n_patches < 1:
        raise InvalidInputError(f"need at least one patch, got {n_patches}")
    if cap <= 0 or cap >= n_patches:
        return np.arange(n_patches)
    # Parts longer than one patch, so the indices are distinct.
    return ((np.arange(cap) + 0.5) * n_patches / cap).astype(np.intp)
