"""Records to Arrow tables, deduplicated by path, for one-statement batch upserts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

import pyarrow as pa

from playlista.records import (
    AnalysisOutcome,
    Failure,
    Features,
    FileStat,
    MusicnnResult,
    Tags,
    TrackResult,
)

R = TypeVar("R", bound=TrackResult | MusicnnResult | Failure)

_TAG_TYPES = {
    "year": pa.int32(),
    "track_no": pa.int32(),
    "track_total": pa.int32(),
    "disc_no": pa.int32(),
    "disc_total": pa.int32(),
    "bitrate": pa.int32(),
    "sample_rate": pa.int32(),
    "channels": pa.int32(),
    "replaygain_track_gain_db": pa.float64(),
    "replaygain_track_peak": pa.float64(),
    "replaygain_album_gain_db": pa.float64(),
    "replaygain_album_peak": pa.float64(),
    "duration_s": pa.float64(),
}
_ARRAY_SIZES = {"mfcc_mean": 13, "mfcc_std": 13, "chroma_mean": 12}
_HISTOGRAM = pa.list_(
    pa.struct([("bin", pa.int16()), ("blocks", pa.int32()), ("energy", pa.float64())])
)
_TEXT_FEATURES = {"key", "mode", "camelot"}
_TS = pa.timestamp("us", tz="UTC")

# The per-run file counts, in the order they are shown.
RUN_COUNTERS = (
    "files_seen",
    "new",
    "changed",
    "unchanged",
    "moved",
    "deleted",
    "retried",
    "outdated",
    "refreshed",
    "analyzed",
    "failed",
    "unlisted",
)


def dedupe_by_path(records: Iterable[R]) -> list[R]:
    """Keep the last record of each path: one upsert statement must not see a key twice."""
    return list({r.path: r for r in records}.values())


def files_table(
    results: Sequence[TrackResult | Failure], fingerprints: Sequence[str | None]
) -> pa.Table:
    return pa.table(
        {
            "path": [r.path for r in results],
            "size": pa.array([r.size for r in results], pa.int64()),
            "mtime_ns": pa.array([r.mtime_ns for r in results], pa.int64()),
            "fingerprint": pa.array(list(fingerprints), pa.string()),
        }
    )


def tags_table(results: Sequence[TrackResult]) -> pa.Table:
    columns: dict[str, pa.Array] = {"path": pa.array([r.path for r in results], pa.string())}
    for f in dataclasses.fields(Tags):
        name = "stream_duration_s" if f.name == "duration_s" else f.name
        columns[name] = pa.array(
            [getattr(r.tags, f.name) for r in results], _TAG_TYPES.get(f.name, pa.string())
        )
    columns["analyzed_at"] = pa.array([r.analyzed_at for r in results], _TS)
    return pa.table(columns)


def features_table(results: Sequence[TrackResult]) -> pa.Table:
    columns: dict[str, pa.Array] = {
        "path": pa.array([r.path for r in results], pa.string()),
        "duration_s": pa.array([r.decoded_seconds for r in results], pa.float64()),
        "decoder": pa.array([r.decoder for r in results], pa.string()),
    }
    for f in dataclasses.fields(Features):
        values = [getattr(r.features, f.name) for r in results]
        if f.name == "warnings":
            continue
        if f.name in _ARRAY_SIZES:
            columns[f.name] = pa.array(values, pa.list_(pa.float32(), _ARRAY_SIZES[f.name]))
        elif f.name == "loudness_histogram":
            columns[f.name] = pa.array(values, _HISTOGRAM)
        elif f.name in _TEXT_FEATURES:
            columns[f.name] = pa.array(values, pa.string())
        else:
            columns[f.name] = pa.array(values, pa.float64())
    columns["warnings"] = pa.array([list(r.warnings) for r in results], pa.list_(pa.string()))
    columns["analyzer_version"] = pa.array([r.analyzer_version for r in results], pa.int32())
    columns["worker"] = pa.array([r.worker for r in results], pa.string())
    columns["elapsed_s"] = pa.array([r.elapsed_s for r in results], pa.float64())
    columns["analyzed_at"] = pa.array([r.analyzed_at for r in results], _TS)
    return pa.table(columns)


def musicnn_table(results: Sequence[TrackResult | MusicnnResult]) -> pa.Table:
    """One row per track and model: mean tag scores and mean embedding."""
    rows = [(r, m) for r in results for m in r.musicnn]
    return pa.table(
        {
            "path": pa.array([r.path for r, _ in rows], pa.string()),
            "model": pa.array([m.model for _, m in rows], pa.string()),
            "scores": pa.array([m.scores for _, m in rows], pa.list_(pa.float32(), 50)),
            "embedding": pa.array([m.embedding for _, m in rows], pa.list_(pa.float32(), 200)),
            "patches": pa.array([m.patches for _, m in rows], pa.int32()),
            "musicnn_version": pa.array([r.musicnn_version for r, _ in rows], pa.int32()),
            "worker": pa.array([r.worker for r, _ in rows], pa.string()),
            "analyzed_at": pa.array([r.analyzed_at for r, _ in rows], _TS),
        }
    )


def failures_table(failures: Sequence[Failure]) -> pa.Table:
    return pa.table(
        {
            "path": pa.array([f.path for f in failures], pa.string()),
            "size": pa.array([f.size for f in failures], pa.int64()),
            "mtime_ns": pa.array([f.mtime_ns for f in failures], pa.int64()),
            "error_class": pa.array([f.error_class for f in failures], pa.string()),
            "message": pa.array([f.message for f in failures], pa.string()),
            "retryable": pa.array([f.retryable for f in failures], pa.bool_()),
            "worker": pa.array([f.worker for f in failures], pa.string()),
            "failed_at": pa.array([f.failed_at for f in failures], _TS),
        }
    )


def paths_table(paths: Iterable[str]) -> pa.Table:
    return pa.table({"path": pa.array(list(paths), pa.string())})


def moves_table(moves: Sequence[tuple[str, FileStat]]) -> pa.Table:
    return pa.table(
        {
            "old_path": pa.array([old for old, _ in moves], pa.string()),
            "new_path": pa.array([new.path for _, new in moves], pa.string()),
            "size": pa.array([new.size for _, new in moves], pa.int64()),
            "mtime_ns": pa.array([new.mtime_ns for _, new in moves], pa.int64()),
        }
    )


def runs_table(
    run_id: str,
    *,
    status: str,
    counts: Mapping[str, float],
    error: str | None,
    finished_at: datetime,
) -> pa.Table:
    """One run's closing row: its status, error and counts (absent ones 0)."""
    columns: dict[str, pa.Array] = {
        "run_id": pa.array([run_id], pa.string()),
        "status": pa.array([status], pa.string()),
        "finished_at": pa.array([finished_at], _TS),
        "error": pa.array([error], pa.string()),
    }
    for name in RUN_COUNTERS:
        columns[name] = pa.array([int(counts.get(name, 0))], pa.int64())
    for name in ("audio_seconds", "wall_seconds"):
        columns[name] = pa.array([float(counts.get(name, 0.0))], pa.float64())
    return pa.table(columns)


def batch_tables(outcomes: Iterable[AnalysisOutcome]) -> dict[str, pa.Table]:
    """One batch's rows as Arrow tables, by what they update; the last record of a path wins.

    ``results`` (files rows of analysed tracks), ``track_tags`` and ``track_features`` come
    together; ``track_musicnn`` from full and MusiCNN-only results; ``failures`` alone.
    """
    unique = dedupe_by_path(outcomes)
    results = [o for o in unique if isinstance(o, TrackResult)]
    refreshed = [o for o in unique if isinstance(o, MusicnnResult)]
    failures = [o for o in unique if isinstance(o, Failure)]
    tables: dict[str, pa.Table] = {}
    if results:
        tables["results"] = files_table(results, [r.fingerprint for r in results])
        tables["track_tags"] = tags_table(results)
        tables["track_features"] = features_table(results)
    if results or refreshed:
        tables["track_musicnn"] = musicnn_table([*results, *refreshed])
    if failures:
        tables["failures"] = failures_table(failures)
    return tables
