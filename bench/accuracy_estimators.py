"""The estimators bench/accuracy.py scores: Essentia's defaults, what playlista computed
before (Essentia's degara tempo and bgate key), playlista's own on the shared front end,
librosa's defaults, and the asked-for Essentia variants."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import essentia.standard as es
import librosa
import numpy as np

from playlista.audio import features
from playlista.audio.frontend import FrontEnd
from playlista.audio.prepare import ANALYSIS_SR
from playlista.errors import InvalidInputError

ESSENTIA_SR, LIBROSA_SR = 44100, ANALYSIS_SR
# What playlista computed up to analyser version 2 (essentia's, at 44.1 kHz).
BEFORE_TEMPO_METHOD, BEFORE_KEY_PROFILE = "degara", "bgate"

TEMPO_METHODS = ("degara", "multifeature")
# KeyExtractor's profileType range in essentia 2.1-beta6.
KEY_PROFILES = (
    "bgate",
    "braw",
    "diatonic",
    "edma",
    "edmm",
    "gomez",
    "krumhansl",
    "noland",
    "shaath",
    "temperley",
    "temperley2005",
    "thpcp",
    "tonictriad",
    "weichai",
)
TONIC_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KK_PROFILES = {
    "major": np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
    "minor": np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
}


class Signal(NamedTuple):
    """One file's mono samples at both analysis rates and the shared 22.05 kHz front end."""

    y44: np.ndarray
    y22: np.ndarray
    front: FrontEnd


@dataclass(frozen=True)
class Estimator:
    """A named pair of estimators; either may be None when it only does the other task."""

    name: str
    tempo: Callable[[Signal], float | None] | None
    key: Callable[[Signal], str | None] | None


def before_tempo(signal: Signal, *, method: str = BEFORE_TEMPO_METHOD) -> float | None:
    extractor = es.RhythmExtractor2013(method=method, minTempo=40, maxTempo=208)
    bpm = float(extractor(signal.y44)[0])
    return bpm if bpm > 0 else None


def before_key(signal: Signal, *, profile: str = BEFORE_KEY_PROFILE) -> str | None:
    try:
        tonic, mode, _ = es.KeyExtractor(profileType=profile, sampleRate=ESSENTIA_SR)(signal.y44)
    except RuntimeError:  # weichai raises on minor keys
        return None
    return f"{tonic} {mode}"


def pipeline_estimator() -> Estimator:
    """playlista's estimators as the pipeline runs them, on the shared front end."""

    def tempo(signal: Signal) -> float | None:
        try:
            return features.tempo(front=signal.front)[0]
        except InvalidInputError:  # extract_features leaves the field None: a miss
            return None

    def key(signal: Signal) -> str | None:
        try:
            tonic, mode, _ = features.key(S=signal.front.S)
        except InvalidInputError:
            return None
        return f"{tonic} {mode}"

    return Estimator("playlista", tempo, key)


def essentia_tempo(signal: Signal) -> float:
    return float(es.RhythmExtractor2013()(signal.y44)[0])


def essentia_key(signal: Signal) -> str:
    tonic, mode, _ = es.KeyExtractor()(signal.y44)
    return f"{tonic} {mode}"


def librosa_tempo(signal: Signal) -> float:
    return float(librosa.feature.tempo(y=signal.y22, sr=LIBROSA_SR)[0])


def librosa_key(signal: Signal) -> str:
    """Krumhansl-Kessler key of the mean CQT chroma: the best Pearson correlation of 24."""
    chroma = librosa.feature.chroma_cqt(y=signal.y22, sr=LIBROSA_SR).mean(axis=1)
    _, tonic, mode = max(
        (np.corrcoef(chroma, np.roll(profile, tonic))[0, 1], tonic, mode)
        for mode, profile in KK_PROFILES.items()
        for tonic in range(12)
    )
    return f"{TONIC_NAMES[tonic]} {mode}"


def estimators(args: argparse.Namespace) -> list[Estimator]:
    """The three estimators and the asked-for variants, without the task ``--only`` excludes."""
    chosen = [
        Estimator("essentia defaults", essentia_tempo, essentia_key),
        Estimator("playlista before", before_tempo, before_key),
        pipeline_estimator(),
    ]
    if args.librosa:
        chosen.append(Estimator("librosa defaults", librosa_tempo, librosa_key))
    chosen += [
        Estimator(f"essentia method={m}", partial(before_tempo, method=m), None)
        for m in args.tempo_method
    ]
    chosen += [
        Estimator(f"essentia key profile={p}", None, partial(before_key, profile=p))
        for p in args.key_profile
    ]
    tempo, key = args.only in (None, "tempo"), args.only in (None, "key")
    return [Estimator(e.name, e.tempo if tempo else None, e.key if key else None) for e in chosen]
