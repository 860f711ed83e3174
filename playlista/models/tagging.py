"""A track's MusiCNN verdict: the chosen patches computed alone, every model run on them at once.

No TensorFlow is imported here: the models come in as a :class:`Taggers` object (in practice
:class:`playlista.models.runtime.MusicnnModels`, loaded once per worker by its plugin).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import soxr

from playlista.errors import InvalidInputError
from playlista.models.frontend import (
    PATCH_SPAN,
    SR,
    log_mel_patches,
    log_mel_stretches,
    patch_count,
    patch_start,
    spread_patches,
)
from playlista.records import ModelScores

# Input samples resampled beyond each end of a stretch, so that soxr's filter sees there what
# it sees in the whole track: 20 ms already gives the whole-track samples within 3e-7
# (bench/musicnn_frontend.py); four times that costs nothing.
MARGIN_SECONDS = 0.08


class Taggers(Protocol):
    """What the MusiCNN models offer: tags and embeddings per patch, every model in one call."""

    names: Sequence[str]

    def predict(self, patches: np.ndarray) -> Mapping[str, tuple[np.ndarray, np.ndarray]]: ...


def musicnn_scores(
    *, y: np.ndarray, sr: int, taggers: Taggers, cap: int
) -> tuple[ModelScores, ...]:
    """Mean tag probabilities and mean embedding of each model over one track.

    ``y`` [shape=(channels, n) or (n,)] is the decoded track at ``sr`` (the pipeline's mono
    22050 Hz will do). At most ``cap`` of its 3-s patches (0: all), spread over the track,
    are computed (:func:`musicnn_patches`) and go through every model in one call.
    """
    patches = musicnn_patches(y=y, sr=sr, cap=cap)
    return tuple(
        ModelScores(
            model=name,
            scores=tuple(float(v) for v in tags.mean(axis=0)),
            embedding=tuple(float(v) for v in embeddings.mean(axis=0)),
            patches=len(patches),
        )
        for name, (tags, embeddings) in taggers.predict(patches).items()
    )


def musicnn_patches(*, y: np.ndarray, sr: int, cap: int) -> np.ndarray:
    """The patches [shape=(k, 187, 96)] that :func:`spread_patches` picks, and only those.

    They equal ``log_mel_patches(y=to_mono_16k(y=y, sr=sr), sr=16000)[spread_patches(n,
    cap=cap)]`` within float rounding, without that whole-track resampling and spectrogram:
    each patch's stretch (plus a margin for the resampler's filter) is resampled and its 187
    frames computed alone. Tracks shorter than the cap take the whole-track path.
    """
    mono = _mono(y)
    n16 = len(mono) if sr == SR else round(len(mono) * SR / sr)
    n_patches = patch_count(n16)
    if cap <= 0 or cap >= n_patches:
        return log_mel_patches(y=to_mono_16k(y=mono, sr=sr), sr=SR)
    stretches = np.stack(
        [
            resample_stretch(mono, sr=sr, start=patch_start(k), n16=n16)
            for k in spread_patches(n_patches, cap=cap)
        ]
    )
    return log_mel_stretches(y=stretches, sr=SR)


def resample_stretch(mono: np.ndarray, *, sr: int, start: int, n16: int) -> np.ndarray:
    """Samples ``start`` to ``start + PATCH_SPAN`` of ``mono``'s 16-kHz resampling of ``n16``.

    Zeros outside ``[0, n16)``, as the whole-track STFT pads. The stretch read from ``mono``
    starts on a sample that falls exactly on a 16-kHz sample, so the result lines up with the
    whole-track resampling sample for sample.
    """
    stop = start + PATCH_SPAN
    lo, hi = max(start, 0), min(stop, n16)
    out = np.zeros(PATCH_SPAN, np.float32)
    if hi <= lo:
        return out
    if sr == SR:
        out[lo - start : hi - start] = mono[lo:hi]
        return out
    common = math.gcd(sr, SR)
    step_in, step_out = sr // common, SR // common  # 441 and 320 for 22050 Hz
    margin = math.ceil(MARGIN_SECONDS * SR / step_out)  # in steps
    first = max(lo // step_out - margin, 0)
    last = min(-(-hi // step_out) + margin, -(-len(mono) // step_in))
    part = soxr.resample(mono[first * step_in : last * step_in], sr, SR, quality="HQ")
    offset = first * step_out
    out[lo - start : hi - start] = part[lo - offset : hi - offset]
    return out


def to_mono_16k(*, y: np.ndarray, sr: int) -> np.ndarray:
    """``y`` [shape=(channels, n) or (n,)] at ``sr`` as mono float32 at 16 kHz [shape=(m,)].

    The channel mean, then soxr at high quality: what ``librosa.load(path, sr=16000)`` does.
    """
    mono = _mono(y)
    y16 = soxr.resample(mono, sr, SR, quality="HQ") if sr != SR else mono
    return np.ascontiguousarray(y16, dtype=np.float32)


def _mono(y: np.ndarray) -> np.ndarray:
    if y.ndim not in (1, 2) or y.shape[-1] == 0:
        raise InvalidInputError(f"samples must be (channels, n) or (n,), got {y.shape}")
    return np.ascontiguousarray(y if y.ndim == 1 else y.mean(axis=0), dtype=np.float32)


def warm_up(taggers: Taggers) -> None:
    """Run every model once on 4 s of seeded noise, so the first track pays no set-up."""
    noise = np.random.default_rng(0).standard_normal(4 * SR).astype(np.float32) * 0.1
    musicnn_scores(y=noise, sr=SR, taggers=taggers, cap=1)
