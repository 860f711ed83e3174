"""Long files read block by block: whole-file loudness and energy, and evenly spaced excerpts.

A file longer than the analysis cap is never held whole. It is read a few seconds at a time;
each block feeds an incremental BS.1770 meter and an energy sum, so loudness, loudness range
and energy are those of the whole file, exactly; and the parts of it that fall inside
:data:`EXCERPTS` evenly spaced excerpts are copied out. Everything else (tempo, key, rhythm,
spectral descriptors, MusiCNN) is computed on the excerpts, at most the cap's length of audio.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from playlista.audio import bs1770

EXCERPTS = 10
BLOCK_SECONDS = 4.0
SQUARES_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class WholeFile:
    """What was measured on the whole of a file of which only excerpts were kept.

    ``seconds`` is its length; ``loudness_lufs`` and ``loudness_range_lu`` are EBU R 128's
    (None as :func:`playlista.audio.features.loudness` would give them), ``true_peak_dbtp``
    and ``histogram`` BS.1770's (see :mod:`playlista.audio.bs1770`); ``energy`` is the RMS
    of its channel mean; ``excerpts`` is how many excerpts, ``excerpt_seconds`` their total.
    """

    seconds: float
    loudness_lufs: float | None
    loudness_range_lu: float | None
    energy: float
    excerpts: int
    excerpt_seconds: float
    true_peak_dbtp: float | None = None
    histogram: tuple[tuple[int, int, float], ...] = ()

    def note(self) -> str:
        """The warning a track analysed from excerpts carries."""
        return (
            f"tempo, key, rhythm, spectral and MusiCNN from {self.excerpts} excerpts "
            f"({self.excerpt_seconds:.0f} s of {self.seconds:.0f} s)"
        )


def channel_mean(y: np.ndarray) -> np.ndarray:
    """Channel mean [shape=(n,)] of ``y`` [shape=(channels, n)], float32.

    A loop over rows beats ``mean`` on strided input and makes no float64 copy.
    """
    mono = y[0].astype(np.float32, copy=True)
    for channel in y[1:]:
        mono += channel
    if y.shape[0] > 1:
        mono *= np.float32(1.0 / y.shape[0])
    return mono


def sum_of_squares(mono: np.ndarray) -> float:
    """Sum of squares of float32 ``mono`` [shape=(n,)], accumulated in float64 per block:
    as precise as squaring in float64, without a float64 copy of the whole track."""
    return sum(
        float(np.dot(block, block.astype(np.float64)))
        for block in (mono[i : i + SQUARES_BLOCK] for i in range(0, mono.size, SQUARES_BLOCK))
    )


def loudness_channels(y: np.ndarray) -> np.ndarray:
    """``y`` [shape=(channels, n)] as BS.1770 measures it here [shape=(1 or 2, n)].

    One channel stays alone (mono); more than two are folded into two, even-indexed channels
    left and odd right, as the layout is unknown.
    """
    if y.shape[0] > 2:
        return np.stack([channel_mean(y[0::2]), channel_mean(y[1::2])])
    return y


def excerpt_spans(frames: int, *, length: int, n: int = EXCERPTS) -> list[tuple[int, int]]:
    """``n`` spans (start, stop) of ``length`` frames, centred in ``n`` equal parts of ``frames``.

    They do not overlap when ``n * length <= frames``.
    """
    spans = []
    for i in range(n):
        centre = (2 * i + 1) * frames // (2 * n)
        start = min(max(0, centre - length // 2), max(0, frames - length))
        spans.append((start, start + length))
    return spans


def measure_and_excerpt(
    blocks: Iterable[np.ndarray], *, frames: int, channels: int, sr: int, max_seconds: float
) -> tuple[np.ndarray, WholeFile]:
    """Whole-file measures and excerpts of a file given as consecutive ``blocks``.

    ``blocks`` [shape=(channels, k) each] are float32 and together ``frames`` long, at ``sr``
    Hz. Returns the :data:`EXCERPTS` excerpts concatenated [shape=(channels, m)], with
    ``m <= max_seconds * sr``, and the :class:`WholeFile` measures. The K-weighting filter is
    designed at ``sr`` from BS.1770's analogue prototype, as on the whole-file path.
    A non-finite sample makes ``energy`` non-finite.
    """
    length = int(max_seconds * sr) // EXCERPTS
    spans = excerpt_spans(frames, length=length)
    out = np.zeros((channels, length * len(spans)), dtype=np.float32)
    meter = bs1770.LoudnessMeter(sr=sr, channels=min(channels, 2))
    peak = bs1770.TruePeakMeter(channels=channels)
    energy, start = 0.0, 0
    for block in blocks:
        stop = start + block.shape[1]
        meter.feed(loudness_channels(block))
        peak.feed(block)
        energy += sum_of_squares(channel_mean(block))
        for i, (a, b) in enumerate(spans):
            lo, hi = max(a, start), min(b, stop)
            if lo < hi:
                at = i * length + lo - a
                out[:, at : at + hi - lo] = block[:, lo - start : hi - start]
        start = stop
    integrated, loudness_range = meter.result()
    whole = WholeFile(
        seconds=start / sr,
        loudness_lufs=integrated,
        loudness_range_lu=loudness_range,
        energy=math.sqrt(energy / start) if start else math.nan,
        excerpts=len(spans),
        excerpt_seconds=out.shape[1] / sr,
        true_peak_dbtp=peak.dbtp,
        histogram=meter.histogram(),
    )
    return out, whole
