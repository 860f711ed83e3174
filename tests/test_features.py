"""Audio descriptors on synthetic signals with known answers, and on the annotated corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import essentia.standard as es
import librosa
import numpy as np
import pytest
import soundfile as sf
import soxr

from playlista.audio import frontend
from playlista.audio.danceability import danceability
from playlista.audio.features import energy, extract_features, key, loudness, onset_rate, tempo
from playlista.audio.prepare import prepare_samples
from playlista.audio.spectral import estimate_tuning, spectral
from playlista.camelot import code as camelot
from playlista.errors import InvalidInputError
from playlista.records import Features

CORPUS = Path(os.environ.get("PLAYLISTA_CORPUS", Path(__file__).parents[2] / "shared" / "corpus"))
HAVE_CORPUS = (CORPUS / "manifest.json").is_file()
MANIFEST = json.loads((CORPUS / "manifest.json").read_text()) if HAVE_CORPUS else []
needs_corpus = pytest.mark.skipif(not HAVE_CORPUS, reason=f"no test corpus at {CORPUS}")

TEMPO_FILES = sorted(
    (entry["file"], float(entry["ground_truth"]["tempo_bpm"]))
    for entry in MANIFEST
    if entry["file"].startswith(("good/rendered/", "good/fof/"))
    and entry["ground_truth"].get("tempo_bpm")
)
KEY_FILES = sorted(
    (entry["file"], entry["ground_truth"]["key"])
    for entry in MANIFEST
    if entry["file"].startswith("good/") and entry["ground_truth"].get("key")
)
# Metrical levels an estimator may legitimately report (corpus MANIFEST.md).
METRICAL_LEVELS = (1.0, 2.0, 0.5, 2 / 3, 3 / 2)

SR = 44100


def seconds(duration: float, sr: int = SR) -> np.ndarray:
    return np.arange(int(duration * sr)) / sr


def click_track(bpm: float, *, duration: float = 20.0, sr: int = SR) -> np.ndarray:
    """Decaying noise bursts on every beat over a faint noise floor, shape (n,)."""
    rng = np.random.default_rng(int(bpm))
    y = 1e-3 * rng.standard_normal(int(duration * sr))
    burst = rng.standard_normal(int(0.02 * sr)) * np.exp(-np.linspace(0.0, 8.0, int(0.02 * sr)))
    for start in np.arange(0.0, duration - 0.05, 60.0 / bpm):
        i = int(start * sr)
        y[i : i + burst.size] += 0.5 * burst
    return y.astype(np.float32)


def triad(frequencies: tuple[float, ...], *, duration: float = 8.0) -> np.ndarray:
    """Sustained chord, five decaying harmonics per note, shape (n,)."""
    t = seconds(duration)
    y = np.zeros_like(t)
    for f in frequencies:
        for h in range(1, 6):
            y += 0.6 ** (h - 1) * np.sin(2 * np.pi * f * h * t)
    return (0.05 * y).astype(np.float32)


def sine(frequency: float, *, dbfs: float, duration: float, sr: int) -> np.ndarray:
    y = np.sin(2 * np.pi * frequency * seconds(duration, sr)) * 10 ** (dbfs / 20)
    return y.astype(np.float32)


def analyse(y: np.ndarray, sr: int) -> Features:
    """extract_features of samples in memory, as if decoded from a file holding them."""
    return extract_features(prepare_samples(y, sr=sr))[0]


def essentia_frames(y: np.ndarray, *, size: int, hop: int) -> list[np.ndarray]:
    """Frames as essentia's FrameCutter cuts them (the first centred on sample 0)."""
    return list(es.FrameGenerator(y, frameSize=size, hopSize=hop))


def load(name: str) -> tuple[np.ndarray, int]:
    samples, sr = sf.read(CORPUS / name, dtype="float32", always_2d=True)
    return samples.T, sr


def mono_44k(name: str) -> np.ndarray:
    y, sr = load(name)
    mono = y.mean(axis=0)
    return mono if sr == SR else soxr.resample(mono, sr, SR)


def at_some_metrical_level(estimate: float, truth: float, tolerance: float) -> bool:
    return any(
        abs(estimate - truth * level) <= tolerance * truth * level for level in METRICAL_LEVELS
    )


