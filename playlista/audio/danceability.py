"""Danceability: essentia's detrended fluctuation analysis of the signal's envelope."""

from __future__ import annotations

import math
from functools import cache
from typing import NamedTuple

import numpy as np

from playlista.audio.inputs import check_samples, finite
from playlista.audio.prepare import ANALYSIS_SR

SR = ANALYSIS_SR
# Segment lengths from 310 ms to 8.8 s, each 10 % longer than the last (essentia's
# Danceability defaults).
DFA_MIN_MS, DFA_MAX_MS, DFA_STEP = 310.0, 8800.0, 1.1


def danceability(
    *, envelope: np.ndarray | None = None, y: np.ndarray | None = None, sr: float = SR
) -> float:
    """essentia's detrended-fluctuation danceability, usually 0 to 3 (higher: more danceable).

    ``envelope`` [shape=(m,)] is the standard deviation of the mono signal in consecutive
    10-ms frames (:class:`~playlista.audio.prepare.Decoded` carries it); without it, it is
    computed from mono ``y`` at ``sr``. The analysis is essentia's ``Danceability``: the
    fluctuation of the integrated envelope around a linear trend, in segments of 310 ms to
    8.8 s, and the inverse mean slope of its log-log curve. Digital silence gives 0.0.
    """
    if envelope is None:
        y = check_samples(y, sr=sr, ndims=(1,))
        size = round(0.01 * sr)
        frames = y[: y.size // size * size].reshape(-1, size)
        envelope = frames.std(axis=1, ddof=1, dtype=np.float64)
    profile = np.cumsum(np.asarray(envelope, np.float64) - np.mean(envelope))
    sums = _PrefixSums.of(profile)
    fluctuation = []
    for tau in _dfa_segments():
        if profile.size < tau:
            break
        fluctuation.append(sums.detrended_fluctuation(tau))
    taus = np.asarray(_dfa_segments()[: len(fluctuation)], dtype=np.float64)
    if len(fluctuation) < 2 or not all(fluctuation):
        return 0.0
    f = np.asarray(fluctuation)
    slopes = np.log10(f[1:] / f[:-1]) / np.log10((taus[1:] + 3.0) / (taus[:-1] + 3.0))
    mean_slope = float(np.mean(slopes))
    return finite(1.0 / mean_slope if mean_slope > 0 else 0.0, "danceability")


@cache
def _dfa_segments() -> tuple[int, ...]:
    taus = []
    tau = DFA_MIN_MS
    while tau <= DFA_MAX_MS:
        taus.append(int(tau / 10.0))
        tau *= DFA_STEP
    return tuple(taus)


class _PrefixSums(NamedTuple):
    """Running sums of a profile ``y``, of ``y**2`` and of ``i * y``, each with a leading 0."""

    y: np.ndarray
    yy: np.ndarray
    iy: np.ndarray

    @classmethod
    def of(cls, profile: np.ndarray) -> _PrefixSums:
        def running(values: np.ndarray) -> np.ndarray:
            return np.concatenate([[0.0], np.cumsum(values)])

        index = np.arange(profile.size, dtype=np.float64)
        return cls(running(profile), running(profile * profile), running(index * profile))

    def detrended_fluctuation(self, tau: int) -> float:
        """Root mean squared residual of a straight line fitted to each ``tau``-frame segment.

        essentia's definition: segments start every ``max(1, tau // 50)`` frames, each one's
        residual is a mean over its frames, the mean is over the segments. Every segment's
        sums are differences of the running sums, so each costs the same however long.
        """
        n = self.y.size - 1
        if n == tau:
            return 0.0
        jump = max(tau // 50, 1)
        starts = np.arange(0, n - tau, jump)
        sum_y = self.y[starts + tau] - self.y[starts]
        sum_yy = self.yy[starts + tau] - self.yy[starts]
        sum_xy = self.iy[starts + tau] - self.iy[starts] - starts * sum_y  # x from 0 in each
        ss_xx = tau * (tau * tau - 1) / 12.0
        ss_xy = sum_xy - (tau - 1) / 2.0 * sum_y
        ss_yy = sum_yy - sum_y * sum_y / tau
        residual = np.maximum(ss_yy - ss_xy * ss_xy / ss_xx, 0.0) / tau
        return float(math.sqrt(residual.sum() / ((n - tau) / jump)))
