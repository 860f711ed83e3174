"""Integrated loudness and loudness range on signals BS.1770 and EBU Tech 3341/3342 give
answers for."""

from __future__ import annotations

import numpy as np
import pytest

from playlista.audio import bs1770
from playlista.audio.features import loudness
from tests.test_features import SR, sine


def bs1770_sine_loudness(frequency: float, *, dbfs: float, channels: int) -> float:
    """Loudness that ITU-R BS.1770 predicts for a sine of that peak level in each channel.

    Uses the standard's published 48 kHz K-weighting biquads, independently of essentia.
    """
    z = np.exp(-2j * np.pi * frequency / 48000)
    gain = 1.0
    for b, a in (
        (
            (1.53512485958697, -2.69169618940638, 1.19839281085285),
            (-1.69065929318241, 0.73248077421585),
        ),
        ((1.0, -2.0, 1.0), (-1.99004745483398, 0.99007225036621)),
    ):
        gain *= abs((b[0] + b[1] * z + b[2] * z**2) / (1.0 + a[0] * z + a[1] * z**2))
    mean_square = (10 ** (dbfs / 20)) ** 2 / 2 * gain**2
    return -0.691 + 10 * np.log10(channels * mean_square)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    y = np.fft.irfft(spectrum, n)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


@pytest.mark.parametrize("sr", [48000, 44100, 96000])
def test_loudness_of_a_stereo_sine_matches_bs1770(sr: int) -> None:
    # EBU Tech 3341 case 1: a 997 Hz sine at -23 dBFS in both channels reads -23 LUFS, which
    # the K-weighting gain (+0.691 dB at 997 Hz, cancelling the -0.691 offset) predicts.
    expected = bs1770_sine_loudness(997.0, dbfs=-23.0, channels=2)
    assert expected == pytest.approx(-23.0, abs=0.01)
    s = sine(997.0, dbfs=-23.0, duration=10.0, sr=sr)
    integrated, loudness_range = loudness(y=np.stack([s, s]), sr=sr)
    assert integrated == pytest.approx(expected, abs=0.3)
    assert loudness_range == pytest.approx(0.0, abs=0.1)


def test_loudness_of_one_channel_is_bs1770_mono() -> None:
    s = sine(997.0, dbfs=-20.0, duration=10.0, sr=48000)
    expected = bs1770_sine_loudness(997.0, dbfs=-20.0, channels=1)  # -23.01, not -20.0
    for y in (s, s[np.newaxis]):
        integrated, _ = loudness(y=y, sr=48000)
        assert integrated == pytest.approx(expected, abs=0.3)


def test_loudness_folds_more_than_two_channels() -> None:
    s = sine(997.0, dbfs=-23.0, duration=10.0, sr=48000)
    integrated, _ = loudness(y=np.stack([s, s, s, s]), sr=48000)
    assert integrated == pytest.approx(-23.0, abs=0.3)


def test_pink_noise_scaled_to_minus_23_lufs() -> None:
    rng = np.random.default_rng(7)
    y = np.stack([pink_noise(10 * 48000, rng), pink_noise(10 * 48000, rng)])
    measured, _ = loudness(y=y, sr=48000)
    assert measured is not None and measured > -23.0 + 3  # far from the target before scaling
    gain = 10 ** ((-23.0 - measured) / 20)
    integrated, loudness_range = loudness(y=(gain * y).astype(np.float32), sr=48000)
    assert integrated == pytest.approx(-23.0, abs=0.5)
    assert loudness_range is not None and loudness_range < 1.0  # stationary noise


@pytest.mark.parametrize(("low", "high", "expected"), [(-30, -20, 10), (-35, -15, 20)])
def test_loudness_range_of_two_levels_is_their_distance(low: int, high: int, expected: int):
    # EBU Tech 3342 cases 1 and 2: 20 s of a 1 kHz sine at one level, then 20 s at another,
    # reads a range of their difference, within 1 LU. 40 s also spans several filter chunks.
    y = np.concatenate([sine(1000.0, dbfs=level, duration=20.0, sr=48000) for level in (high, low)])
    _, loudness_range = loudness(y=np.stack([y, y]), sr=48000)
    assert loudness_range == pytest.approx(expected, abs=1.0)


def test_k_weighting_at_48k_is_the_published_filter() -> None:
    shelf, high_pass = bs1770.k_weighting(48000)
    assert shelf == pytest.approx(
        [
            1.53512485958697,
            -2.69169618940638,
            1.19839281085285,
            1,
            -1.69065929318241,
            0.73248077421585,
        ],
        abs=1e-8,
    )
    assert high_pass == pytest.approx([1, -2, 1, 1, -1.99004745483398, 0.99007225036621], abs=1e-8)


def test_loudness_of_silence_is_none() -> None:
    assert loudness(y=np.zeros((2, 5 * SR), dtype=np.float32), sr=SR) == (None, None)
