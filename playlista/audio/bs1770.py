"""Loudness by ITU-R BS.1770-4 and EBU R 128: K-weighting, gating, loudness range, true peak.

Integrated loudness follows BS.1770-4 (400-ms blocks every 100 ms, an absolute gate at
-70 LUFS, then a relative one 10 LU down); the loudness range follows EBU Tech 3342 (3-s
short-term blocks, a relative gate 20 LU down, the spread from the 10th to the 95th
percentile); the true peak follows BS.1770-4 Annex 2 (4x oversampling). An album's loudness
is the gating of all its tracks' blocks together, combined from per-track histograms
(:func:`histogram`). The meters take the signal in blocks, carrying their state, so memory
stays flat however long the track, and a file can be measured while it is read. The
K-weighting is a compiled loop (:mod:`playlista.audio.measure`) that keeps only each 100-ms
step's energy, never a filtered copy of the signal:

    loudness = LoudnessMeter(sr=sr, channels=2)
    peak = TruePeakMeter(channels=2)
    for block in blocks:  # float32, shape (2, k), any k
        loudness.feed(block)
        peak.feed(block)
    (lufs, lra), histogram, dbtp = loudness.result(), loudness.histogram(), peak.dbtp

(The loudness takes one or two channels, more folded into two first, as
``prepare.loudness_channels`` does; the true peak takes every channel as it is.)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from playlista.audio import interpolation, measure

SHELF_HZ, SHELF_Q, SHELF_DB = 1681.974450955533, 0.7071752369554196, 3.999843853973347
HIGH_PASS_HZ, HIGH_PASS_Q = 38.13547087602444, 0.5003270373238773
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
RANGE_RELATIVE_GATE_LU = -20.0
RANGE_PERCENTILES = (10, 95)
MOMENTARY_SECONDS = 0.4
SHORT_TERM_SECONDS = 3.0
BLOCK_STEP_SECONDS = 0.1
LOUDNESS_CHUNK_STEPS = 100  # filter 10 s at a time
# An album's loudness is combined from its tracks' gated blocks in bins this wide (LU).
HISTOGRAM_BIN_LU = 0.1
_CONTEXT = interpolation.TAPS - 1  # samples before a point that its value depends on


def loudness(channels: np.ndarray, sr: float) -> tuple[float | None, float | None]:
    """Integrated loudness (LUFS) and loudness range (LU) of ``channels`` [shape=(1 or 2, n)].

    Channels are summed at weight 1: one channel alone is BS.1770's mono. The loudness is
    None when no block passes the absolute gate; the range is None when no 3-s block does.
    """
    return LoudnessMeter.of(channels, sr=sr).result()


def true_peak(y: np.ndarray, sr: float) -> float | None:
    """True peak (dBTP) of ``y`` [shape=(channels, n)] at ``sr`` Hz: see :class:`TruePeakMeter`."""
    meter = TruePeakMeter(channels=y.shape[0])
    for block in _chunks(y, round(LOUDNESS_CHUNK_STEPS * BLOCK_STEP_SECONDS * sr)):
        meter.feed(block)
    return meter.dbtp


class LoudnessMeter:
    """:func:`loudness` of a signal fed in consecutive blocks, never held whole.

    Feed blocks [shape=(channels, k)], any ``k``, then read :meth:`result`: the same values
    as :func:`loudness` on the blocks concatenated; :meth:`histogram` gives what an album's
    loudness is combined from. It keeps the filter's state, the energy of
    an unfinished 100-ms step, and one float per finished step (~300 kB for 2 hours). A pass
    that filters the blocks itself (:mod:`playlista.audio.measure`) hands it the steps with
    :meth:`add_steps` instead.
    """

    def __init__(self, *, sr: float, channels: int) -> None:
        self.sr = sr
        self.step = round(BLOCK_STEP_SECONDS * sr)
        self.channels = channels
        self._pass: measure.Pass | None = None
        self._steps: list[np.ndarray] = []

    @classmethod
    def of(cls, channels: np.ndarray, *, sr: float) -> LoudnessMeter:
        """A meter fed the whole of ``channels`` [shape=(1 or 2, n)], 10 s at a time."""
        meter = cls(sr=sr, channels=channels.shape[0])
        for block in _chunks(channels, LOUDNESS_CHUNK_STEPS * meter.step):
            meter.feed(block)
        return meter

    def new_pass(self, *, frame: int) -> measure.Pass:
        """The filter state of a pass over this meter's signal, 10-ms frames ``frame`` long."""
        return measure.Pass(
            sos=k_weighting(self.sr), channels=self.channels, step=self.step, frame=frame
        )

    def feed(self, block: np.ndarray) -> None:
        """Filter one block [shape=(channels, k)] and keep its energy per finished step."""
        if self._pass is None:
            self._pass = self.new_pass(frame=max(2, round(0.01 * self.sr)))
        steps, _, _, _ = measure.measure_block(block, self._pass)
        self._steps.append(steps)

    def add_steps(self, energies: np.ndarray) -> None:
        """Take the K-weighted energies of finished 100-ms steps, in order."""
        self._steps.append(energies)

    def result(self) -> tuple[float | None, float | None]:
        """Integrated loudness (LUFS) and loudness range (LU) of everything fed so far.

        A last partial 100-ms step is left out, as in :func:`loudness`.
        """
        steps = self._all_steps()
        integrated = _gated_loudness(self.blocks(), RELATIVE_GATE_LU)
        if integrated is None:
            return None, None
        short_term = _block_means(steps, self.step, SHORT_TERM_SECONDS)
        return integrated, _loudness_range(short_term)

    def blocks(self) -> np.ndarray:
        """Mean power [shape=(n,)] of each 400-ms block so far, one every 100 ms."""
        return _block_means(self._all_steps(), self.step, MOMENTARY_SECONDS)

    def histogram(self) -> tuple[tuple[int, int, float], ...]:
        """The 400-ms blocks above the absolute gate, binned: see :func:`histogram`."""
        return histogram(self.blocks())

    def _all_steps(self) -> np.ndarray:
        if len(self._steps) > 1:
            self._steps = [np.concatenate(self._steps)]
        return self._steps[0] if self._steps else np.empty(0)


