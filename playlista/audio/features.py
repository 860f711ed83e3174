"""Descriptors of decoded audio: tempo, key, loudness, rhythm and timbre.

Each family is a librosa-style function (keyword-only, numpy in, plain values out) that works on
its own. :func:`extract_features` runs them all on one decoded signal: it derives mono once,
resamples it once per analysis rate (44.1 kHz for essentia's rhythm and key family, 22.05 kHz for
librosa's spectral family) and computes one STFT for every spectral descriptor.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import librosa
import numpy as np
import soxr

from playlista.audio import bs1770, stft
from playlista.audio.essentia_algorithms import es
from playlista.audio.longtrack import WholeFile, channel_mean, loudness_channels, sum_of_squares
from playlista.audio.sources import (
    BEAT_TOLERANCE,
    KEY_PROFILE,
    N_MFCC,
    ROLL_PERCENT,
    TEMPO_METHOD,
)
from playlista.errors import InvalidInputError
from playlista.records import Features

logger = logging.getLogger(__name__)

ESSENTIA_SR = 44100
LIBROSA_SR = 22050
N_FFT = 2048
HOP_LENGTH = 512
MIN_SECONDS = 1.0
MIN_BPM, MAX_BPM = 40, 208  # RhythmExtractor2013's own search range
# Below this RMS the estimators report arbitrary values (RhythmExtractor2013 finds 738 BPM in
# digital silence, KeyExtractor says A minor), so they are not asked.
SILENCE_RMS = 10 ** (-80 / 20)

_Family = tuple[dict[str, Any], list[str]]  # a family's Features fields and warnings
_PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


class SpectralFeatures(NamedTuple):
    """Frame averages of the librosa spectral family; see :func:`spectral`."""

    centroid_hz: float
    rolloff_hz: float
    flatness: float
    bandwidth_hz: float
    zero_crossing_rate: float | None
    mfcc_mean: np.ndarray
    mfcc_std: np.ndarray
    chroma_mean: np.ndarray


def extract_features(
    *,
    y: np.ndarray,
    sr: int,
    whole: WholeFile | None = None,
    timings: dict[str, float] | None = None,
) -> Features:
    """Every descriptor of one decoded track.

    ``y`` [shape=(channels, n)] holds at least one second of floating-point samples, full scale
    1.0, at the file's native rate ``sr`` in Hz. With ``whole``, ``y`` holds excerpts of a
    longer file: loudness and energy are taken from ``whole``, measured on the whole file, the
    other families run on the excerpts, and a warning says so. A family that fails on numeric
    grounds (silent or degenerate input, essentia's ``RuntimeError``, a non-finite result)
    leaves its fields ``None`` and adds a line to ``Features.warnings``; the others still run.
    ``timings``, when given, receives the seconds spent per family under ``features.<family>``
    (``features.resample`` for the downmix and the resampling they share).
    """
    _check_samples(y, sr=sr, ndims=(2,))
    clock = time.perf_counter()
    mono = channel_mean(y)
    y44 = _resample(mono, sr=sr, target_sr=ESSENTIA_SR)
    y22 = _resample(mono, sr=sr, target_sr=LIBROSA_SR)
    spent = {"resample": time.perf_counter() - clock}
    families: dict[str, Callable[[], _Family]] = {
        "tempo": lambda: (dict(zip(("bpm", "bpm_confidence"), tempo(y=y44), strict=True)), []),
        "key": lambda: (_key_fields(y44), []),
        "loudness": lambda: _loudness(y, sr, whole),
        "energy": lambda: ({"energy": energy(y=mono) if whole is None else whole.energy}, []),
        "danceability": lambda: ({"danceability": danceability(y=y44)}, []),
        "onset_rate": lambda: ({"onset_rate": onset_rate(y=y44)}, []),
        "spectral": lambda: (_spectral_fields(y22), []),
    }
    values: dict[str, Any] = {}
    warnings: list[str] = [whole.note()] if whole is not None else []
    for family, compute in families.items():
        clock = time.perf_counter()
        try:
            family_values, notes = compute()
        except (InvalidInputError, RuntimeError) as exc:
            family_values, notes = {}, [f"{family}: {exc}"]  # its fields keep their None default
        spent[family] = time.perf_counter() - clock
        values.update(family_values)
        for note in notes:
            logger.warning("%s", note)
        warnings.extend(notes)
    if timings is not None:
        timings.update({f"features.{family}": seconds for family, seconds in spent.items()})
    return Features(**values, warnings=tuple(warnings))


def tempo(*, y: np.ndarray, sr: int = ESSENTIA_SR) -> tuple[float, float]:
    """Tempo of mono ``y`` [shape=(n,)] and how steadily the beat tracker held it.

    ``y`` is resampled from ``sr`` Hz to 44.1 kHz first if the rates differ. Returns ``bpm`` in
    [40, 208] and ``confidence`` in [0, 1]: the share of tracked inter-beat intervals within 5 %
    of ``60 / bpm``, since degara has no confidence of its own. It reads 1.0 on a click track,
    0.7-1.0 on steadily played music and 0.2-0.55 on noise or free-tempo music; it is not on
    multifeature's 0-5.32 scale.
    """
    y = _essentia_input(y, sr=sr)
    _require_sound(y)
    # A fresh instance per call (~0.1 s to build): a reused one prints a warning per frame once
    # any other essentia network has been built and deleted in between.
    extractor = es.RhythmExtractor2013(method=TEMPO_METHOD, minTempo=MIN_BPM, maxTempo=MAX_BPM)
    bpm, ticks, _, _, _ = extractor(y)
    if not MIN_BPM <= bpm <= MAX_BPM or len(ticks) < 4:
        raise InvalidInputError(f"no beat found ({len(ticks)} beats at {bpm:.1f} BPM)")
    period = 60.0 / bpm
    confidence = np.mean(np.abs(np.diff(ticks) - period) <= BEAT_TOLERANCE * period)
    return float(bpm), float(confidence)


def key(*, y: np.ndarray, sr: int = ESSENTIA_SR) -> tuple[str, str, float]:
    """Key, mode and key strength of mono ``y`` [shape=(n,)].

    ``y`` is resampled from ``sr`` Hz to 44.1 kHz first if the rates differ. Returns the tonic as
    essentia spells it (C, C#, D, Eb, E, F, F#, G, Ab, A, Bb, B), 'major' or 'minor', and a
    strength in (0, 1]: how well the signal's pitch-class profile fits the key's profile.
    """
    y = _essentia_input(y, sr=sr)
    _require_sound(y)
    tonic, mode, strength = es.KeyExtractor(profileType=KEY_PROFILE, sampleRate=ESSENTIA_SR)(y)
    if not strength > 0:
        raise InvalidInputError("no tonal content: key strength is 0")
    return str(tonic), str(mode), float(strength)


def camelot(*, key: str, mode: str) -> str:
    """Camelot wheel code of a key: C major is '8B', A minor is '8A'.

    ``key`` is a letter A-G followed by any number of '#' or 'b' (so 'C#' and 'Db' agree);
    ``mode`` is 'major' or 'minor'.
    """
    if not key or key[0].upper() not in _PITCH_CLASSES or set(key[1:]) - {"#", "b"}:
        raise InvalidInputError(f"not a key name: {key!r}")
    if mode not in ("major", "minor"):
        raise InvalidInputError(f"mode must be 'major' or 'minor', got {mode!r}")
    pitch_class = _PITCH_CLASSES[key[0].upper()] + key.count("#") - key.count("b")
    # A minor key shares its number with its relative major, three semitones up.
    major_pitch_class = pitch_class + 3 if mode == "minor" else pitch_class
    # One hour clockwise is a fifth (7 semitones) up; C major sits at 8 o'clock.
    hour = (7 * major_pitch_class + 7) % 12 + 1
    return f"{hour}{'A' if mode == 'minor' else 'B'}"


def loudness(*, y: np.ndarray, sr: int) -> tuple[float | None, float | None]:
    """EBU R 128 integrated loudness (LUFS) and loudness range (LU) of the original channels.

    ``y`` [shape=(n,) or (channels, n)] at ``sr`` Hz. One channel is measured as BS.1770 mono,
    weight 1.0 beside a silent right channel (duplicating it would add 3 dB); more than two
    are folded into two, even-indexed channels left and odd right, as the layout is unknown
    here. The K-weighting is designed at ``sr``, whatever the rate. Both values are None when
    nothing passes the -70 LUFS absolute gate; the range is None when ``y`` is shorter than one
    3-s short-term block.
    """
    values, notes = _loudness(y, sr)
    for note in notes:
        logger.warning("%s", note)
    return values["loudness_lufs"], values["loudness_range_lu"]


def danceability(*, y: np.ndarray, sr: int = ESSENTIA_SR) -> float:
    """Essentia's detrended-fluctuation danceability of a mono signal [shape=(n,)].

    Usually 0 to 3, higher is more danceable; digital silence gives 0.0.
    """
    y = _essentia_input(y, sr=sr)
    value, _ = es.Danceability(sampleRate=ESSENTIA_SR)(y)
    return _finite(value, "danceability")


def onset_rate(*, y: np.ndarray, sr: int = ESSENTIA_SR) -> float:
    """Detected onsets per second of a mono signal [shape=(n,)]; silence gives 0.0."""
    y = _essentia_input(y, sr=sr)
    _, rate = es.OnsetRate()(y)
    return _finite(rate, "onset rate")


def energy(*, y: np.ndarray) -> float:
    """RMS amplitude, linear, full scale 1.0 (a full-scale sine gives 0.707).

    ``y`` [shape=(n,) or (channels, n)] is averaged over channels first.
    """
    _check_samples(y, sr=None, ndims=(1, 2))
    mono = channel_mean(y) if y.ndim == 2 else y
    return _finite(math.sqrt(sum_of_squares(mono) / mono.size), "energy")


def spectral(
    *, y: np.ndarray | None = None, sr: int = LIBROSA_SR, S: np.ndarray | None = None
) -> SpectralFeatures:
    """Frame averages of librosa's spectral descriptors, MFCC and chroma from one spectrogram.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)] or None
        Mono samples: needed for the zero-crossing rate (None without them), and for ``S``
        when ``S`` is not given.
    sr : int > 0
        Sampling rate in Hz.
    S : np.ndarray [shape=(1 + n_fft // 2, t)] or None
        Magnitude spectrogram; when None, computed from ``y`` with n_fft=2048 and hop 512.
        Its square feeds the mel filterbank and chroma, so every descriptor shares one STFT.

    Returns
    -------
    SpectralFeatures
        ``centroid_hz``, ``rolloff_hz`` (85 % of the spectral magnitude) and ``bandwidth_hz``
        in Hz; ``flatness`` in [0, 1]; ``zero_crossing_rate`` in crossings per sample;
        ``mfcc_mean`` and ``mfcc_std`` [shape=(13,)] of 13 MFCCs of a 128-band log-mel
        spectrogram; ``chroma_mean`` [shape=(12,)], C first, each frame scaled to max 1.
    """
    _check_rate(sr)
    if y is not None:
        y = np.ascontiguousarray(_check_samples(y, sr=sr, ndims=(1,)), dtype=np.float32)
        _require_sound(y)
    spectrogram = stft.blocks_of(y=y, S=S, n_fft=N_FFT, hop_length=HOP_LENGTH)
    n_fft = 2 * (spectrogram.tuning_frames.shape[0] - 1)
    # One tuning per track: every 8th frame estimates it as well, at an eighth of the cost.
    tuning = librosa.estimate_tuning(S=spectrogram.tuning_frames**2, sr=sr, n_fft=n_fft)
    blocks = [_frame_descriptors(block, sr=sr, tuning=tuning) for block in spectrogram.blocks()]
    shape, mel, chroma = (np.concatenate(parts, axis=1) for parts in zip(*blocks, strict=True))
    centroid, rolloff, flatness, bandwidth = shape.mean(axis=1)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=N_MFCC)
    zcr = None
    if y is not None:
        rate = stft.zero_crossing_rate(y, frame_length=n_fft, hop_length=HOP_LENGTH)
        zcr = _finite(rate, "zero-crossing rate")
    return SpectralFeatures(
        centroid_hz=_finite(centroid, "spectral centroid"),
        rolloff_hz=_finite(rolloff, "spectral rolloff"),
        flatness=_finite(flatness, "spectral flatness"),
        bandwidth_hz=_finite(bandwidth, "spectral bandwidth"),
        zero_crossing_rate=zcr,
        mfcc_mean=_finite(mfcc.mean(axis=1), "MFCC mean"),
        mfcc_std=_finite(mfcc.std(axis=1), "MFCC std"),
        chroma_mean=_finite(chroma.mean(axis=1), "chroma mean"),
    )


def warm_up() -> float:
    """Run :func:`extract_features` on 3 s of a synthetic signal; return the seconds spent.

    A process's first call pays for librosa's numba compilation and essentia's first
    algorithm set-up; a worker calls this at start-up so that its first track does not.
    """
    start = time.perf_counter()
    t = np.arange(3 * ESSENTIA_SR) / ESSENTIA_SR
    triad = sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0))
    clicks = (np.mod(t, 0.5) < 0.01) * np.sin(2 * np.pi * 2000.0 * t)
    mono = (0.1 * triad + 0.5 * clicks).astype(np.float32)
    extract_features(y=np.stack([mono, 0.5 * mono]), sr=ESSENTIA_SR)
    return time.perf_counter() - start


def _key_fields(y44: np.ndarray) -> dict[str, Any]:
    tonic, mode, strength = key(y=y44)
    camelot_code = camelot(key=tonic, mode=mode)
    return {"key": tonic, "mode": mode, "key_strength": strength, "camelot": camelot_code}


def _spectral_fields(y22: np.ndarray) -> dict[str, Any]:
    s = spectral(y=y22, sr=LIBROSA_SR)
    return {
        "spectral_centroid_hz": s.centroid_hz,
        "spectral_rolloff_hz": s.rolloff_hz,
        "spectral_flatness": s.flatness,
        "spectral_bandwidth_hz": s.bandwidth_hz,
        "zero_crossing_rate": s.zero_crossing_rate,
        "mfcc_mean": tuple(s.mfcc_mean.tolist()),
        "mfcc_std": tuple(s.mfcc_std.tolist()),
        "chroma_mean": tuple(s.chroma_mean.tolist()),
    }


def _frame_descriptors(
    S: np.ndarray, *, sr: float, tuning: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame descriptors of magnitude spectrogram ``S`` [shape=(1 + n_fft // 2, t)].

    Returns centroid, rolloff, flatness and bandwidth [shape=(4, t)], mel power
    [shape=(128, t)] and chroma [shape=(12, t)].
    """
    n_fft = 2 * (S.shape[0] - 1)
    power = S**2
    centroid = librosa.feature.spectral_centroid(S=S, sr=sr, n_fft=n_fft)
    shape = np.concatenate(
        [
            centroid,
            librosa.feature.spectral_rolloff(S=S, sr=sr, n_fft=n_fft, roll_percent=ROLL_PERCENT),
            librosa.feature.spectral_flatness(S=S),
            librosa.feature.spectral_bandwidth(S=S, sr=sr, n_fft=n_fft, centroid=centroid),
        ]
    )
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_fft=n_fft)
    chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=n_fft, tuning=tuning)
    return shape, mel, chroma


def _loudness(y: np.ndarray, sr: int, whole: WholeFile | None = None) -> _Family:
    """Integrated loudness and range as Features fields (``whole``'s if given), and why None."""
    if whole is not None:
        return _fields(whole.loudness_lufs, whole.loudness_range_lu, seconds=whole.seconds)
    _check_samples(y, sr=sr, ndims=(1, 2))
    channels = loudness_channels(y.reshape(1, -1) if y.ndim == 1 else y)
    integrated, loudness_range = bs1770.loudness(channels, sr)
    return _fields(integrated, loudness_range, seconds=channels.shape[1] / sr)


def _fields(integrated: float | None, lra: float | None, *, seconds: float) -> _Family:
    if integrated is None:
        note = "loudness: nothing above the -70 LUFS absolute gate (silent input)"
        return {"loudness_lufs": None, "loudness_range_lu": None}, [note]
    if seconds < bs1770.SHORT_TERM_SECONDS:
        note = "loudness range: input shorter than one 3-s short-term block"
        return {"loudness_lufs": integrated, "loudness_range_lu": None}, [note]
    return {"loudness_lufs": integrated, "loudness_range_lu": lra}, []


def _check_rate(sr: object) -> None:
    if isinstance(sr, bool) or not isinstance(sr, numbers.Real) or not 0 < float(sr) < math.inf:
        raise InvalidInputError(f"sr must be a positive number of Hz, got {sr!r}")


def _check_samples(y: object, *, sr: float | None, ndims: tuple[int, ...]) -> np.ndarray:
    """Return ``y`` if it is finite floating-point audio of an accepted shape, else raise."""
    if not isinstance(y, np.ndarray) or y.ndim not in ndims:
        shapes = " or ".join({1: "(n,)", 2: "(channels, n)"}[n] for n in ndims)
        raise InvalidInputError(f"y must be a numpy array of shape {shapes}")
    if not np.issubdtype(y.dtype, np.floating):
        raise InvalidInputError(f"y must hold floating-point samples, got {y.dtype}")
    if sr is not None:
        _check_rate(sr)
        if y.shape[-1] < MIN_SECONDS * sr:
            seconds = y.shape[-1] / sr
            raise InvalidInputError(f"{seconds:.2f} s of audio is too short (< {MIN_SECONDS} s)")
    if y.size == 0 or not np.isfinite(y).all():
        raise InvalidInputError("y is empty or holds NaN or infinite samples")
    return y


def _essentia_input(y: np.ndarray, *, sr: int) -> np.ndarray:
    """Mono float32 samples at 44.1 kHz, contiguous as essentia requires."""
    return _resample(_check_samples(y, sr=sr, ndims=(1,)), sr=sr, target_sr=ESSENTIA_SR)


def _require_sound(y: np.ndarray) -> None:
    # A float32 dot product is cheap and far more precise than this threshold needs.
    rms = math.sqrt(float(np.dot(y, y)) / y.size)
    if rms < SILENCE_RMS:
        raise InvalidInputError(f"silent input (RMS {rms:.1e} < -80 dBFS)")


def _resample(y: np.ndarray, *, sr: float, target_sr: float) -> np.ndarray:
    """Float32, contiguous samples at ``target_sr`` (soxr's default high quality)."""
    y = np.ascontiguousarray(y, dtype=np.float32)
    if sr == target_sr:
        return y
    return np.ascontiguousarray(soxr.resample(y, sr, target_sr), dtype=np.float32)


def _finite(value: Any, what: str) -> Any:
    """``value`` as a float, or an array as float64, if every element is finite; else raise."""
    if not np.isfinite(value).all():
        raise InvalidInputError(f"{what} is not finite")
    return np.asarray(value, dtype=np.float64) if np.ndim(value) else float(value)
