"""Descriptors of decoded audio: tempo, key, loudness, rhythm and timbre.

Each family is a librosa-style function (keyword-only, numpy in, plain values out) that works on
its own, from the mono signal at 22.05 kHz or from what the front end
(:mod:`playlista.audio.frontend`) made of it. :func:`extract_features` runs them all on one
:class:`~playlista.audio.prepare.Decoded` file: one magnitude spectrogram feeds the spectral
shape, mel bands, MFCC, chroma and the key; one set of onset detection functions feeds the
tempo and the onset rate; loudness, energy and the envelope danceability is computed from were
measured on the original signal while it was decoded.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

import essentia
import librosa
import numba
import numpy as np
import scipy.fft
import soxr

from playlista.audio import bs1770, frontend, rhythm, tonal
from playlista.audio.essentia_algorithms import es
from playlista.audio.frontend import FrontEnd, OnsetFunctions
from playlista.audio.prepare import ANALYSIS_SR, Decoded, channel_mean, loudness_channels
from playlista.audio.sources import N_MFCC, ROLL_PERCENT
from playlista.errors import InvalidInputError
from playlista.records import Features

logger = logging.getLogger(__name__)

SR = ANALYSIS_SR
N_FFT = frontend.N_FFT
HOP_LENGTH = frontend.HOP_LENGTH
N_MELS = 128
MIN_SECONDS = 1.0
# Below this RMS the estimators report arbitrary values (essentia's beat tracker found 738 BPM
# in digital silence, a key profile says A minor), so they are not asked.
SILENCE_RMS = 10 ** (-80 / 20)
TUNING_FRAME_STEP = 8  # every 8th frame estimates the tuning as well as all of them
# Danceability's detrended fluctuation analysis: segment lengths from 310 ms to 8.8 s,
# each 10 % longer than the last (essentia's Danceability defaults).
DFA_MIN_MS, DFA_MAX_MS, DFA_STEP = 310.0, 8800.0, 1.1

_Family = tuple[dict[str, Any], list[str]]  # a family's Features fields and warnings
_PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


class SpectralFeatures(NamedTuple):
    """Frame averages of the spectral family; see :func:`spectral`."""

    centroid_hz: float
    rolloff_hz: float
    flatness: float
    bandwidth_hz: float
    zero_crossing_rate: float | None
    mfcc_mean: np.ndarray
    mfcc_std: np.ndarray
    chroma_mean: np.ndarray


def extract_features(
    decoded: Decoded, *, clock: Callable[[], float] = time.perf_counter
) -> tuple[Features, dict[str, float]]:
    """Every descriptor of one decoded file, and the seconds spent on each family.

    ``decoded.samples`` holds at least one second of mono audio at 22.05 kHz: the whole file,
    or excerpts of a longer one (its loudness, energy and danceability are still the whole
    file's, and a warning says what came from excerpts). A family that fails on numeric
    grounds (silent or degenerate input, an essentia ``RuntimeError``, a non-finite result)
    leaves its fields ``None`` and adds a line to ``Features.warnings``; the others still run.
    The timings are keyed ``features.<family>``; ``features.front_end`` and
    ``features.onsets`` are the shared front end. ``clock`` times them: wall time by default,
    ``time.process_time`` for CPU time.
    """
    y = _check_samples(decoded.samples, sr=decoded.sr, ndims=(1,))
    if decoded.sr != SR:
        raise InvalidInputError(f"decoded samples must be at {SR} Hz, got {decoded.sr}")
    spent: dict[str, float] = {}

    def timed(name: str, compute: Callable[[], Any]) -> Any:
        started = clock()
        try:
            return compute()
        finally:
            key = f"features.{name}"
            spent[key] = spent.get(key, 0.0) + clock() - started

    def sound() -> np.ndarray:
        _require_sound(y)
        return y

    front: FrontEnd = timed("front_end", lambda: frontend.front_end(y=y))
    onsets: OnsetFunctions = timed("onsets", lambda: frontend.onset_functions(y=y))
    families: dict[str, Callable[[], _Family]] = {
        "loudness": lambda: _loudness_fields(decoded),
        "energy": lambda: ({"energy": _finite(decoded.energy, "energy")}, []),
        "danceability": lambda: (
            {"danceability": danceability(envelope=decoded.envelope)},
            [],
        ),
        "spectral": lambda: (_spectral_fields(sound(), front), []),
        "key": lambda: (_key_fields(sound(), front), []),
        "tempo": lambda: (_tempo_fields(sound(), front), []),
        "onset_rate": lambda: (
            {"onset_rate": onset_rate(onsets=onsets, seconds=y.size / SR)},
            [],
        ),
    }
    values: dict[str, Any] = {}
    warnings: list[str] = [note] if (note := decoded.note()) else []
    for family, compute in families.items():
        try:
            family_values, notes = timed(family, compute)
        except (InvalidInputError, RuntimeError) as exc:
            family_values, notes = {}, [f"{family}: {exc}"]  # its fields keep their None default
        values.update(family_values)
        for note in notes:
            logger.warning("%s", note)
        warnings.extend(notes)
    return Features(**values, warnings=tuple(warnings)), spent


# ---- tempo and onsets ------------------------------------------------------------------------


def tempo(
    *, y: np.ndarray | None = None, sr: float = SR, front: FrontEnd | None = None
) -> tuple[float, float]:
    """Tempo of mono ``y`` [shape=(n,)], or of its front end, and how sure the choice is.

    :func:`playlista.audio.rhythm.tempo`: the onset envelope's periodicities, each at its
    double, half, 3/2 and 2/3, scored on the evidence that separates metrical levels. Returns
    ``bpm`` in [40, 240] and ``confidence`` in [0, 1]: near 1 on a click track, near 0 on noise.
    """
    if front is None:
        y = _analysis_input(y, sr=sr)
        _require_sound(y)
        front = frontend.front_end(y=y)
    estimate = rhythm.tempo(onset_envelope=front.onset_envelope, mel=front.mel)
    return _finite(estimate.bpm, "tempo"), _finite(estimate.confidence, "tempo confidence")


def onset_rate(
    *,
    y: np.ndarray | None = None,
    sr: float = SR,
    onsets: OnsetFunctions | None = None,
    seconds: float | None = None,
) -> float:
    """Detected onsets per second of mono ``y`` [shape=(n,)], or of its ``onsets``.

    essentia's ``Onsets`` (as its ``OnsetRate`` runs it: HFC and complex-domain detection
    functions weighted equally, at 86 frames per second) counts the onsets; with ``onsets``
    given, ``seconds`` is the signal's length. Silence gives 0.0.
    """
    if onsets is None:
        y = _analysis_input(y, sr=sr)
        onsets = frontend.onset_functions(y=y)
        seconds = y.size / SR
    if not seconds:
        raise InvalidInputError("onset_rate needs the signal's length in seconds")
    if not (onsets.hfc.any() and onsets.complex.any()):
        return 0.0
    detections = essentia.array(np.vstack([onsets.hfc, onsets.complex]))
    times = es.Onsets(frameRate=onsets.frame_rate)(detections, [1.0, 1.0])
    return _finite(len(times) / seconds, "onset rate")


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
        y = _check_samples(y, sr=sr, ndims=(1,))
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
    return _finite(1.0 / mean_slope if mean_slope > 0 else 0.0, "danceability")


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


# ---- key ---------------------------------------------------------------------------------------


def key(
    *, y: np.ndarray | None = None, sr: float = SR, S: np.ndarray | None = None
) -> tuple[str, str, float]:
    """Key, mode and key strength of mono ``y`` [shape=(n,)], or of its spectrogram ``S``.

    ``S`` [shape=(1025, t)] is the front end's magnitude spectrogram at 22.05 kHz.
    :func:`playlista.audio.tonal.key`: treble and bass pitch-class profiles scored against the
    24 key profiles. Returns the tonic as essentia spells it (C, C#, D, Eb, E, F, F#, G, Ab, A,
    Bb, B), 'major' or 'minor', and a strength in [0, 1].
    """
    if S is None:
        S = frontend.front_end(y=_analysis_input(y, sr=sr)).S
    estimate = tonal.key(S=S)
    if not estimate.strength > 0:
        raise InvalidInputError("no tonal content: key strength is 0")
    return estimate.tonic, estimate.mode, float(estimate.strength)


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


# ---- loudness and energy ---------------------------------------------------------------------


def loudness(*, y: np.ndarray, sr: int) -> tuple[float | None, float | None]:
    """EBU R 128 integrated loudness (LUFS) and loudness range (LU) of the original channels.

    ``y`` [shape=(n,) or (channels, n)] at ``sr`` Hz. One channel is measured as BS.1770 mono,
    weight 1.0 beside a silent right channel (duplicating it would add 3 dB); more than two
    are folded into two, even-indexed channels left and odd right, as the layout is unknown
    here. The K-weighting is designed at ``sr``, whatever the rate. Both values are None when
    nothing passes the -70 LUFS absolute gate; the range is None when ``y`` is shorter than one
    3-s short-term block.
    """
    y = _check_samples(y, sr=sr, ndims=(1, 2))
    channels = loudness_channels(y.reshape(1, -1) if y.ndim == 1 else y)
    integrated, loudness_range = bs1770.loudness(channels, sr)
    values, notes = _fields(integrated, loudness_range, seconds=channels.shape[1] / sr, values={})
    for note in notes:
        logger.warning("%s", note)
    return values["loudness_lufs"], values["loudness_range_lu"]


def energy(*, y: np.ndarray) -> float:
    """RMS amplitude, linear, full scale 1.0 (a full-scale sine gives 0.707).

    ``y`` [shape=(n,) or (channels, n)] is averaged over channels first.
    """
    _check_samples(y, sr=None, ndims=(1, 2))
    mono = channel_mean(y) if y.ndim == 2 else np.asarray(y, np.float32)
    return _finite(math.sqrt(float(np.dot(mono, mono.astype(np.float64))) / mono.size), "energy")


# ---- the spectral family -----------------------------------------------------------------------


def spectral(
    *,
    y: np.ndarray | None = None,
    sr: float = SR,
    S: np.ndarray | None = None,
    mel_db: np.ndarray | None = None,
) -> SpectralFeatures:
    """Frame averages of librosa's spectral descriptors, MFCC and chroma from one spectrogram.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)] or None
        Mono samples at 22.05 kHz (another ``sr`` is resampled first): needed for the
        zero-crossing rate (None without them), and for ``S`` when ``S`` is not given.
    sr : int > 0
        Sampling rate of ``y`` in Hz.
    S : np.ndarray [shape=(1 + n_fft // 2, t)] or None
        Magnitude spectrogram at 22.05 kHz (n_fft=2048, hop 512), as the front end
        (:func:`playlista.audio.frontend.front_end`) or ``librosa.stft`` gives it.
    mel_db : np.ndarray [shape=(128, t)] or None
        The front end's log-mel spectrogram of ``S``; computed from ``S`` if not given.

    Returns
    -------
    SpectralFeatures
        The frame means of what librosa's ``spectral_centroid``, ``spectral_rolloff`` (85 % of
        the magnitude), ``spectral_bandwidth`` (Hz), ``spectral_flatness`` (0-1) and
        ``zero_crossing_rate`` compute; ``mfcc_mean`` and ``mfcc_std`` [shape=(13,)] of 13 MFCCs
        of the 128-band log-mel spectrogram; ``chroma_mean`` [shape=(12,)], C first, each frame
        scaled to max 1, tuned to the track's tuning as librosa estimates it.
    """
    if y is not None:
        y = _analysis_input(y, sr=sr)
        _require_sound(y)
    if S is None:
        if y is None:
            raise InvalidInputError("spectral() needs y or S")
        front = frontend.front_end(y=y)
        S, mel_db = front.S, front.mel_db
    frames = np.ascontiguousarray(_checked_spectrogram(S).T)  # one row per frame
    n_fft = 2 * (frames.shape[1] - 1)
    freqs = np.arange(frames.shape[1], dtype=np.float64) * (SR / n_fft)
    shape = np.empty((frames.shape[0], 4))
    _frame_shape(frames, freqs, ROLL_PERCENT, shape)
    centroid, bandwidth, rolloff, flatness = shape.T
    power = np.square(frames)
    if mel_db is None:
        mel_db = frontend.power_to_db(power @ frontend.mel_basis(n_fft).T).T
    mfcc = scipy.fft.dct(mel_db, axis=0, type=2, norm="ortho")[:N_MFCC]  # (13, t)
    tuning = estimate_tuning(power=power[::TUNING_FRAME_STEP], n_fft=n_fft)
    chroma = power @ _chroma_basis(n_fft, round(float(tuning), 2)).T  # (t, 12)
    peak = chroma.max(axis=1, keepdims=True)
    chroma = np.divide(chroma, peak, out=np.zeros_like(chroma), where=peak > 1e-30)
    zcr = None
    if y is not None:
        zcr = _finite(zero_crossing_rate(y=y), "zero-crossing rate")
    return SpectralFeatures(
        centroid_hz=_finite(centroid.mean(), "spectral centroid"),
        rolloff_hz=_finite(rolloff.mean(), "spectral rolloff"),
        flatness=_finite(flatness.mean(), "spectral flatness"),
        bandwidth_hz=_finite(bandwidth.mean(), "spectral bandwidth"),
        zero_crossing_rate=zcr,
        mfcc_mean=_finite(mfcc.mean(axis=1), "MFCC mean"),
        mfcc_std=_finite(mfcc.std(axis=1), "MFCC std"),
        chroma_mean=_finite(chroma.mean(axis=0), "chroma mean"),
    )


def estimate_tuning(*, power: np.ndarray, n_fft: int = N_FFT, resolution: float = 0.01) -> float:
    """``librosa.estimate_tuning(S=power.T)``: the tuning offset in fractions of a semitone.

    ``power`` [shape=(t, 1 + n_fft // 2)] at 22.05 kHz. As librosa does: the spectral peaks
    between 150 Hz and 4 kHz that reach a tenth of their frame's maximum, parabolically
    interpolated, those of at least the median magnitude, and the most common deviation from
    equal temperament in steps of ``resolution``. Only the bins of that band are read.
    """
    freqs = np.arange(power.shape[1]) * (SR / n_fft)
    lo = max(1, int(np.argmax(freqs >= 150.0)))
    hi = int(np.argmax(freqs >= 4000.0))
    x = power[:, lo - 1 : hi + 1].astype(np.float64)
    mid, left, right = x[:, 1:-1], x[:, :-2], x[:, 2:]
    loud = x * (x > 0.1 * power.max(axis=1, keepdims=True))
    peak = (loud[:, 1:-1] > loud[:, :-2]) & (loud[:, 1:-1] >= loud[:, 2:])
    curvature = right + left - 2 * mid
    slope = (right - left) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(slope) >= np.abs(curvature), 0.0, -slope / curvature)
    pitches = ((np.arange(lo, hi) + shift) * (SR / n_fft))[peak]
    mags = (mid + 0.5 * slope * shift)[peak]
    if pitches.size == 0:
        return 0.0
    kept = pitches[(mags >= np.median(mags)) & (pitches > 0)]
    residual = np.mod(12 * np.log2(kept / (440.0 / 16)), 1.0)
    residual[residual >= 0.5] -= 1.0
    counts, edges = np.histogram(residual, np.linspace(-0.5, 0.5, int(np.ceil(1 / resolution)) + 1))
    return float(edges[np.argmax(counts)])


def zero_crossing_rate(
    *, y: np.ndarray, frame_length: int = N_FFT, hop_length: int = HOP_LENGTH
) -> float:
    """Mean of ``librosa.feature.zero_crossing_rate(y)`` over its frames.

    Sign changes between neighbouring samples (|y| <= 1e-10 counts as 0, and 0 as positive)
    are counted once over the whole signal; each frame's count is a difference of their
    running total.
    """
    padded = np.pad(np.asarray(y, np.float32), frame_length // 2, mode="edge")  # center=True
    n_frames = 1 + (padded.size - frame_length) // hop_length
    counts = np.empty(n_frames, np.int64)
    _frame_sign_changes(padded, frame_length, hop_length, counts)
    # librosa counts the pairs inside a frame and divides by the frame's length.
    return float(counts.mean() / frame_length)


@numba.njit(cache=True, nogil=True)
def _frame_sign_changes(
    y: np.ndarray, frame_length: int, hop_length: int, counts: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Sign changes between neighbours inside each frame (|y| <= 1e-10 counts as positive).

    One pass keeps the running total; a frame's count is its value at the frame's last
    sample less its value at the frame's first.
    """
    n_frames = counts.size
    at_start = np.zeros(n_frames, np.int64)
    total = 0
    was_negative = y[0] < -1e-10
    for i in range(y.size):
        if i > 0:
            negative = y[i] < -1e-10
            total += negative != was_negative
            was_negative = negative
        if i % hop_length == 0 and i // hop_length < n_frames:
            at_start[i // hop_length] = total
        end = i - frame_length + 1
        if end >= 0 and end % hop_length == 0 and end // hop_length < n_frames:
            counts[end // hop_length] = total - at_start[end // hop_length]


@numba.njit(cache=True, nogil=True)
def _frame_shape(
    S: np.ndarray, freqs: np.ndarray, roll_percent: float, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Centroid, bandwidth, rolloff and flatness of each frame of ``S`` [shape=(t, bins)].

    librosa's definitions: the magnitude-weighted mean frequency and the standard deviation
    around it; the lowest frequency with ``roll_percent`` of the magnitude below it (a float32
    running total, as librosa sums); the power's geometric over arithmetic mean, power floored
    at 1e-10, the logarithm taken of products of 16 bins (each >= 1e-10: no product leaves
    float64's range).
    """
    t, bins = S.shape
    for i in range(t):
        total = 0.0
        total32 = np.float32(0.0)
        first = 0.0
        second = 0.0
        power_sum = 0.0
        log_sum = 0.0
        product = 1.0
        for k in range(bins):
            m32 = S[i, k]
            m = np.float64(m32)
            total += m
            total32 += m32
            first += m * freqs[k]
            second += m * freqs[k] * freqs[k]
            p = max(np.float64(m32 * m32), 1e-10)
            power_sum += p
            product *= p
            if k % 16 == 15:
                log_sum += np.log(product)
                product = 1.0
        log_sum += np.log(product)
        centroid = 0.0
        spread = 0.0
        rolloff = 0.0
        if total > 0.0:
            centroid = first / total
            spread = max(second / total - centroid * centroid, 0.0)
            threshold = np.float32(roll_percent) * total32
            running = np.float32(0.0)
            for k in range(bins):
                running += S[i, k]
                if running >= threshold:
                    rolloff = freqs[k]
                    break
        out[i, 0] = centroid
        out[i, 1] = np.sqrt(spread)
        out[i, 2] = rolloff
        out[i, 3] = np.exp(log_sum / bins) / (power_sum / bins)


@cache
def _chroma_basis(n_fft: int, tuning: float) -> np.ndarray:
    return librosa.filters.chroma(sr=SR, n_fft=n_fft, tuning=tuning, n_chroma=12).astype(np.float32)


# ---- warm-up, family fields and checks -------------------------------------------------------


def warm_up() -> float:
    """Run :func:`extract_features` on 3 s of a synthetic signal; return the seconds spent.

    A process's first call pays for building filter banks and essentia's first algorithm
    set-up; a worker calls this at start-up so that its first track does not.
    """
    from playlista.audio.prepare import prepare_samples

    start = time.perf_counter()
    t = np.arange(3 * 44100) / 44100
    triad = sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0))
    clicks = (np.mod(t, 0.5) < 0.01) * np.sin(2 * np.pi * 2000.0 * t)
    mono = (0.1 * triad + 0.5 * clicks).astype(np.float32)
    extract_features(prepare_samples(np.stack([mono, 0.5 * mono]), sr=44100))
    return time.perf_counter() - start


def _tempo_fields(y: np.ndarray, front: FrontEnd) -> dict[str, Any]:
    del y  # silence was checked by the caller
    bpm, confidence = tempo(front=front)
    return {"bpm": bpm, "bpm_confidence": confidence}


def _key_fields(y: np.ndarray, front: FrontEnd) -> dict[str, Any]:
    del y
    tonic, mode, strength = key(S=front.S)
    camelot_code = camelot(key=tonic, mode=mode)
    return {"key": tonic, "mode": mode, "key_strength": strength, "camelot": camelot_code}


def _spectral_fields(y: np.ndarray, front: FrontEnd) -> dict[str, Any]:
    s = spectral(y=y, S=front.S, mel_db=front.mel_db)
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


def _loudness_fields(decoded: Decoded) -> _Family:
    values = {
        "true_peak_dbtp": decoded.true_peak_dbtp,
        "loudness_histogram": decoded.loudness_histogram,
    }
    integrated, lra = decoded.loudness_lufs, decoded.loudness_range_lu
    return _fields(integrated, lra, seconds=decoded.seconds, values=values)


def _fields(
    integrated: float | None, lra: float | None, *, seconds: float, values: dict[str, Any]
) -> _Family:
    if integrated is None:
        note = "loudness: nothing above the -70 LUFS absolute gate (silent input)"
        return {**values, "loudness_lufs": None, "loudness_range_lu": None}, [note]
    if seconds < bs1770.SHORT_TERM_SECONDS:
        note = "loudness range: input shorter than one 3-s short-term block"
        return {**values, "loudness_lufs": integrated, "loudness_range_lu": None}, [note]
    return {**values, "loudness_lufs": integrated, "loudness_range_lu": lra}, []


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


def _checked_spectrogram(S: object) -> np.ndarray:
    if not (isinstance(S, np.ndarray) and S.ndim == 2 and S.shape[1] > 1 and S.shape[0] > 0):
        raise InvalidInputError("S must be a magnitude spectrogram of shape (t, 1 + n_fft // 2)")
    if not (np.isfinite(S).all() and S.max() > 0):
        raise InvalidInputError("S must be finite and not all zero")
    return np.asarray(S, np.float32)


def _analysis_input(y: object, *, sr: float) -> np.ndarray:
    """Mono float32 samples at 22.05 kHz, contiguous."""
    y = _check_samples(y, sr=sr, ndims=(1,))
    y = np.ascontiguousarray(y, dtype=np.float32)
    if sr == SR:
        return y
    return np.ascontiguousarray(soxr.resample(y, sr, SR), dtype=np.float32)


def _require_sound(y: np.ndarray) -> None:
    # A float32 dot product is cheap and far more precise than this threshold needs.
    rms = math.sqrt(float(np.dot(y, y)) / y.size)
    if rms < SILENCE_RMS:
        raise InvalidInputError(f"silent input (RMS {rms:.1e} < -80 dBFS)")


def _finite(value: Any, what: str) -> Any:
    """``value`` as a float, or an array as float64, if every element is finite; else raise."""
    if not np.isfinite(value).all():
        raise InvalidInputError(f"{what} is not finite")
    return np.asarray(value, dtype=np.float64) if np.ndim(value) else float(value)