class TruePeakMeter:
    """True peak (ITU-R BS.1770-4 Annex 2) of a signal fed in consecutive blocks.

    The signal is oversampled 4 times through the Annex's own 48-tap interpolation filter
    (:mod:`playlista.audio.interpolation`); the peak is the largest magnitude of the
    oversampled signal or of the samples themselves, over every channel, as if silence
    preceded and followed the signal. Feed float blocks [shape=(channels, k)], any ``k``,
    then read :attr:`peak` (linear) or :attr:`dbtp`: the same values however the signal
    was cut. Only the few stretches that could beat the peak found so far are oversampled.
    """

    def __init__(self, *, channels: int) -> None:
        # The samples whose points are not interpolated yet, after the ones before them
        # that the filter needs (its context): silence at the start.
        self._held = np.zeros((channels, _CONTEXT), dtype=np.float32)
        self._peak = 0.0

    def feed(self, block: np.ndarray) -> None:
        """Take the next block [shape=(channels, k)] of the signal."""
        x = np.asarray(block, dtype=np.float32)
        size = interpolation.SUB_BLOCK
        if x.shape[1] < _CONTEXT + size:  # too short to cut a sub-block from: keep it
            x = np.concatenate([self._held, x], axis=1)
        else:  # the points whose windows reach back into what was held, then the block's
            head = np.concatenate([self._held, x[:, :_CONTEXT]], axis=1)
            self._peak = max(self._peak, interpolation.every_point_peak(head))
        subs = (x.shape[1] - _CONTEXT) // size
        if subs:
            self._peak = interpolation.peak_beyond(x, subs, floor=self._peak)
        self._held = x[:, subs * size :].copy()

    @property
    def peak(self) -> float:
        """The true peak as a linear amplitude (full scale 1.0); 0.0 for silence."""
        ending = np.concatenate([self._held, np.zeros_like(self._held[:, :_CONTEXT])], axis=1)
        held = float(np.abs(self._held).max(initial=0))
        return max(self._peak, interpolation.every_point_peak(ending), held)

    @property
    def dbtp(self) -> float | None:
        """The true peak in dBTP (dB relative to full scale); None for digital silence."""
        peak = self.peak
        return 20 * math.log10(peak) if peak > 0 else None


