"""Loudness by ITU-R BS.1770-4 and EBU R 128: K-weighting, gating, loudness range.

Integrated loudness follows BS.1770-4 (400-ms blocks every 100 ms, an absolute gate at
-70 LUFS, then a relative one 10 LU down); the loudness range follows EBU Tech 3342 (3-s
short-term blocks, a relative gate 20 LU down, the spread from the 10th to the 95th
percentile). The filter runs over chunks of the signal, carrying its state, so memory stays
flat however long the track.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.signal

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


def loudness(channels: np.ndarray, sr: float) -> tuple[float | None, float | None]:
    """Integrated loudness (LUFS) and loudness range (LU) of ``channels`` [shape=(1 or 2, n)].

    Channels are summed at weight 1: one channel alone is BS.1770's mono. The loudness is
    None when no block passes the absolute gate; the range is None when no 3-s block does.
    """
    step = round(BLOCK_STEP_SECONDS * sr)
    steps = _k_weighted_energy(channels, sr, step=step)
    integrated = _gated_loudness(_block_means(steps, step, MOMENTARY_SECONDS), RELATIVE_GATE_LU)
    if integrated is None:
        return None, None
    return integrated, _loudness_range(_block_means(steps, step, SHORT_TERM_SECONDS))


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


def _k_weighted_energy(channels: np.ndarray, sr: float, *, step: int) -> np.ndarray:
    """K-weighted energy of ``channels`` [shape=(1 or 2, n)] per ``step`` samples.

    A last partial step is left out.
    """
    sos = k_weighting(sr)
    state = np.zeros((sos.shape[0], channels.shape[0], 2))
    chunk = LOUDNESS_CHUNK_STEPS * step
    parts = []
    for start in range(0, channels.shape[1] - step + 1, chunk):
        x = channels[:, start : start + chunk].astype(np.float64)
        weighted, state = scipy.signal.sosfilt(sos, x, axis=-1, zi=state)
        whole = weighted.shape[1] // step * step
        power = np.einsum("cn,cn->n", weighted[:, :whole], weighted[:, :whole])
        parts.append(power.reshape(-1, step).sum(axis=1))
    return np.concatenate(parts) if parts else np.empty(0)


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
