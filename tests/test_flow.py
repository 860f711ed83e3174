"""The analyze-library flow end to end: real corpus, LocalCluster processes, Prefect API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pytest

pytestmark = pytest.mark.slow

ALLOWED_TEMPO_RATIOS = (1.0, 2.0, 0.5, 2 / 3, 3 / 2)  # metrical levels MANIFEST.md accepts


def rows(db: Path, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def relpaths(library: Path, paths: list[str]) -> set[str]:
    return {os.path.relpath(p, library) for p in paths}


def test_every_good_and_damaged_file_is_analysed(analysed_corpus, manifest):
    library, db = analysed_corpus["library"], analysed_corpus["db"]
    analysed = relpaths(library, [p for (p,) in rows(db, "SELECT path FROM library")])
    expected = {f for f in manifest if f.split("/")[0] in ("good", "damaged")}
    assert analysed == expected


def test_every_bad_file_is_a_classified_failure(analysed_corpus, manifest):
    library, db = analysed_corpus["library"], analysed_corpus["db"]
    failures = {
        os.path.relpath(path, library): (error_class, message, retryable, attempts)
        for path, error_class, message, retryable, attempts in rows(
            db, "SELECT path, error_class, message, retryable, attempts FROM failures"
        )
    }
    assert set(failures) == {f for f in manifest if f.startswith("bad/")}
    for name, (error_class, message, retryable, attempts) in failures.items():
        if "zero_byte" in name:
            assert error_class == "empty_file", name
        elif "header_only" in name:
            assert error_class == "no_audio", name
        else:
            assert error_class in ("decode_error", "unsupported_format"), name
        assert len(message) > 15 and "Traceback" not in message
        assert retryable is False and attempts == 1


def test_analysis_ran_in_two_worker_processes(analysed_corpus):
    workers = rows(analysed_corpus["db"], "SELECT DISTINCT worker FROM track_features")
    pids = {int(w.rsplit(":", 1)[1]) for (w,) in workers}
    assert len(pids) == 2
    assert os.getpid() not in pids


def test_tempo_matches_ground_truth(analysed_corpus, manifest):
    library, db = analysed_corpus["library"], analysed_corpus["db"]
    annotated = {
        f: e["ground_truth"]["tempo_bpm"]
        for f, e in manifest.items()
        if e.get("ground_truth", {}).get("tempo_bpm")
    }
    assert len(annotated) >= 9
    for name, truth in annotated.items():
        ((bpm, confidence),) = rows(
            db, "SELECT bpm, bpm_confidence FROM library WHERE path = ?", [str(library / name)]
        )
        assert any(abs(bpm / (truth * r) - 1) <= 0.04 for r in ALLOWED_TEMPO_RATIOS), (name, bpm)
        assert 0.0 <= confidence <= 1.0


def test_key_matches_ground_truth(analysed_corpus, manifest):
    library, db = analysed_corpus["library"], analysed_corpus["db"]
    annotated = {
        f: e["ground_truth"]["key"]
        for f, e in manifest.items()
        if e.get("ground_truth", {}).get("key")
    }
    assert len(annotated) == 4
    for name, truth in annotated.items():
        ((key, mode, camelot, strength),) = rows(
            db,
            'SELECT "key", mode, camelot, key_strength FROM library WHERE path = ?',
            [str(library / name)],
        )
        assert f"{key} {mode}" == truth, name
        assert camelot[-1] == ("B" if mode == "major" else "A")
        assert 0 < strength <= 1


def test_tags_and_stream_info_are_stored(analysed_corpus, manifest):
    library, db = analysed_corpus["library"], analysed_corpus["db"]
    formats = rows(
        db,
        "SELECT path, title, artist, album, genre, year, track_no, codec, "
        "sample_rate, channels, duration_s FROM library "
        "WHERE path LIKE '%/good/formats/%' ORDER BY path",
    )
    assert len(formats) == 6
    for path, title, artist, album, genre, year, track_no, _codec, sr, channels, dur in formats:
        assert (title, artist, genre, year, track_no) == (
            "War of freedom",
            "Sectoid",
            "Metal",
            2007,
            4,
        ), path
        assert album == "Frets on Fire song pack (Sectoid)"
        assert channels == 2 and sr in (44100, 48000)
        assert abs(dur - 60.0) < 0.1
    codecs = {Path(p).suffix: c for p, *_, c, _sr, _ch, _d in formats}
    assert codecs == {
        ".aiff": "pcm",
        ".flac": "flac",
        ".m4a": "aac",
        ".mp3": "mp3",
        ".ogg": "vorbis",
        ".opus": "opus",
    }
    ((gain,),) = rows(
        db,
        "SELECT replaygain_track_gain_db FROM track_tags WHERE path = ?",
        [str(library / "good/games/nexuiz_thunder.ogg")],
    )
    assert gain == pytest.approx(-1.40)


def test_features_are_real_values_in_real_units(analysed_corpus):
    db = analysed_corpus["db"]
    for path, lufs, lra, centroid, onset, mfcc, chroma, energy in rows(
        db,
        "SELECT path, loudness_lufs, loudness_range_lu, spectral_centroid_hz, onset_rate, "
        "mfcc_mean, chroma_mean, energy FROM library WHERE path LIKE '%/good/%'",
    ):
        assert -40 < lufs < 0, path
        assert 0 <= lra < 40, path
        assert 100 < centroid < 8000, path
        assert 0 < onset < 20, path
        assert len(mfcc) == 13 and len(chroma) == 12
        assert 0 < energy < 1
    ((distinct,),) = rows(db, "SELECT count(DISTINCT bpm) FROM library")
    assert distinct > 20  # not a constant


def test_runs_row_records_the_run(analysed_corpus):
    summary = analysed_corpus["summary"]
    ((run,),) = [rows(analysed_corpus["db"], "SELECT * FROM runs")]
    (
        run_id,
        flow_run_id,
        _roots,
        full,
        status,
        started,
        finished,
        seen,
        new,
        changed,
        unchanged,
        moved,
        deleted,
        retried,
        analysed,
        failed,
        audio_s,
        wall_s,
    ) = run
    assert run_id == summary["run_id"] and flow_run_id == str(analysed_corpus["flow_run_id"])
    assert status == "completed" and not full and finished > started
    assert (seen, new, changed, unchanged, moved, deleted) == (46, 46, 0, 0, 0, 0)
    assert (analysed, failed, retried) == (34, 12, 0)
    ((total,),) = rows(analysed_corpus["db"], "SELECT sum(duration_s) FROM library")
    assert audio_s == pytest.approx(total)
    assert 0 < wall_s < 3600


def test_summary_artifact_and_worker_logs_reach_the_api(analysed_corpus):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        LogFilter,
        LogFilterFlowRunId,
    )

    flow_run_id = analysed_corpus["flow_run_id"]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["analyze-library-summary"]))
        )
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200
        )
    assert any("34" in str(a.data) and "tracks/s" in str(a.data) for a in artifacts)
    worker_lines = [g for g in logs if g.name == "playlista.analysis" and g.task_run_id]
    assert any("empty_file" in g.message for g in worker_lines)
