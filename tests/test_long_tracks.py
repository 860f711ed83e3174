"""Files longer than the analysis cap: read block by block, measured whole, analysed from excerpts.

Real audio throughout: a long FLAC file is written under ``tmp_path`` from corpus tracks played
one after another, and decoded by the real libraries, in this process and in the real child.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import soxr

from playlista.analysis import analyze_file
from playlista.audio import bs1770, features
from playlista.audio.danceability import danceability
from playlista.audio.decode import decode
from playlista.audio.isolate import DecoderProcess
from playlista.audio.prepare import ANALYSIS_SR, EXCERPTS, excerpt_spans
from playlista.records import TrackResult
from playlista.settings import AnalysisParams

PARTS = ("good/rendered/bach_bwv351.flac", "good/rendered/mozart_k545.flac")
CAP = 10.0


@pytest.fixture(scope="module")
def long_flac(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 52.69-s stereo 44.1-kHz FLAC file: two corpus tracks, one after the other."""
    audio = [sf.read(corpus / part, dtype="float32", always_2d=True)[0] for part in PARTS]
    path = tmp_path_factory.mktemp("long") / "long.flac"
    sf.write(path, np.concatenate(audio), 44100, subtype="PCM_16")
    return path


def reference_loudness(channels: np.ndarray, sr: int) -> tuple[float | None, float | None]:
    """BS.1770 by the book: the whole signal filtered in one call, then gated."""
    weighted = scipy.signal.sosfilt(bs1770.k_weighting(sr), channels.astype(np.float64), axis=-1)
    step = round(0.1 * sr)
    whole = weighted.shape[1] // step * step
    steps = (weighted[:, :whole] ** 2).sum(axis=0).reshape(-1, step).sum(axis=1)
    momentary = bs1770._block_means(steps, step, bs1770.MOMENTARY_SECONDS)
    integrated = bs1770._gated_loudness(momentary, bs1770.RELATIVE_GATE_LU)
    short_term = bs1770._block_means(steps, step, bs1770.SHORT_TERM_SECONDS)
    return integrated, bs1770._loudness_range(short_term)