# --- tempo -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bpm", [128.0, 100.0, 87.0])
def test_tempo_of_a_click_track(bpm: float) -> None:
    estimate, confidence = tempo(y=click_track(bpm), sr=SR)
    assert estimate == pytest.approx(bpm, rel=0.02)
    assert confidence > 0.75


def test_tempo_resamples_other_rates() -> None:
    estimate, _ = tempo(y=click_track(128.0, sr=22050), sr=22050)
    assert estimate == pytest.approx(128.0, rel=0.02)


def test_tempo_confidence_is_low_for_noise() -> None:
    noise = (0.1 * np.random.default_rng(3).standard_normal(20 * SR)).astype(np.float32)
    _, confidence = tempo(y=noise, sr=SR)
    assert confidence < 0.5


def test_tempo_of_silence_raises() -> None:
    with pytest.raises(InvalidInputError, match="silent"):
        tempo(y=np.zeros(5 * SR, dtype=np.float32), sr=SR)


def test_onset_functions_are_essentias_on_the_same_frames(corpus: Path) -> None:
    # essentia's own OnsetDetection on its own framing of the same 22.05 kHz signal.
    y, sr = load("good/fof/war_of_freedom_backing.ogg")
    y22 = soxr.resample(y.mean(axis=0), sr, 22050).astype(np.float32)[: 30 * 22050]
    ours = frontend.onset_functions(y=y22)
    window = es.Windowing(type="hann", size=512)
    fft, polar = es.FFT(size=512), es.CartesianToPolar()
    hfc = es.OnsetDetection(method="hfc", sampleRate=22050)
    complex_domain = es.OnsetDetection(method="complex", sampleRate=22050)
    theirs = []
    for frame in essentia_frames(y22, size=512, hop=256):
        magnitude, phase = polar(fft(window(frame)))
        theirs.append((hfc(magnitude, phase), complex_domain(magnitude, phase)))
    n = min(len(theirs), ours.hfc.size) - 1  # essentia may cut one frame less at the end
    want = np.asarray(theirs[:n])
    np.testing.assert_allclose(ours.hfc[:n], want[:, 0], rtol=2e-3, atol=1e-3 * want[:, 0].max())
    np.testing.assert_allclose(
        ours.complex[:n], want[:, 1], rtol=2e-3, atol=1e-3 * want[:, 1].max()
    )
    assert ours.frame_rate == pytest.approx(22050 / 256)


def test_onset_rate_counts_the_clicks() -> None:
    # A click every 0.5 s for 20 s: 2 onsets per second, give or take the first.
    assert onset_rate(y=click_track(120.0), sr=SR) == pytest.approx(2.0, abs=0.1)
    assert onset_rate(y=np.zeros(5 * SR, dtype=np.float32), sr=SR) == 0.0


def test_essentia_algorithms_print_nothing_when_run_in_turn(capfd: pytest.CaptureFixture) -> None:
    # essentia algorithms reused after another essentia network was deleted have printed one
    # warning per frame to stdout; the onset rate builds a fresh Onsets each call.
    y = click_track(120.0, duration=10.0)
    first = onset_rate(y=y, sr=SR)
    loudness(y=y, sr=SR)
    danceability(y=y, sr=SR)
    assert onset_rate(y=y, sr=SR) == first
    captured = capfd.readouterr()
    assert "network" not in captured.out + captured.err


# --- key and Camelot -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequencies", "expected", "code"),
    [
        ((261.63, 329.63, 392.00), ("C", "major"), "8B"),
        ((220.00, 261.63, 329.63), ("A", "minor"), "8A"),
    ],
)
def test_key_of_a_triad(
    frequencies: tuple[float, ...], expected: tuple[str, str], code: str
) -> None:
    tonic, mode, strength = key(y=triad(frequencies), sr=SR)
    assert (tonic, mode) == expected
    assert 0.5 < strength <= 1.0
    assert camelot(key=tonic, mode=mode) == code