def histogram(blocks: np.ndarray) -> tuple[tuple[int, int, float], ...]:
    """The 400-ms blocks above the absolute gate, in :data:`HISTOGRAM_BIN_LU`-wide bins.

    ``blocks`` [shape=(n,)] are mean K-weighted block powers, channels summed. Returns
    ``(bin, blocks, energy)`` per non-empty bin, lowest first: bin ``b`` holds the blocks of
    loudness ``l`` with ``-70 + b * w <= l < -70 + (b + 1) * w``, ``energy`` their summed
    powers. Summed over tracks, the bins give an album's gated loudness: exactly, but for the
    blocks in the bin where the album's relative gate falls, counted in proportion.
    """
    levels = _lufs(blocks)
    kept = levels > ABSOLUTE_GATE_LUFS
    index = np.floor((levels[kept] - ABSOLUTE_GATE_LUFS) / HISTOGRAM_BIN_LU).astype(np.int64)
    bins, inverse, counts = np.unique(index, return_inverse=True, return_counts=True)
    energy = np.bincount(inverse, weights=blocks[kept], minlength=bins.size)
    return tuple(zip(bins.tolist(), counts.tolist(), energy.tolist(), strict=True))


def warm_up() -> None:
    """Load (or compile, once per machine) the filter loop, so the first file does not wait."""
    from playlista.jit import cache_lock

    with cache_lock():
        loudness(np.zeros((2, 48000), np.float32), 48000)


def k_weighting(sr: float) -> np.ndarray:
    """BS.1770's K-weighting (high shelf, then RLB high-pass) as second-order sections.

    The two biquads are designed for ``sr`` from their analogue prototypes, so that at
    48 kHz they give BS.1770-4's published coefficients to 1e-8.
    """
    k = math.tan(math.pi * SHELF_HZ / sr)
    gain_high = 10 ** (SHELF_DB / 20)
    gain_band = gain_high**0.4996667741545416
    a0 = 1 + k / SHELF_Q + k * k
    shelf = [
        (gain_high + gain_band * k / SHELF_Q + k * k) / a0,
        2 * (k * k - gain_high) / a0,
        (gain_high - gain_band * k / SHELF_Q + k * k) / a0,
        1.0,
        2 * (k * k - 1) / a0,
        (1 - k / SHELF_Q + k * k) / a0,
    ]
    k = math.tan(math.pi * HIGH_PASS_HZ / sr)
    a0 = 1 + k / HIGH_PASS_Q + k * k
    high_pass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / HIGH_PASS_Q + k * k) / a0]
    return np.array([shelf, high_pass])


def _block_means(steps: np.ndarray, step: int, seconds: float) -> np.ndarray:
    """Mean power of ``seconds``-long blocks, one every step (75 % overlap at 400 ms)."""
    size = round(seconds / BLOCK_STEP_SECONDS)
    if steps.size < size:
        return np.empty(0)
    total = np.concatenate([[0.0], np.cumsum(steps)])
    return (total[size:] - total[:-size]) / (size * step)


def _lufs(power: np.ndarray | float) -> Any:
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(power)


def _gated_loudness(blocks: np.ndarray, relative_gate_lu: float) -> float | None:
    """BS.1770 integrated loudness of block powers: absolute gate, then the relative one."""
    blocks = blocks[_lufs(blocks) > ABSOLUTE_GATE_LUFS]
    if blocks.size == 0:
        return None
    gate = _lufs(blocks.mean()) + relative_gate_lu
    return float(_lufs(blocks[_lufs(blocks) > gate].mean()))


def _loudness_range(blocks: np.ndarray) -> float | None:
    """EBU Tech 3342 loudness range (LU) of 3-s short-term block powers."""
    levels = _lufs(blocks[_lufs(blocks) > ABSOLUTE_GATE_LUFS])
    if levels.size == 0:
        return None
    gate = _lufs(np.mean(10 ** ((levels + 0.691) / 10))) + RANGE_RELATIVE_GATE_LU
    low, high = np.percentile(levels[levels > gate], RANGE_PERCENTILES)
    return float(high - low)


def _chunks(y: np.ndarray, size: int) -> Iterator[np.ndarray]:
    return (y[:, start : start + size] for start in range(0, y.shape[1], size))
