"""The analyze-library flow end to end: real corpus, LocalCluster processes, Prefect API."""

from __future__ import annotations

import os
import re
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
    with duckdb.connect(str(analysed_corpus["db"]), read_only=True) as con:
        cursor = con.execute("SELECT * FROM runs")
        names = [d[0] for d in cursor.description]
        (values,) = cursor.fetchall()
    run = dict(zip(names, values, strict=True))
    assert run["run_id"] == summary["run_id"]
    assert run["flow_run_id"] == str(analysed_corpus["flow_run_id"])
    assert run["status"] == "completed" and not run["full_rescan"]
    assert run["finished_at"] > run["started_at"]
    seen, new, changed, unchanged, moved, deleted, refreshed = (
        run[k]
        for k in ("files_seen", "new", "changed", "unchanged", "moved", "deleted", "refreshed")
    )
    assert (seen, new, changed, unchanged, moved, deleted, refreshed) == (46, 46, 0, 0, 0, 0, 0)
    analysed, failed, retried = run["analyzed"], run["failed"], run["retried"]
    audio_s, wall_s = run["audio_seconds"], run["wall_seconds"]
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
    (summary,) = [a for a in artifacts if a.flow_run_id == flow_run_id]
    table = dict(re.findall(r"^\| (\w+) \| ([^|]+) \|$", str(summary.data), flags=re.M))
    assert (table["files_seen"], table["analyzed"], table["failed"]) == ("46", "34", "12")
    assert "tracks/s" in str(summary.data)
    worker_lines = [g for g in logs if g.name == "playlista.analysis" and g.task_run_id]
    assert any("empty_file" in g.message for g in worker_lines)


def test_every_analysed_file_has_tags_and_an_embedding_from_each_model(analysed_corpus):
    db = analysed_corpus["db"]
    per_track = rows(
        db,
        "SELECT l.path, m.model, len(m.scores), len(m.embedding), m.patches, "
        "list_min(m.scores), list_max(m.scores) "
        "FROM library AS l JOIN track_musicnn AS m USING (path)",
    )
    tracks = {p for (p,) in rows(db, "SELECT path FROM library")}
    assert {(p, m) for p, m, *_ in per_track} == {
        (p, m) for p in tracks for m in ("MTT_musicnn", "MSD_musicnn")
    }
    for path, _, n_scores, n_dims, patches, low, high in per_track:
        assert (n_scores, n_dims) == (50, 200) and patches >= 1, path
        assert 0.0 <= low <= high <= 1.0 and high > 0.05, path
    # Real models tell tracks apart: every tag's score varies across the corpus.
    spread = rows(
        db,
        "SELECT model, tag, stddev_samp(score) FROM track_tag_scores GROUP BY model, tag",
    )
    assert len(spread) == 100 and all(s > 1e-4 for _, _, s in spread)
    top = rows(db, "SELECT top_tags FROM library")
    assert all(len(t) == 5 and len(set(t)) == 5 for (t,) in top)


def test_two_renderings_of_one_song_are_each_others_nearest(analysed_corpus):
    library, db = analysed_corpus["library"], analysed_corpus["db"]
    backing = str(library / "good/fof/war_of_freedom_backing.ogg")
    full = str(library / "good/fof/war_of_freedom_full.ogg")
    bach = str(library / "good/rendered/bach_bwv269.flac")
    for model in ("MSD_musicnn", "MTT_musicnn"):
        similar = dict(
            (p, s)
            for p, s in rows(
                db,
                "SELECT path, similarity FROM similar_tracks($t, n := 100, embedding_model := $m)",
                {"t": backing, "m": model},
            )
        )
        assert full in similar and bach in similar
        assert similar[full] > similar[bach], model
        bach_to_full = rows(
            db,
            "SELECT similarity FROM similar_tracks($t, n := 100, embedding_model := $m) "
            "WHERE path = $other",
            {"t": bach, "m": model, "other": full},
        )[0][0]
        assert similar[full] > bach_to_full, model
        # Ordered most similar first, the track itself left out.
        values = list(similar.values())
        assert values == sorted(values, reverse=True) and backing not in similar
