"""extract_features: every descriptor family together, what a failing one leaves, and its
checks of what it is given."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from playlista.audio import bs1770, features
from playlista.audio.features import key, tempo, warm_up
from playlista.audio.sources import FEATURE_SOURCES
from playlista.audio.spectral import spectral
from playlista.errors import InvalidInputError
from playlista.records import Features
from tests.test_features import SR, analyse, click_track, sine, triad


def test_feature_sources_name_every_field() -> None:
    fields = {f.name for f in dataclasses.fields(Features)} - {"warnings"}
    assert set(FEATURE_SOURCES) == fields
    assert "playlista.audio.rhythm" in FEATURE_SOURCES["bpm"]


def test_extract_features_of_a_synthetic_mix() -> None:
    mono = click_track(120.0, duration=12.0) + triad((261.63, 329.63, 392.00), duration=12.0)
    f = analyse(np.stack([mono, mono]), SR)
    assert f.warnings == ()
    assert f.bpm == pytest.approx(120.0, rel=0.02)
    assert (f.key, f.mode, f.camelot) == ("C", "major", "8B")
    for name in FEATURE_SOURCES:
        value = getattr(f, name)
        if name.endswith(("_mean", "_std")):
            assert type(value) is tuple and all(type(v) is float for v in value), name
        elif name == "loudness_histogram":
            assert value and all(tuple(map(type, b)) == (int, int, float) for b in value)
        elif name not in ("key", "mode", "camelot"):
            assert type(value) is float, name
    assert f.mfcc_mean is not None and f.mfcc_std is not None and f.chroma_mean is not None
    assert (len(f.mfcc_mean), len(f.mfcc_std), len(f.chroma_mean)) == (13, 13, 12)
    assert pickle.loads(pickle.dumps(f)) == f
    assert len(pickle.dumps(f)) < 2000 + 40 * len(f.loudness_histogram)


def test_extract_features_measures_the_true_peak_and_the_album_histogram() -> None:
    s = sine(997.0, dbfs=-6.0, duration=5.0, sr=48000)
    y = np.stack([s, 0.5 * s])
    f = analyse(y, 48000)
    assert f.true_peak_dbtp == pytest.approx(-6.0, abs=0.05)
    assert f.true_peak_dbtp == bs1770.true_peak(y, 48000)
    assert f.loudness_histogram == bs1770.LoudnessMeter.of(y, sr=48000).histogram()
    assert sum(n for _, n, _ in f.loudness_histogram) == 47  # 400-ms blocks, 100 ms apart


def test_extract_features_of_silence_keeps_going() -> None:
    f = analyse(np.zeros((2, 5 * SR), dtype=np.float32), SR)
    assert (f.loudness_lufs, f.loudness_range_lu) == (None, None)
    assert (f.true_peak_dbtp, f.loudness_histogram) == (None, ())
    assert f.bpm is f.key is f.spectral_centroid_hz is f.mfcc_mean is None
    assert f.energy == 0.0
    assert f.onset_rate == 0.0
    families = [warning.split(":")[0] for warning in f.warnings]
    assert families == ["loudness", "spectral", "key", "tempo"]


def test_extract_features_of_a_short_clip_has_no_loudness_range() -> None:
    s = sine(997.0, dbfs=-23.0, duration=1.5, sr=48000)
    f = analyse(np.stack([s, s]), 48000)
    assert f.loudness_lufs == pytest.approx(-23.0, abs=0.3)
    assert f.loudness_range_lu is None
    assert any(w.startswith("loudness range:") for w in f.warnings)
    assert f.spectral_centroid_hz == pytest.approx(997.0, rel=0.01)


def test_a_failing_family_leaves_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    # No natural input makes exactly one essentia algorithm raise, so onset_rate is replaced
    # with one that raises essentia's RuntimeError, the seam the guard is there for.
    def broken(**_: object) -> float:
        raise RuntimeError("Onsets: degenerate input")

    monkeypatch.setattr(features, "onset_rate", broken)
    mono = click_track(120.0, duration=6.0)
    f = analyse(mono[np.newaxis], SR)
    assert f.onset_rate is None
    assert f.warnings == ("onset_rate: Onsets: degenerate input",)
    assert f.bpm == pytest.approx(120.0, rel=0.02)
    assert f.danceability is not None and f.spectral_centroid_hz is not None


def test_a_bug_in_a_family_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def buggy(**_: object) -> float:
        raise TypeError("a programming error")

    monkeypatch.setattr(features, "danceability", buggy)
    with pytest.raises(TypeError):
        analyse(click_track(120.0, duration=3.0)[np.newaxis], SR)


@pytest.mark.parametrize(
    ("y", "sr"),
    [
        (np.zeros((2, 2 * SR), dtype=np.int16), SR),  # not floating point
        (np.full((2, 2 * SR), np.nan, dtype=np.float32), SR),
        (np.full((1, 2 * SR), np.inf, dtype=np.float32), SR),
        (np.zeros((2, SR // 2), dtype=np.float32), SR),  # 0.5 s
        (np.zeros((0, 2 * SR), dtype=np.float32), SR),
        (np.zeros((2, 2 * SR), dtype=np.float32), 0),
        (np.zeros((2, 2 * SR), dtype=np.float32), -SR),
        ([[0.0] * 2 * SR], SR),  # not an array
    ],
)
def test_extract_features_rejects_bad_input(y: object, sr: int) -> None:
    with pytest.raises(InvalidInputError):
        analyse(y, sr)  # type: ignore[arg-type]


def test_family_functions_reject_bad_input() -> None:
    stereo = np.zeros((2, 2 * SR), dtype=np.float32)
    with pytest.raises(InvalidInputError):
        tempo(y=stereo, sr=SR)
    with pytest.raises(InvalidInputError):
        key(y=stereo[0], sr=0)
    with pytest.raises(InvalidInputError):
        spectral()
    with pytest.raises(InvalidInputError):
        spectral(S=np.full((1025, 10), np.nan))


def test_warm_up_reports_its_duration() -> None:
    spent = warm_up()
    assert isinstance(spent, float)
    assert 0.0 < spent < 600.0
