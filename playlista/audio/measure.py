"""One compiled pass over each decoded block: K-weighted energy, mono mix, its energy, envelope.

Decoding hands over a file a few seconds at a time at its native rate. Everything measured on
the original signal reads each sample once, in :func:`measure_block`: the BS.1770 K-weighting
filter (two biquads, direct form II transposed, float64) on one or two channels, summed into
100-ms steps; the mono mix that the rest of the analysis resamples; that mix's sum of squares
(energy); and its standard deviation in consecutive 10-ms frames (danceability's envelope).
A :class:`Pass` carries the filter's state and the unfinished step and frame across blocks.
"""

from __future__ import annotations

import numba
import numpy as np

# Layout of Pass.carry: energy and length of the unfinished 100-ms step, then sum, sum of
# squares and length of the unfinished 10-ms frame.
_STEP_ENERGY, _STEP_LENGTH, _FRAME_SUM, _FRAME_SQUARES, _FRAME_LENGTH = range(5)


class Pass:
    """State carried between the blocks of one signal; see :func:`measure_block`."""

    def __init__(self, *, sos: np.ndarray, channels: int, step: int, frame: int) -> None:
        if channels not in (1, 2):
            raise ValueError(f"the K-weighting pass takes 1 or 2 channels, got {channels}")
        self.sos = np.ascontiguousarray(sos, dtype=np.float64)
        self.state = np.zeros((channels, 4))
        self.carry = np.zeros(5)
        self.step = step
        self.frame = frame


def measure_block(
    x: np.ndarray, state: Pass, mix: tuple[float, float] = (0.5, 0.5)
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Measure one block ``x`` [shape=(1 or 2, k)], float32, continuing ``state``.

    Returns the K-weighted energy (channels summed) of each 100-ms step the block completes,
    the mono mix [shape=(k,)] (``mix`` weights the two channels; one channel is its own mix),
    the mix's sum of squares, and its standard deviation (n - 1 in the denominator, as
    essentia's Danceability) in each 10-ms frame the block completes.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    left, right = (1.0, 0.0) if x.shape[0] == 1 else mix
    return _measure(x, left, right, state.sos, state.state, state.carry, state.step, state.frame)


@numba.njit(cache=True, nogil=True)
def _measure(
    x: np.ndarray,
    w_left: float,
    w_right: float,
    sos: np.ndarray,
    z: np.ndarray,
    carry: np.ndarray,
    step: int,
    frame: int,
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:  # pragma: no cover - compiled
    channels, k = x.shape
    b0, b1, b2, a1, a2 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
    c0, c1, c2, d1, d2 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
    step_energy, step_length = carry[0], int(carry[1])
    frame_sum, frame_squares, frame_length = carry[2], carry[3], int(carry[4])
    steps = np.empty((step_length + k) // step)
    envelope = np.empty((frame_length + k) // frame, np.float32)
    mono = np.empty(k, np.float32)
    n_steps = 0
    n_frames = 0
    squares = 0.0
    # Left channel's filter state, then the right's (unused with one channel).
    ls1, ls2, lt1, lt2 = z[0, 0], z[0, 1], z[0, 2], z[0, 3]
    rs1, rs2, rt1, rt2 = 0.0, 0.0, 0.0, 0.0
    if channels == 2:
        rs1, rs2, rt1, rt2 = z[1, 0], z[1, 1], z[1, 2], z[1, 3]
    for i in range(k):
        v = np.float64(x[0, i])
        u = b0 * v + ls1
        ls1 = b1 * v - a1 * u + ls2
        ls2 = b2 * v - a2 * u
        w = c0 * u + lt1
        lt1 = c1 * u - d1 * w + lt2
        lt2 = c2 * u - d2 * w
        e = w * w
        m = w_left * v
        if channels == 2:
            r = np.float64(x[1, i])
            p = b0 * r + rs1
            rs1 = b1 * r - a1 * p + rs2
            rs2 = b2 * r - a2 * p
            q = c0 * p + rt1
            rt1 = c1 * p - d1 * q + rt2
            rt2 = c2 * p - d2 * q
            e += q * q
            m += w_right * r
        step_energy += e
        step_length += 1
        if step_length == step:
            steps[n_steps] = step_energy
            n_steps += 1
            step_energy = 0.0
            step_length = 0
        m32 = np.float32(m)
        mono[i] = m32
        m = np.float64(m32)
        squares += m * m
        frame_sum += m
        frame_squares += m * m
        frame_length += 1
        if frame_length == frame:
            variance = (frame_squares - frame_sum * frame_sum / frame) / (frame - 1)
            envelope[n_frames] = np.sqrt(max(variance, 0.0))
            n_frames += 1
            frame_sum = 0.0
            frame_squares = 0.0
            frame_length = 0
    z[0, 0], z[0, 1], z[0, 2], z[0, 3] = ls1, ls2, lt1, lt2
    if channels == 2:
        z[1, 0], z[1, 1], z[1, 2], z[1, 3] = rs1, rs2, rt1, rt2
    carry[0], carry[1] = step_energy, step_length
    carry[2], carry[3], carry[4] = frame_sum, frame_squares, frame_length
    return steps, mono, squares, envelope
