"""What the analysis keeps of a decoded file, measured block by block as it is read.

A :class:`Preparer` is fed the file's consecutive blocks at their native rate and channels.
On the original signal it measures what needs it: EBU R 128 loudness and range (BS.1770 on
the original channels) and the 400-ms blocks an album's loudness is combined from, the true
peak (BS.1770 Annex 2, every channel), energy, and the 10-ms envelope that danceability is
computed from.
It mixes each block to mono and resamples it to :data:`ANALYSIS_SR`, the one rate every other
descriptor and MusiCNN work from, so the whole file is never held at its native rate. A file
longer than the analysis cap keeps only evenly spaced excerpts of that mono signal.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import soxr

from playlista.audio import bs1770, measure
from playlista.errors import InvalidInputError

ANALYSIS_SR = 22050
ENVELOPE_SECONDS = 0.01
EXCERPTS = 10
# soxr's high quality, as librosa.load uses; its output matches a one-shot resample.
RESAMPLE_QUALITY = "HQ"


@dataclass(frozen=True, slots=True, eq=False)
class Decoded:
    """One file, decoded and prepared.

    ``samples`` [shape=(n,)] is the mono signal at ``sr`` (:data:`ANALYSIS_SR`), float32: the
    whole file, or when ``excerpts`` is not 0, that many evenly spaced excerpts of it joined
    end to end. Everything else was measured on the whole file at its native rate
    ``native_sr`` and ``channels``: its length ``seconds``, EBU R 128 integrated loudness and
    loudness range (None as :func:`playlista.audio.bs1770.loudness` gives them), the gated
    400-ms blocks binned as :func:`playlista.audio.bs1770.histogram` bins them, the true peak
    in dBTP (None for digital silence), ``energy``
    (RMS of the channel mean, full scale 1.0) and ``envelope`` [shape=(m,)], the standard
    deviation of the channel mean in consecutive 10-ms frames (what essentia's Danceability
    starts from).
    """

    samples: np.ndarray
    sr: int
    decoder: str
    codec: str | None
    native_sr: int
    channels: int
    seconds: float
    loudness_lufs: float | None
    loudness_range_lu: float | None
    energy: float
    envelope: np.ndarray = field(repr=False)
    excerpts: int = 0
    true_peak_dbtp: float | None = None
    loudness_histogram: tuple[tuple[int, int, float], ...] = field(default=(), repr=False)

    def note(self) -> str | None:
        """The warning a track analysed from excerpts carries; None for a whole track."""
        if not self.excerpts:
            return None
        return (
            f"tempo, key, rhythm, spectral and MusiCNN from {self.excerpts} excerpts "
            f"({self.samples.size / self.sr:.0f} s of {self.seconds:.0f} s)"
        )


class Preparer:
    """Turns consecutive native blocks of one file into a :class:`Decoded`.

    ``frames`` is the file's length as its container claims it (None if unknown); with a
    ``max_seconds`` cap below it, only :data:`EXCERPTS` evenly spaced excerpts of the mono
    signal are kept and resampled. Feed blocks [shape=(channels, k)] of float32 with
    :meth:`feed`, then call :meth:`result`.
    """

    def __init__(self, *, sr: int, channels: int, frames: int | None, max_seconds: float) -> None:
        self.sr = sr
        self.channels = channels
        self.frames = 0
        self._max_seconds = max_seconds
        self._meter = bs1770.LoudnessMeter(sr=sr, channels=min(channels, 2))
        self._pass = self._meter.new_pass(frame=max(2, int(ENVELOPE_SECONDS * sr)))
        self._peak = bs1770.TruePeakMeter(channels=channels)
        # The mono mix of folded channels: each fold's share of the original channels.
        self._mix = (math.ceil(channels / 2) / channels, (channels // 2) / channels)
        self._squares = 0.0
        self._envelope: list[np.ndarray] = []
        self._spans: list[tuple[int, int]] = []
        if max_seconds and frames and frames > max_seconds * sr:
            self._spans = excerpt_spans(frames, length=int(max_seconds * sr) // EXCERPTS)
        self._pieces: list[list[np.ndarray]] = [[] for _ in self._spans]
        self._stream = (
            None
            if self._spans
            else soxr.ResampleStream(sr, ANALYSIS_SR, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        )
        self._out: list[np.ndarray] = []

    def feed(self, block: np.ndarray) -> None:
        """Measure one block [shape=(channels, k)] and keep its part of the analysis signal."""
        start, self.frames = self.frames, self.frames + block.shape[1]
        steps, mono, squares, envelope = measure.measure_block(
            loudness_channels(block), self._pass, self._mix
        )
        self._meter.add_steps(steps)
        self._peak.feed(block)
        self._squares += squares
        self._envelope.append(envelope)
        if self._stream is not None:
            self._out.append(self._stream.resample_chunk(mono))
            return
        for pieces, (a, b) in zip(self._pieces, self._spans, strict=True):
            lo, hi = max(a, start), min(b, self.frames)
            if lo < hi:
                pieces.append(mono[lo - start : hi - start])

    def result(self, *, decoder: str, codec: str | None) -> Decoded:
        """Everything measured, and the analysis signal."""
        if self._stream is not None:
            self._out.append(self._stream.resample_chunk(np.empty(0, np.float32), last=True))
            samples = np.concatenate(self._out)
        else:
            samples = np.concatenate(
                [self._resample(np.concatenate(p)) for p in self._pieces if p]
                or [np.empty(0, np.float32)]
            )
        excerpts = len(self._spans)
        if not excerpts and self._max_seconds and samples.size > self._max_seconds * ANALYSIS_SR:
            # The container did not say how long the file is: excerpt it now, resampled.
            length = int(self._max_seconds * ANALYSIS_SR) // EXCERPTS
            spans = excerpt_spans(samples.size, length=length)
            samples = np.concatenate([samples[a:b] for a, b in spans])
            excerpts = len(spans)
        integrated, loudness_range = self._meter.result()
        return Decoded(
            samples=np.ascontiguousarray(samples, dtype=np.float32),
            sr=ANALYSIS_SR,
            decoder=decoder,
            codec=codec,
            native_sr=self.sr,
            channels=self.channels,
            seconds=self.frames / self.sr,
            loudness_lufs=integrated,
            loudness_range_lu=loudness_range,
            energy=math.sqrt(self._squares / self.frames) if self.frames else math.nan,
            envelope=np.concatenate(self._envelope or [np.empty(0, np.float32)]),
            excerpts=excerpts,
            true_peak_dbtp=self._peak.dbtp,
            loudness_histogram=self._meter.histogram(),
        )

    def _resample(self, mono: np.ndarray) -> np.ndarray:
        return np.asarray(
            soxr.resample(mono, self.sr, ANALYSIS_SR, quality=RESAMPLE_QUALITY), np.float32
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


def prepare_samples(y: np.ndarray, *, sr: int, max_seconds: float = 0.0) -> Decoded:
    """:class:`Decoded` of samples already in memory [shape=(channels, n) or (n,)], float32.

    What decoding a file holding ``y`` at ``sr`` Hz gives: for tests, benchmarks and the
    worker's warm-up.
    """
    if not isinstance(y, np.ndarray) or y.ndim not in (1, 2) or not y.size:
        raise InvalidInputError("y must be a non-empty numpy array of shape (n,) or (channels, n)")
    if not np.issubdtype(y.dtype, np.floating) or not np.isfinite(y).all():
        raise InvalidInputError("y must hold finite floating-point samples")
    if isinstance(sr, bool) or not isinstance(sr, numbers.Integral) or sr <= 0:
        raise InvalidInputError(f"sr must be a positive whole number of Hz, got {sr!r}")
    y = np.atleast_2d(np.asarray(y, dtype=np.float32))
    preparer = Preparer(sr=sr, channels=y.shape[0], frames=y.shape[1], max_seconds=max_seconds)
    preparer.feed(y)
    return preparer.result(decoder="memory", codec=None)
