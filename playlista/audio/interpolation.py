"""4x oversampling by ITU-R BS.1770-4 Annex 2, for true peaks: the peak of what could matter.

The Annex interpolates 4 points per sample with a 48-tap FIR low-pass (:data:`PHASES`).
Oversampling everything costs ~0.2 s of a core per 4-minute stereo track; but a point's
value is bounded by the samples under its window (:func:`_bounds`), and in music only a
few per cent of a track could beat the peak of its samples: only those are oversampled.
The peak found is the same as with every point oversampled, to float32 rounding.
"""

from __future__ import annotations

import functools

import numpy as np

# ITU-R BS.1770-4 Annex 2's interpolation filter for 4x oversampling: a 48-tap FIR low-pass
# as 4 phases of 12 taps, each giving one of the 4 points per sample period.
# The Recommendation's own filter, so that the figure is the one every Annex 2 meter reads:
# on sines up to 20 kHz at 44.1 or 48 kHz it reads 0.1 dB under to 0.25 dB over their peak.
OVERSAMPLING = 4
TAPS = 12
# fmt: off
_PHASE_0 = (
    0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000, -0.0594482421875,
    0.1373291015625, 0.9721679687500, -0.1022949218750, 0.0476074218750, -0.0266113281250,
    0.0148925781250, -0.0083007812500,
)
_PHASE_1 = (
    -0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250, -0.1665039062500,
    0.4650878906250, 0.7797851562500, -0.2003173828125, 0.1015625000000, -0.0582275390625,
    0.0330810546875, -0.0189208984375,
)
# fmt: on
PHASES = np.array([_PHASE_0, _PHASE_1, _PHASE_1[::-1], _PHASE_0[::-1]])
# Largest sum of |taps| of a phase: no interpolated value exceeds this times its samples'.
GAIN = float(np.abs(PHASES).sum(axis=1).max())
SUB_BLOCK = 1024  # points per channel skipped or oversampled together
_ROW = 16  # interpolated points per matrix row


