"""A track's MusiCNN verdict: its audio cut into patches once, every model run on them.

No TensorFlow is imported here: the models come in as :class:`Tagger` objects (in practice
:class:`playlista.models.musicnn.MusiCNN`, loaded once per worker by its plugin).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np
import soxr

from playlista.errors import InvalidInputError
from playlista.models.frontend import SR, log_mel_patches, spread_patches
from playlista.records import ModelScores


class Tagger(Protocol):
    """What a MusiCNN model offers: tag probabilities and embeddings per patch."""

    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def musicnn_scores(
    *, y: np.ndarray, sr: int, taggers: Mapping[str, Tagger], cap: int
) -> tuple[ModelScores, ...]:
    """Mean tag probabilities and mean embedding of each model over one track.

    ``y`` [shape=(channels, n) or (n,)] is the decoded track at ``sr``. It is mixed to mono
    and resampled to 16 kHz as ``librosa.load(path, sr=16000)`` would (channel mean, then
    soxr at high quality), cut into 3-s patches, and at most ``cap`` of them (0: all),
    spread over the track, go through every model.
    """
    if y.ndim not in (1, 2) or y.shape[-1] == 0:
        raise InvalidInputError(f"samples must be (channels, n) or (n,), got {y.shape}")
    mono = np.asarray(y if y.ndim == 1 else y.mean(axis=0), dtype=np.float32)
    y16 = soxr.resample(mono, sr, SR, quality="HQ") if sr != SR else mono
    patches = log_mel_patches(y=np.ascontiguousarray(y16, dtype=np.float32), sr=SR)
    chosen = patches[spread_patches(len(patches), cap=cap)]
    verdicts = []
    for name, tagger in taggers.items():
        tags, embeddings = tagger.predict(chosen)
        verdicts.append(
            ModelScores(
                model=name,
                scores=tuple(float(v) for v in tags.mean(axis=0)),
                embedding=tuple(float(v) for v in embeddings.mean(axis=0)),
                patches=len(chosen),
            )
        )
    return tuple(verdicts)


def warm_up(taggers: Mapping[str, Tagger]) -> None:
    """Run every model once on 4 s of seeded noise, so the first track pays no set-up."""
    noise = np.random.default_rng(0).standard_normal(4 * SR).astype(np.float32) * 0.1
    musicnn_scores(y=noise, sr=SR, taggers=taggers, cap=1)
