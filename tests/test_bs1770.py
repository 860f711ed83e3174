"""BS.1770's meters on signals with known answers: the K-weighting, true peak, histograms.

References are computed independently: the K-weighting by scipy's ``sosfilt`` in float64,
the oversampled signal by ``scipy.signal.upfirdn`` with the Annex 2 filter, the gating on
the blocks of all tracks concatenated.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

from playlista.audio import bs1770, interpolation

ODD_BLOCKS = (1, 4799, 17, 100_003, 3, 65_537, 1024, 1035, 11)


def feed_in_odd_blocks(meter: bs1770.LoudnessMeter | bs1770.TruePeakMeter, y: np.ndarray) -> None:
    start, i = 0, 0
    while start < y.shape[1]:
        size = ODD_BLOCKS[i % len(ODD_BLOCKS)]
        meter.feed(y[:, start : start + size])
        start, i = start + size, i + 1


def reference_dbtp(y: np.ndarray) -> float:
    """Every oversampled point of ``y`` (and every sample), by upfirdn in float64."""
    prototype = interpolation.PHASES.T.ravel()  # h[4k + p] = phase p's tap k
    oversampled = scipy.signal.upfirdn(prototype, y.astype(np.float64), up=4, axis=1)
    return 20 * math.log10(max(np.abs(oversampled).max(), np.abs(y).max()))


def sine(frequency: float, *, sr: int, seconds: float, phase_deg: float = 0.0) -> np.ndarray:
    """A sine faded in and out over 50 ms: a signal cut off abruptly rings in any
    interpolation, and the meter, like a DAC, takes silence before and after."""
    t = np.arange(int(seconds * sr)) / sr
    fade = np.clip(np.minimum(t, t[-1] - t) / 0.05, 0, 1)
    return np.sin(2 * np.pi * frequency * t + np.deg2rad(phase_deg)) * np.sin(np.pi / 2 * fade)


# --- the K-weighting ---------------------------------------------------------------------------


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000, 96000])
def test_the_k_weighted_steps_are_sosfilts_fed_in_any_blocks(sr: int) -> None:
    sos = bs1770.k_weighting(sr)
    x = (0.3 * np.random.default_rng(sr).standard_normal((2, 7 * sr + 123))).astype(np.float32)
    meter = bs1770.LoudnessMeter(sr=sr, channels=2)
    feed_in_odd_blocks(meter, x)
    weighted = scipy.signal.sosfilt(sos, x.astype(np.float64), axis=1)
    step = round(0.1 * sr)
    n = x.shape[1] // step
    want = (weighted[:, : n * step] ** 2).sum(axis=0).reshape(n, step).sum(axis=1)
    np.testing.assert_allclose(meter._all_steps(), want, rtol=1e-9)


# --- true peak: known answers ----------------------------------------------------------------


@pytest.mark.parametrize("sr", [44100, 48000])
def test_a_full_scale_sine_peaks_at_0_dbtp(sr: int) -> None:
    # 997 Hz, amplitude 1.0: the band-limited peak is 0 dBFS; Annex 2's filter, whose
    # passband ripples by about 0.1 dB, may read a little over, never under the samples.
    s = sine(997.0, sr=sr, seconds=3.0).astype(np.float32)
    dbtp = bs1770.true_peak(np.stack([s, s]), sr)
    assert dbtp is not None and 0.0 <= dbtp <= 0.05


@pytest.mark.parametrize(
    ("divisor", "phase", "inter_sample_db"),
    # A sine at fs/4 sampled 45 degrees off its crests: samples at 0.707 of its peak, so
    # scaled to full-scale samples its true peak is +3.01 dBTP; likewise fs/6 at 60
    # degrees (+1.25 dB) and fs/8 at 67.5 degrees (+0.69 dB), EBU Tech 3341's cases.
    [(4, 45.0, 3.0103), (6, 60.0, 1.2494), (8, 67.5, 0.6877)],
)
def test_inter_sample_peaks_above_full_scale(divisor: int, phase: float, inter_sample_db: float):
    sr = 48000
    s = sine(sr / divisor, sr=sr, seconds=2.0, phase_deg=phase)
    s = (s / np.abs(s).max()).astype(np.float32)  # samples peak at exactly 0 dBFS
    assert np.abs(s).max() == 1.0
    dbtp = bs1770.true_peak(np.stack([s, 0.5 * s]), sr)
    # Within EBU Tech 3341's tolerance for true-peak meters: +0.2 / -0.4 dB.
    assert dbtp is not None and inter_sample_db - 0.4 <= dbtp <= inter_sample_db + 0.2
    assert dbtp > 0.5  # above full scale, where the sample peak sees nothing


def test_sines_up_to_20_khz_read_within_the_filters_accuracy() -> None:
    # The figure the README states for Annex 2's filter: -0.1 to +0.25 dB of the peak.
    rng = np.random.default_rng(11)
    for sr in (44100, 48000):
        for frequency in np.linspace(100, 20000, 40):
            s = sine(frequency, sr=sr, seconds=0.2, phase_deg=rng.uniform(0, 360))
            dbtp = bs1770.true_peak(s[np.newaxis].astype(np.float32), sr)
            assert dbtp is not None and -0.1 <= dbtp <= 0.25, (sr, frequency, dbtp)


def test_an_impulse_reads_its_sample_and_silence_reads_none() -> None:
    # Annex 2's filter passes a lone sample at 0.97 of its height: the sample itself counts.
    y = np.zeros((2, 48000), np.float32)
    y[1, 20_000] = -0.5
    assert bs1770.true_peak(y, 48000) == pytest.approx(20 * math.log10(0.5), abs=1e-6)
    assert bs1770.true_peak(np.zeros((2, 48000), np.float32), 48000) is None
    meter = bs1770.TruePeakMeter(channels=1)
    assert (meter.peak, meter.dbtp) == (0.0, None)


# --- true peak: the meter equals the whole computation ---------------------------------------


def music_like(rng: np.random.Generator, channels: int, n: int) -> np.ndarray:
    """Low-passed noise whose level swells and falls: most of it far under its peak."""
    noise = rng.standard_normal((channels, n))
    smooth = scipy.signal.sosfilt(scipy.signal.butter(4, 0.1, output="sos"), noise, axis=1)
    envelope = np.exp(-((np.arange(n) / n - 0.6) ** 2) / 0.02)
    return (smooth * envelope / np.abs(smooth * envelope).max() * 0.99).astype(np.float32)


@pytest.mark.parametrize(
    ("kind", "channels"), [("noise", 2), ("music", 2), ("music", 1), ("sine", 6)]
)
def test_the_true_peak_meter_fed_odd_blocks_is_the_whole_signal_peak(kind: str, channels: int):
    rng = np.random.default_rng(5)
    n = 300_007
    if kind == "noise":  # full-band: second differences as large as the samples
        y = (0.25 * rng.standard_normal((channels, n))).astype(np.float32)
    elif kind == "music":
        y = music_like(rng, channels, n)
    else:  # loud, near fs/4, where interpolation overshoots most
        s = sine(11020.0, sr=44100, seconds=n / 44100, phase_deg=40)
        y = np.stack([s * (0.5 + 0.1 * c) for c in range(channels)]).astype(np.float32)
    want = reference_dbtp(y)
    meter = bs1770.TruePeakMeter(channels=channels)
    feed_in_odd_blocks(meter, y)
    assert meter.dbtp == pytest.approx(want, abs=1e-5)
    assert bs1770.true_peak(y, 44100) == pytest.approx(want, abs=1e-5)
    assert interpolation.every_point_peak(
        np.concatenate([np.zeros((channels, 11)), y, np.zeros((channels, 11))], axis=1)
    ) == pytest.approx(10 ** (want / 20), rel=1e-6)


def test_the_bound_never_falls_under_an_interpolated_value_and_is_tight_on_tones() -> None:
    # The bound that lets most of a track go without oversampling.
    centre, spread = interpolation._smooth_bound()
    assert 1.0 < centre < 1.01 and spread < interpolation.GAIN - centre
    rng = np.random.default_rng(9)
    t = np.arange(interpolation.TAPS)
    noise = rng.standard_normal((20_000, t.size)) * rng.uniform(0, 1, (20_000, 1))
    tones = np.sin(
        2 * np.pi * rng.uniform(0, 0.5, (20_000, 1)) * t + rng.uniform(0, 7, (20_000, 1))
    )
    for windows in (noise, tones):
        values = np.abs(windows @ interpolation.PHASES[:, ::-1].T).max(axis=1)
        magnitude = np.abs(windows).max(axis=1)
        bound = interpolation._bounds(magnitude, np.abs(np.diff(windows, 2, axis=1)).max(axis=1))
        assert (values <= bound + 1e-12).all()
    # A 1 kHz tone at 44.1 kHz: within 2 % of its samples (6 dB for the magnitude alone).
    low = np.sin(2 * np.pi * 1000 / 44100 * t + rng.uniform(0, 7, (1000, 1)))
    curvature = np.abs(np.diff(low, 2, axis=1)).max(axis=1)
    magnitude = np.abs(low).max(axis=1)
    assert (interpolation._bounds(magnitude, curvature) < 1.02 * magnitude).all()


# --- histograms and album loudness -----------------------------------------------------------


def test_the_histogram_holds_every_gated_block_and_its_energy() -> None:
    rng = np.random.default_rng(2)
    y = music_like(rng, 2, 30 * 44100)
    meter = bs1770.LoudnessMeter.of(y, sr=44100)
    blocks = meter.blocks()
    gated = blocks[-0.691 + 10 * np.log10(np.maximum(blocks, 1e-30)) > -70]
    histogram = meter.histogram()
    assert sum(n for _, n, _ in histogram) == gated.size > 0
    assert sum(e for _, _, e in histogram) == pytest.approx(gated.sum(), rel=1e-12)
    bins = [b for b, _, _ in histogram]
    assert bins == sorted(set(bins)) and all(0 <= b < 800 for b in bins)
    for b, _, energy in histogram[:: max(1, len(histogram) // 10)]:
        low = -70 + b * bs1770.HISTOGRAM_BIN_LU
        inside = gated[
            (-0.691 + 10 * np.log10(gated) >= low)
            & (-0.691 + 10 * np.log10(gated) < low + bs1770.HISTOGRAM_BIN_LU)
        ]
        assert energy == pytest.approx(inside.sum(), rel=1e-12)
