"""Records for real files, as analysis would return them, and small query helpers.

Results are built as ``TrackResult`` and ``Failure`` records for real files in tmp_path (real
size, mtime and fingerprint) instead of by decoding audio: the records are the seam between
analysis and storage; the real audio path is tested in test_flow and test_incremental.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playlista.records import Failure, Features, ModelScores, MusicnnResult, Tags, TrackResult
from playlista.scan import discover, fingerprint
from playlista.store import Plan, Store
from playlista.store.arrow import RUN_COUNTERS

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
TABLES = ("files", "track_tags", "track_features", "track_musicnn", "failures")
MODELS = ("MTT_musicnn", "MSD_musicnn")
MFCC = tuple(-250.5 + 17.25 * i for i in range(13))  # exact in float32
CHROMA = tuple(i / 16 for i in range(12))


def audio_file(path: Path, size: int = 4096, *, seed: str | None = None) -> Path:
    """A file of ``size`` pseudo-random bytes, distinct per path unless ``seed`` is shared."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(seed or path.name).randbytes(size))
    return path


def track(
    path: Path | str,
    *,
    version: int = 1,
    title: str = "Song",
    analyzed_at: datetime = T0,
    warnings: tuple[str, ...] = (),
    musicnn_version: int = 1,
    direction: tuple[float, ...] = (1.0,),
) -> TrackResult:
    """A result for the real file at ``path``, as analysis would return it.

    Its embeddings point along ``direction`` (padded with zeros to 200 dimensions), so
    tests can set how similar two tracks are.
    """
    p = os.fspath(path)
    st = os.stat(p)
    return TrackResult(
        path=p,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        fingerprint=fingerprint(p),
        tags=Tags(
            title=title,
            artist="Artist",
            album="Album",
            albumartist="Various",
            genre="Jazz",
            year=1999,
            track_no=3,
            track_total=12,
            disc_no=1,
            disc_total=2,
            replaygain_track_gain_db=-6.5,
            codec="flac",
            bitrate=900_000,
            sample_rate=44100,
            channels=2,
            duration_s=181.0,  # header length; differs from the decoded one on purpose
        ),
        features=Features(
            bpm=128.0,
            bpm_confidence=0.75,
            key="A",
            mode="minor",
            key_strength=0.62,
            camelot="8A",
            loudness_lufs=-9.5,
            loudness_range_lu=6.25,
            true_peak_dbtp=1.5,
            energy=0.21,
            danceability=1.4,
            spectral_centroid_hz=2100.5,
            onset_rate=3.5,
            mfcc_mean=MFCC,
            chroma_mean=CHROMA,
            warnings=warnings,
        ),
        decoder="soundfile",
        decoded_seconds=180.25,
        analyzer_version=version,
        worker="host:123",
        analyzed_at=analyzed_at,
        elapsed_s=0.5,
        warnings=warnings,
        musicnn=scores(direction),
        musicnn_version=musicnn_version,
    )


def scores(direction: tuple[float, ...] = (1.0,)) -> tuple[ModelScores, ...]:
    """Both models' verdicts: tag i scores i/64 (exact in float32); embedding ``direction``."""
    embedding = tuple(direction) + (0.0,) * (200 - len(direction))
    return tuple(
        ModelScores(model, tuple(i / 64 for i in range(50)), embedding, 8) for model in MODELS
    )


def refreshed(path: Path | str, *, version: int = 2, analyzed_at: datetime = T0) -> MusicnnResult:
    return MusicnnResult(os.fspath(path), scores(), version, "host:456", analyzed_at, 0.25)


def failure(
    path: Path | str,
    *,
    retryable: bool = False,
    error_class: str = "decode_error",
    message: str = "cannot decode",
    failed_at: datetime = T0,
) -> Failure:
    p = os.fspath(path)
    st = os.stat(p)
    return Failure(
        path=p,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        error_class=error_class,
        message=message,
        retryable=retryable,
        worker="host:123",
        failed_at=failed_at,
    )


def plan(
    store: Store, *roots: Path, version: int = 1, musicnn_version: int = 1, **options: bool
) -> Plan:
    return store.plan(
        discover(roots),
        roots=[str(r) for r in roots],
        analyzer_version=version,
        musicnn_version=musicnn_version,
        musicnn_models=len(MODELS),
        **options,
    )


def counts(**nonzero: int) -> dict[str, int]:
    """A plan's counts: every run counter but what analysis adds, 0 unless given."""
    keys = [k for k in RUN_COUNTERS if k not in ("analyzed", "failed")]
    return {k: nonzero.get(k, 0) for k in keys}


def rows(store: Store, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return store.con.execute(sql, list(params)).fetchall()


def one(store: Store, sql: str, *params: Any) -> Any:
    result = rows(store, sql, *params)
    assert len(result) == 1, result
    return result[0]


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {t: rows(store, f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES}


def library_paths(store: Store) -> list[str]:
    return [p for (p,) in rows(store, "SELECT path FROM library ORDER BY path")]


def columns(store: Store, relation: str) -> dict[str, str]:
    return {name: kind for name, kind, *_ in rows(store, f"DESCRIBE {relation}")}
