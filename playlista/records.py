"""Typed records that cross the Dask boundary: small, frozen and cheap to pickle."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class FileStat:
    """A file found by discovery: what planning compares against the database."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class UnlistedFolder:
    """A folder discovery could not list: the files under it keep their status."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Tags:
    """Tags and stream information read with mutagen. Absent values are ``None``."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    albumartist: str | None = None
    genre: str | None = None
    year: int | None = None
    track_no: int | None = None
    track_total: int | None = None
    disc_no: int | None = None
    disc_total: int | None = None
    musicbrainz_trackid: str | None = None
    musicbrainz_albumid: str | None = None
    musicbrainz_artistid: str | None = None
    replaygain_track_gain_db: float | None = None
    replaygain_track_peak: float | None = None
    replaygain_album_gain_db: float | None = None
    replaygain_album_peak: float | None = None
    codec: str | None = None
    bitrate: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class Features:
    """Descriptors computed from the decoded samples, in real units.

    A value that could not be computed is ``None``; ``warnings`` says why.
    """

    bpm: float | None = None
    bpm_confidence: float | None = None
    key: str | None = None
    mode: str | None = None
    key_strength: float | None = None
    camelot: str | None = None
    loudness_lufs: float | None = None
    loudness_range_lu: float | None = None
    true_peak_dbtp: float | None = None
    loudness_histogram: tuple[tuple[int, int, float], ...] = ()
    """The gated 400-ms blocks as ``(bin, blocks, energy)``: see ``bs1770.histogram``."""
    energy: float | None = None
    danceability: float | None = None
    spectral_centroid_hz: float | None = None
    spectral_rolloff_hz: float | None = None
    spectral_flatness: float | None = None
    spectral_bandwidth_hz: float | None = None
    zero_crossing_rate: float | None = None
    onset_rate: float | None = None
    mfcc_mean: tuple[float, ...] | None = None
    mfcc_std: tuple[float, ...] | None = None
    chroma_mean: tuple[float, ...] | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelScores:
    """One MusiCNN model's verdict on a track: mean tag probabilities and mean embedding.

    ``scores`` follows the model's label order (50 values in [0, 1]); ``embedding`` is
    the 200-d penultimate layer; both are means over ``patches`` 3-s patches.
    """

    model: str
    scores: tuple[float, ...]
    embedding: tuple[float, ...]
    patches: int


@dataclass(frozen=True, slots=True)
class MusicnnResult:
    """MusiCNN alone run again on an unchanged, analysed file (its version was bumped)."""

    path: str
    musicnn: tuple[ModelScores, ...]
    musicnn_version: int
    worker: str
    analyzed_at: datetime
    elapsed_s: float
    stage_seconds: tuple[tuple[str, float], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class TrackResult:
    """One file analysed: its identity, tags, decoded length and features."""

    path: str
    size: int
    mtime_ns: int
    fingerprint: str
    tags: Tags
    features: Features
    decoder: str
    decoded_seconds: float
    analyzer_version: int
    worker: str
    analyzed_at: datetime
    elapsed_s: float
    warnings: tuple[str, ...] = field(default=())
    musicnn: tuple[ModelScores, ...] = field(default=())
    musicnn_version: int | None = None
    stage_seconds: tuple[tuple[str, float], ...] = field(default=())
    """Seconds per stage of the analysis (tags, decode, each feature family, musicnn)."""


@dataclass(frozen=True, slots=True)
class Failure:
    """One file that could not be analysed, classified."""

    path: str
    size: int | None
    mtime_ns: int | None
    error_class: str
    message: str
    retryable: bool
    worker: str
    failed_at: datetime


AnalysisOutcome = TrackResult | MusicnnResult | Failure

Part = Literal["core", "musicnn"]
"""What a task computes for a file: ``core`` is tags and features, ``musicnn`` the models."""
ALL_PARTS: tuple[Part, ...] = ("core", "musicnn")