@pytest.mark.parametrize(
    ("tonic", "mode", "code"),
    [
        ("C", "major", "8B"),
        ("A", "minor", "8A"),
        ("G", "major", "9B"),
        ("E", "minor", "9A"),
        ("Bb", "major", "6B"),
        ("A#", "major", "6B"),
        ("G", "minor", "6A"),
        ("C#", "major", "3B"),
        ("Db", "major", "3B"),
        ("F#", "minor", "11A"),
        ("Gb", "minor", "11A"),
        ("B", "major", "1B"),
        ("Ab", "minor", "1A"),
        ("G#", "minor", "1A"),
        ("F", "major", "7B"),
        ("D", "minor", "7A"),
        ("E", "major", "12B"),
        ("Eb", "minor", "2A"),
    ],
)
def test_camelot_table(tonic: str, mode: str, code: str) -> None:
    assert camelot(key=tonic, mode=mode) == code


@pytest.mark.parametrize(
    ("tonic", "mode"), [("H", "major"), ("C", "dorian"), ("", "major"), ("Cx", "minor")]
)
def test_camelot_rejects_unknown_names(tonic: str, mode: str) -> None:
    with pytest.raises(InvalidInputError):
        camelot(key=tonic, mode=mode)


# --- energy and spectral ---------------------------------------------------------------------


def test_energy_is_rms_in_full_scale() -> None:
    s = sine(1000.0, dbfs=0.0, duration=2.0, sr=SR)
    assert energy(y=s) == pytest.approx(1 / np.sqrt(2), rel=1e-3)
    assert energy(y=np.stack([s, -s])) == 0.0  # channels are averaged before the RMS


@needs_corpus
@pytest.mark.parametrize(
    "name",
    ["good/fof/armygeddon.ogg", "good/rendered/boogi_marabi.flac", "good/games/0ad_red_dawn.ogg"],
)
def test_danceability_is_essentias(name: str) -> None:
    y44 = mono_44k(name)
    assert danceability(y=y44, sr=SR) == pytest.approx(es.Danceability()(y44)[0], rel=1e-3)


def test_danceability_of_silence_is_zero() -> None:
    assert danceability(envelope=np.zeros(1000, np.float32)) == 0.0


@pytest.mark.parametrize("cents", [-30, 0, 20])
def test_tuning_is_librosas(cents: int) -> None:
    y = triad(tuple(2 ** (cents / 1200) * f for f in (261.63, 329.63, 392.00)), duration=8.0)
    power = frontend.magnitude_spectrogram(y=y[::2].copy()) ** 2
    want = librosa.estimate_tuning(S=power.T, sr=22050, n_fft=2048)
    assert estimate_tuning(power=power) == pytest.approx(want)
    # librosa's estimate itself is off by a few cents on a synthetic chord.
    assert estimate_tuning(power=power) == pytest.approx(cents / 100, abs=0.06)


def test_spectral_descriptors_of_a_sine() -> None:
    s = spectral(y=sine(1000.0, dbfs=-6.0, duration=5.0, sr=22050), sr=22050)
    bin_hz = 22050 / 2048
    assert s.centroid_hz == pytest.approx(1000.0, rel=0.01)
    assert s.rolloff_hz == pytest.approx(1000.0, abs=2 * bin_hz)
    assert s.bandwidth_hz < 100.0
    assert s.flatness < 1e-3
    assert s.zero_crossing_rate == pytest.approx(2 * 1000.0 / 22050, rel=0.02)
    assert s.mfcc_mean.shape == s.mfcc_std.shape == (13,)
    assert s.chroma_mean.shape == (12,)


def test_chroma_of_a440_peaks_at_a() -> None:
    s = spectral(y=sine(440.0, dbfs=-6.0, duration=5.0, sr=22050), sr=22050)
    assert int(np.argmax(s.chroma_mean)) == 9  # C, C#, ..., A is the tenth class


def test_spectral_descriptors_of_white_noise() -> None:
    noise = (0.1 * np.random.default_rng(5).standard_normal(5 * 22050)).astype(np.float32)
    s = spectral(y=noise, sr=22050)
    assert s.centroid_hz == pytest.approx(22050 / 4, rel=0.05)  # flat spectrum: mid-band
    assert s.flatness > 0.3
    assert s.bandwidth_hz > 2000.0