@pytest.mark.parametrize(("channels", "sr"), [(2, 48000), (1, 44100), (2, 96000)])
def test_the_meter_fed_odd_blocks_gives_the_whole_signal_loudness(channels, sr):
    rng = np.random.default_rng(7)
    seconds = 20
    # Noise whose level steps every 2 s, so that gating and the range both have work to do.
    level = np.repeat(10 ** (rng.uniform(-40, -5, seconds // 2) / 20), 2 * sr)
    y = (rng.standard_normal((channels, seconds * sr)) * level).astype(np.float32)
    meter = bs1770.LoudnessMeter(sr=sr, channels=channels)
    sizes = [1, 4799, 17, 100_003, 3, 65_537]
    start, i = 0, 0
    while start < y.shape[1]:
        meter.feed(y[:, start : start + sizes[i % len(sizes)]])
        start, i = start + sizes[i % len(sizes)], i + 1
    got = meter.result()
    want = reference_loudness(y, sr)
    assert got[0] is not None and got[1] is not None and got[1] > 5
    # The meter filters in float32 (the decoded samples' own precision): 1e-5 LU of float64.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(bs1770.loudness(y, sr), got, rtol=0, atol=1e-7)


def test_excerpts_are_evenly_spaced_centred_and_apart():
    spans = excerpt_spans(1000, length=30, n=10)
    assert [a for a, _ in spans] == [35 + 100 * i for i in range(10)]
    assert all(b - a == 30 for a, b in spans)


def test_a_file_over_the_cap_is_measured_whole_and_kept_as_excerpts(long_flac):
    full = decode(str(long_flac))
    got = decode(str(long_flac), max_seconds=CAP)
    assert full.excerpts == 0 and got.excerpts == EXCERPTS
    assert got.samples.ndim == 1 and got.samples.size <= CAP * ANALYSIS_SR + EXCERPTS
    assert got.seconds == full.seconds == (1257728 + 1065856) / 44100
    audio, sr = sf.read(long_flac, dtype="float32", always_2d=True)
    lufs, lra = features.loudness(y=audio.T, sr=sr)
    assert (got.loudness_lufs, got.loudness_range_lu) == (
        full.loudness_lufs,
        full.loudness_range_lu,
    )
    assert got.loudness_lufs == pytest.approx(lufs, abs=1e-6)
    assert got.loudness_range_lu == pytest.approx(lra, abs=1e-6)
    assert got.energy == full.energy == pytest.approx(features.energy(y=audio.T), rel=1e-6)
    np.testing.assert_array_equal(got.envelope, full.envelope)
    # True peak and histogram of the whole file, read block by block: as measured whole.
    assert got.true_peak_dbtp == full.true_peak_dbtp
    assert got.true_peak_dbtp == pytest.approx(bs1770.true_peak(audio.T, sr), abs=1e-5)
    histogram = bs1770.LoudnessMeter.of(audio.T, sr=sr).histogram()
    assert [b[:2] for b in got.loudness_histogram] == [b[:2] for b in histogram]
    np.testing.assert_allclose(
        [b[2] for b in got.loudness_histogram], [b[2] for b in histogram], rtol=1e-6
    )
    # Each excerpt is the file's own audio, centred in its tenth of the track.
    length = int(CAP * sr) // EXCERPTS
    spans = excerpt_spans(audio.shape[0], length=length)
    at = 0
    for a, b in spans:
        want = np.asarray(soxr.resample(audio[a:b].mean(axis=1), sr, ANALYSIS_SR), np.float32)
        np.testing.assert_allclose(got.samples[at : at + want.size], want, atol=1e-6)
        at += want.size
    assert at == got.samples.size


def test_a_file_under_the_cap_decodes_exactly_as_without_one(corpus):
    path = str(corpus / PARTS[0])
    capped, uncapped = decode(path, max_seconds=600), decode(path)
    assert capped.excerpts == 0 and capped.seconds == uncapped.seconds
    np.testing.assert_array_equal(capped.samples, uncapped.samples)


def test_the_child_sends_the_whole_file_measures_with_the_excerpts(long_flac):
    want = decode(str(long_flac), max_seconds=CAP)
    with DecoderProcess() as child:
        got = child.decode(str(long_flac), max_seconds=CAP, timeout=120)
        under = child.decode(str(long_flac), max_seconds=600, timeout=120)
    assert (got.loudness_lufs, got.energy, got.excerpts) == (
        want.loudness_lufs,
        want.energy,
        want.excerpts,
    )
    np.testing.assert_array_equal(got.samples, want.samples)
    np.testing.assert_array_equal(got.envelope, want.envelope)
    assert under.excerpts == 0
    assert abs(under.samples.size - under.seconds * ANALYSIS_SR) <= 1


def test_analysis_of_a_long_file_stores_its_duration_and_says_it_used_excerpts(long_flac):
    full = decode(str(long_flac))
    with DecoderProcess() as child:
        result = analyze_file(
            str(long_flac), worker="test", decoder=child, params=AnalysisParams(max_seconds=CAP)
        )
    assert isinstance(result, TrackResult)
    assert result.decoded_seconds == (1257728 + 1065856) / 44100
    note = "tempo, key, rhythm, spectral and MusiCNN from 10 excerpts (10 s of 53 s)"
    assert note in result.warnings and note in result.features.warnings
    assert result.features.loudness_lufs == full.loudness_lufs
    assert result.features.energy == full.energy
    assert result.features.danceability == danceability(envelope=full.envelope)
    assert result.features.true_peak_dbtp == full.true_peak_dbtp is not None
    assert result.features.bpm is not None and result.features.key is not None
