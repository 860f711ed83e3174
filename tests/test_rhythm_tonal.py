"""playlista's tempo and key estimators on synthetic signals with known answers and the corpus."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from playlista.audio import rhythm, tonal
from playlista.audio.frontend import FRAME_RATE, N_MELS, SR, front_end
from playlista.errors import InvalidInputError
from tests.test_features import CORPUS, MANIFEST, needs_corpus

TEMPO_FILES = sorted(
    (e["file"], float(e["ground_truth"]["tempo_bpm"]))
    for e in MANIFEST
    if e["file"].startswith(("good/rendered/", "good/fof/", "good/blupi/"))
    and e["ground_truth"].get("tempo_bpm")
)
KEY_FILES = sorted(
    (e["file"], e["ground_truth"]["key"])
    for e in MANIFEST
    if e["file"].startswith("good/") and e["ground_truth"].get("key")
)


def hits(times: np.ndarray, gains: np.ndarray, *, duration: float, seed: int) -> np.ndarray:
    """Decaying noise bursts at ``times`` (s) with ``gains``, over a faint noise floor."""
    rng = np.random.default_rng(seed)
    y = 1e-3 * rng.standard_normal(int(duration * SR))
    n = int(0.03 * SR)
    burst = rng.standard_normal(n) * np.exp(-np.linspace(0.0, 8.0, n))
    for t, g in zip(times, gains, strict=True):
        i = int(t * SR)
        y[i : i + n] += g * burst[: y.size - i]
    return y.astype(np.float32)


def click_track(bpm: float, *, accent_every: int = 1, duration: float = 30.0) -> np.ndarray:
    """Clicks on every beat; with ``accent_every`` = 2, every other one three times as loud,
    which makes the half tempo the louder pulse."""
    times = np.arange(0.0, duration - 0.1, 60.0 / bpm)
    gains = np.where(np.arange(times.size) % accent_every == 0, 0.6, 0.2)
    return hits(times, gains, duration=duration, seed=int(bpm))


def estimate_tempo(y: np.ndarray) -> rhythm.Tempo:
    f = front_end(y=y)
    return rhythm.tempo(onset_envelope=f.onset_envelope, mel=f.mel, y=f.y)


def chord(midi_notes: tuple[int, ...], seconds: float) -> np.ndarray:
    """Notes with five decaying harmonics each, shape (n,)."""
    t = np.arange(int(seconds * SR)) / SR
    y = np.zeros_like(t)
    for note in midi_notes:
        f0 = 440.0 * 2 ** ((note - 69) / 12)
        for h in range(1, 6):
            y += 0.6 ** (h - 1) * np.sin(2 * np.pi * f0 * h * t)
    return (0.03 * y * np.minimum(1, 20 * t)).astype(np.float32)


def cadence(chords: list[tuple[int, ...]], repeats: int = 3) -> np.ndarray:
    return np.concatenate([chord(c, 1.5) for c in chords] * repeats)


def test_front_end_shapes_and_definitions() -> None:
    y = click_track(120.0, duration=10.0)
    f = front_end(y=y)
    frames = 1 + y.size // 512
    assert f.S.shape == (1025, frames)
    assert f.mel.shape == (N_MELS, frames)
    assert f.onset_envelope.shape == (frames,)
    assert pytest.approx(43.07, abs=0.01) == FRAME_RATE
    assert np.allclose(f.mel, np.asarray(front_end(y=y).mel))  # deterministic


@pytest.mark.parametrize("bpm", [72.0, 100.0, 128.0, 150.0])
def test_tempo_of_click_tracks(bpm: float) -> None:
    estimate = estimate_tempo(click_track(bpm))
    assert estimate.bpm == pytest.approx(bpm, rel=0.02)
    assert 0.5 < estimate.confidence <= 1.0


@pytest.mark.parametrize("bpm", [100.0, 120.0, 128.0])
def test_tempo_of_a_click_track_with_accents_that_suggest_its_half(bpm: float) -> None:
    # Every other click three times as loud: the envelope repeats most strongly at bpm / 2.
    estimate = estimate_tempo(click_track(bpm, accent_every=2))
    assert estimate.bpm == pytest.approx(bpm, rel=0.02)


def test_tempo_of_a_beat_whose_bar_halves_differ() -> None:
    # 150 BPM, strong and weak beats alternating (kick, snare): the beat, not the half bar.
    times = np.arange(0.0, 29.0, 60.0 / 150.0)
    gains = np.where(np.arange(times.size) % 2 == 0, 0.7, 0.5)
    estimate = estimate_tempo(hits(times, gains, duration=30.0, seed=3))
    assert estimate.bpm == pytest.approx(150.0, rel=0.02)


def test_tempo_confidence_is_low_on_noise() -> None:
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(30 * SR)).astype(np.float32)
    estimate = estimate_tempo(y)
    assert rhythm.MIN_BPM <= estimate.bpm <= rhythm.MAX_BPM
    assert estimate.confidence < 0.3


def test_tempo_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        rhythm.tempo(onset_envelope=np.zeros((2, 100), np.float32))
    with pytest.raises(InvalidInputError):
        rhythm.tempo(onset_envelope=np.zeros(1000, np.float32))  # flat
    with pytest.raises(InvalidInputError):
        rhythm.tempo(onset_envelope=np.ones(50, np.float32))  # 1.2 s
    with pytest.raises(InvalidInputError):
        rhythm.tempo(onset_envelope=np.full(1000, np.nan, np.float32))
    with pytest.raises(InvalidInputError):
        rhythm.tempo(onset_envelope=np.random.default_rng(0).random(1000), mel=np.ones((128, 10)))


def test_key_of_a_cadence_in_a_minor_key() -> None:
    # A minor: i - iv - V - i, the bass on the roots; its relative major, C, shares six notes.
    chords = [(45, 57, 60, 64), (50, 57, 62, 65), (52, 56, 59, 64), (45, 57, 60, 64)]
    assert tonal.key(S=front_end(y=cadence(chords)).S)[:2] == ("A", "minor")


def test_key_of_a_cadence_in_a_major_key() -> None:
    # F major: I - IV - V7 - I; its dominant, C major, differs by one note.
    chords = [(41, 57, 60, 65), (46, 58, 62, 65), (48, 58, 64, 67), (41, 57, 60, 65)]
    estimate = tonal.key(S=front_end(y=cadence(chords)).S)
    assert estimate[:2] == ("F", "major")
    assert 0.0 < estimate.strength <= 1.0


def test_key_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        tonal.key(S=np.ones((513, 10), np.float32))
    with pytest.raises(InvalidInputError):
        tonal.key(S=np.zeros((1025, 10), np.float32))
    with pytest.raises(InvalidInputError):
        tonal.key(S=np.full((1025, 10), np.inf, np.float32))


def mono_22k(name: str) -> np.ndarray:
    y, sr = sf.read(CORPUS / name, dtype="float32", always_2d=True)
    return np.ascontiguousarray(soxr.resample(y.mean(axis=1), sr, SR), dtype=np.float32)


@needs_corpus
@pytest.mark.parametrize(("name", "bpm"), TEMPO_FILES, ids=[n for n, _ in TEMPO_FILES])
def test_tempo_of_corpus_tracks(name: str, bpm: float) -> None:
    assert estimate_tempo(mono_22k(name)).bpm == pytest.approx(bpm, rel=0.04)


@needs_corpus
@pytest.mark.parametrize(("name", "expected"), KEY_FILES, ids=[n for n, _ in KEY_FILES])
def test_key_of_corpus_tracks(name: str, expected: str) -> None:
    estimate = tonal.key(S=front_end(y=mono_22k(name)).S)
    assert f"{estimate.tonic} {estimate.mode}" == expected
