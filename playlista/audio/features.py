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
import time
from collections.abc import Callable
from typing import Any

import essentia
import numpy as np

from playlista import camelot
from playlista.audio import bs1770, frontend, rhythm, tonal
from playlista.audio.danceability import danceability
from playlista.audio.essentia_algorithms import es
from playlista.audio.frontend import FrontEnd, OnsetFunctions
from playlista.audio.inputs import analysis_input, check_samples, finite, require_sound
from playlista.audio.prepare import ANALYSIS_SR, Decoded, channel_mean, loudness_channels
from playlista.audio.spectral import spectral
from playlista.errors import InvalidInputError
from playlista.records import Features

logger = logging.getLogger(__name__)

SR = ANALYSIS_SR
N_FFT = frontend.N_FFT
HOP_LENGTH = frontend.HOP_LENGTH

_Family = tuple[dict[str, Any], list[str]]  # a family's Features fields and warnings


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
    y = check_samples(decoded.samples, sr=decoded.sr, ndims=(1,))
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
        require_sound(y)
        return y

    front: FrontEnd = timed("front_end", lambda: frontend.front_end(y=y))
    onsets: OnsetFunctions = timed("onsets", lambda: frontend.onset_functions(y=y))
    families: dict[str, Callable[[], _Family]] = {
        "loudness": lambda: _loudness_fields(decoded),
        "energy": lambda: ({"energy": finite(decoded.energy, "energy")}, []),
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
        y = analysis_input(y, sr=sr)
        require_sound(y)
        front = frontend.front_end(y=y)
    estimate = rhythm.tempo(onset_envelope=front.onset_envelope, mel=front.mel)
    return finite(estimate.bpm, "tempo"), finite(estimate.confidence, "tempo confidence")


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
        y = analysis_input(y, sr=sr)
        onsets = frontend.onset_functions(y=y)
        seconds = y.size / SR
    if not seconds:
        raise InvalidInputError("onset_rate needs the signal's length in seconds")
    if not (onsets.hfc.any() and onsets.complex.any()):
        return 0.0
    detections = essentia.array(np.vstack([onsets.hfc, onsets.complex]))
    times = es.Onsets(frameRate=onsets.frame_rate)(detections, [1.0, 1.0])
    return finite(len(times) / seconds, "onset rate")


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
        S = frontend.front_end(y=analysis_input(y, sr=sr)).S
    estimate = tonal.key(S=S)
    if not estimate.strength > 0:
        raise InvalidInputError("no tonal content: key strength is 0")
    return estimate.tonic, estimate.mode, float(estimate.strength)


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
    y = check_samples(y, sr=sr, ndims=(1, 2))
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
    check_samples(y, sr=None, ndims=(1, 2))
    mono = channel_mean(y) if y.ndim == 2 else np.asarray(y, np.float32)
    return finite(math.sqrt(float(np.dot(mono, mono.astype(np.float64))) / mono.size), "energy")


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
    camelot_code = camelot.code(key=tonic, mode=mode)
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