def test_spectral_from_a_given_spectrogram_matches() -> None:
    y = triad((261.63, 329.63, 392.00), duration=4.0)[::2].copy()  # 22.05 kHz
    from_y = spectral(y=y, sr=22050)
    magnitude = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    from_s = spectral(S=magnitude, sr=22050)
    assert from_s.zero_crossing_rate is None
    assert from_s.centroid_hz == pytest.approx(from_y.centroid_hz, rel=1e-5)
    np.testing.assert_allclose(from_s.mfcc_mean, from_y.mfcc_mean, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(from_s.chroma_mean, from_y.chroma_mean, rtol=1e-5, atol=1e-6)


def test_spectral_matches_librosa_on_the_whole_track() -> None:
    # 60 s is several blocks of frames; a triad 30 cents sharp makes the tuning estimate matter.
    sr = 22050
    sharp = 2 ** (30 / 1200)
    y = triad(tuple(sharp * f for f in (261.63, 329.63, 392.00)), duration=60.0)[::2]
    y = y + click_track(120.0, duration=60.0)[::2]
    got = spectral(y=y, sr=sr)
    S = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    assert S.shape[1] > 2 * frontend.FRAME_BLOCK
    np.testing.assert_allclose(frontend.front_end(y=y).S, S, atol=1e-4 * S.max())
    assert got.zero_crossing_rate == pytest.approx(librosa.feature.zero_crossing_rate(y).mean())
    assert got.centroid_hz == pytest.approx(librosa.feature.spectral_centroid(S=S, sr=sr).mean())
    assert got.rolloff_hz == pytest.approx(librosa.feature.spectral_rolloff(S=S, sr=sr).mean())
    assert got.flatness == pytest.approx(librosa.feature.spectral_flatness(S=S).mean(), rel=1e-5)
    bandwidth = librosa.feature.spectral_bandwidth(S=S, sr=sr).mean()
    assert got.bandwidth_hz == pytest.approx(bandwidth)
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=S**2, sr=sr))
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=13)
    np.testing.assert_allclose(got.mfcc_mean, mfcc.mean(axis=1), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(got.mfcc_std, mfcc.std(axis=1), rtol=1e-4, atol=1e-3)
    chroma = librosa.feature.chroma_stft(S=S**2, sr=sr)  # tuning estimated from every frame
    np.testing.assert_allclose(got.chroma_mean, chroma.mean(axis=1), atol=0.01)
    assert set(np.argsort(got.chroma_mean)[-3:].tolist()) == {0, 4, 7}  # C, E and G


# --- the annotated corpus --------------------------------------------------------------------


@needs_corpus
def test_corpus_has_annotations() -> None:
    assert len(TEMPO_FILES) >= 8
    assert len(KEY_FILES) == 4


@needs_corpus
@pytest.mark.parametrize(("name", "bpm"), TEMPO_FILES, ids=[name for name, _ in TEMPO_FILES])
def test_tempo_of_corpus_tracks(name: str, bpm: float) -> None:
    estimate, _ = tempo(y=mono_44k(name), sr=SR)
    # 4 % at an accepted metrical level: the usual tempo "accuracy 2".
    assert at_some_metrical_level(estimate, bpm, tolerance=0.04), estimate


@needs_corpus
@pytest.mark.parametrize(("name", "expected"), KEY_FILES, ids=[name for name, _ in KEY_FILES])
def test_key_of_corpus_tracks(name: str, expected: str) -> None:
    tonic, mode, _ = key(y=mono_44k(name), sr=SR)
    expected_tonic, expected_mode = expected.split()
    assert (mode, camelot(key=tonic, mode=mode)) == (
        expected_mode,
        camelot(key=expected_tonic, mode=expected_mode),
    )


@needs_corpus
def test_extract_features_of_a_corpus_track() -> None:
    y, sr = load("good/rendered/mozart_k545.flac")
    f = analyse(y, sr)
    assert f.warnings == ()
    assert f.bpm is not None and f.loudness_lufs is not None and f.spectral_centroid_hz is not None
    assert at_some_metrical_level(f.bpm, 132.0, tolerance=0.04)
    assert (f.key, f.mode, f.camelot) == ("C", "major", "8B")
    assert -40.0 < f.loudness_lufs < -5.0
    assert 200.0 < f.spectral_centroid_hz < 5000.0