def peak_beyond(x: np.ndarray, subs: int, *, floor: float) -> float:
    """The larger of ``floor``, the samples' peak, and the peak of ``subs`` sub-blocks.

    ``x`` [shape=(channels, TAPS - 1 + subs * size + r), r < size]: point ``i`` is
    interpolated from ``x[:, i : i + TAPS]``; sub-block ``b`` holds the points from
    ``b * size``. An interpolated value is bounded by its window's samples (see
    :func:`_bounds`); the sub-blocks whose bound beats the peak found so far are
    oversampled, the highest first, in growing batches, until none left could.
    """
    size, width = SUB_BLOCK, SUB_BLOCK + TAPS - 1
    channels = x.shape[0]
    body = x[:, : subs * size].reshape(channels, subs, size)
    magnitude = np.empty((channels, subs + 1))  # per stretch of `size` samples, and the rest
    magnitude[:, :subs] = np.maximum(body.max(axis=2), -body.min(axis=2))
    magnitude[:, subs] = np.abs(x[:, subs * size :]).max(axis=1)
    near = np.maximum(magnitude[:, :-1], magnitude[:, 1:])  # windows reach into the next
    peak = max(floor, float(magnitude.max()))
    bound = near * GAIN
    for channel in range(channels):  # the finer bound, where the coarse one is not enough
        rough = np.flatnonzero(bound[channel] > peak)
        if rough.size:
            windows = _windows(x[channel], width, step=size)[rough]
            bends = np.abs(_second_differences(windows)).max(axis=1)
            bound[channel, rough] = _bounds(near[channel, rough], bends)
    order = np.argsort(-bound.ravel(), kind="stable")
    done, batch = 0, 4
    while done < order.size and bound.flat[order[done]] > peak:
        chosen = order[done : done + batch]
        for channel in range(channels):
            mine = chosen[chosen // subs == channel] % subs
            mine = mine[bound[channel, mine] > peak]
            if mine.size:
                rows = (mine[:, None] * size + np.arange(0, size, _ROW)[None, :]).ravel()
                points = _windows(x[channel], _ROW + TAPS - 1, step=1)[rows]
                peak = max(peak, _row_peak(points))
        done, batch = done + batch, min(4 * batch, 1024)
    return peak


def _windows(x: np.ndarray, width: int, *, step: int) -> np.ndarray:
    """Read-only view [shape=(k, width)] of 1-d ``x``: the windows starting every ``step``."""
    count = (x.size - width) // step + 1
    stride = x.strides[0]
    return np.lib.stride_tricks.as_strided(
        x, shape=(count, width), strides=(step * stride, stride), writeable=False
    )


def _second_differences(x: np.ndarray) -> np.ndarray:
    """``x[..., t] - 2 x[..., t + 1] + x[..., t + 2]`` along the last axis."""
    out = np.add(x[..., 2:], x[..., :-2])
    out -= x[..., 1:-1]
    out -= x[..., 1:-1]
    return out


def _bounds(magnitude: np.ndarray, curvature: np.ndarray) -> np.ndarray:
    """The most an interpolated value can reach, from its window's largest sample
    ``magnitude`` and largest second difference ``curvature``.

    Two bounds, the lower kept: :data:`GAIN` times the magnitude, and
    ``A * magnitude + E * curvature`` (:func:`_smooth_bound`), which in music, whose second
    differences are a fraction of its samples, is barely above the magnitude.
    """
    centre, spread = _smooth_bound()
    return np.minimum(magnitude * GAIN, magnitude * centre + curvature * spread)


def every_point_peak(x: np.ndarray) -> float:
    """Largest magnitude of the 4 interpolated values of every point of ``x``
    [shape=(n,) or (channels, n)] whose window lies inside it; a last short row overlaps."""
    peak = 0.0
    for channel in np.atleast_2d(x):
        points = channel.size - (TAPS - 1)
        if 0 < points < _ROW:
            peak = max(peak, _row_peak(channel[np.newaxis], points))
        elif points > 0:
            rows = np.unique(np.minimum(np.arange(0, points, _ROW), points - _ROW))
            peak = max(peak, _row_peak(_windows(channel, _ROW + TAPS - 1, step=1)[rows]))
    return peak


def _row_peak(windows: np.ndarray, points: int = _ROW) -> float:
    """Largest interpolated magnitude of rows [shape=(k, points + TAPS - 1)] of samples."""
    out = windows @ _interpolation_matrix(points)
    return float(max(out.max(initial=0), -out.min(initial=0)))


@functools.cache
def _interpolation_matrix(points: int) -> np.ndarray:
    """[shape=(points + TAPS - 1, 4 * points)]: a row of samples to its 4x oversampled points.

    Point ``t``'s phase ``p`` is ``sum(PHASES[p, k] * x[t + TAPS - 1 - k])``.
    """
    matrix = np.zeros((points + TAPS - 1, OVERSAMPLING * points), np.float32)
    for t in range(points):
        for p in range(OVERSAMPLING):
            matrix[t : t + TAPS, OVERSAMPLING * t + p] = PHASES[p, ::-1]
    return matrix


@functools.lru_cache(maxsize=1)
def _smooth_bound() -> tuple[float, float]:
    """``(A, E)``: no interpolated value exceeds ``A * M + E * D``, ``M`` the magnitude and
    ``D`` the largest second difference of the samples under its window.

    Each phase's taps are split into the two-tap interpolation with the same sum and first
    moment, plus a remainder that then cancels constants and lines: a combination of second
    differences. ``A`` is the largest two-tap sum of magnitudes, ``E`` of the remainder's.
    """
    centre, spread = 0.0, 0.0
    for taps in PHASES[:, ::-1]:  # in window order, oldest sample first
        at = np.arange(taps.size)
        total, moment = taps.sum(), (at * taps).sum()
        a = int(moment / total)
        two = np.zeros_like(taps)
        two[a + 1] = moment - a * total
        two[a] = total - two[a + 1]
        rest, remainder = np.polydiv((taps - two)[::-1], [1.0, -2.0, 1.0])
        assert np.abs(remainder).max() < 1e-12
        centre = max(centre, float(np.abs(two).sum()))
        spread = max(spread, float(np.abs(rest).sum()))
    return centre, spread
