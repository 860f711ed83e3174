"""Incremental runs: unchanged, touched, renamed and deleted files, on the real flow."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.analyze_library import analyze_library
from playlista.analysis import MUSICNN_VERSION
from tests.conftest import copy_corpus

pytestmark = pytest.mark.slow

FILES = [
    "good/rendered/bach_bwv351.flac",
    "good/samples/loop_amen_full.flac",
    "good/rendered/mozart_k545.flac",
]
TABLES = ("files", "track_tags", "track_features", "track_musicnn", "failures")


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY path").fetchall() for t in TABLES}


def analysed_at(db: Path) -> dict[str, Any]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute("SELECT path, analyzed_at FROM track_features").fetchall())


@pytest.fixture
def library(corpus: Path, prefect_api: None, tmp_path: Path) -> tuple[Path, Path, dict]:
    lib = copy_corpus(corpus, tmp_path / "music", FILES)
    db = tmp_path / "playlista.duckdb"
    first = analyze_library(roots=[str(lib)], db=str(db), workers=2, batch_size=1)
    assert (first["new"], first["analyzed"], first["failed"]) == (3, 3, 0)
    return lib, db, first


def run(lib: Path, db: Path) -> dict[str, Any]:
    return analyze_library(roots=[str(lib)], db=str(db), workers=2, batch_size=1)


def test_second_run_on_unchanged_library_analyses_nothing_and_changes_no_row(library):
    lib, db, _ = library
    before = snapshot(db)
    summary = run(lib, db)
    assert (summary["unchanged"], summary["analyzed"], summary["new"]) == (3, 0, 0)
    assert snapshot(db) == before


def test_touching_one_file_reanalyses_only_it(library):
    lib, db, _ = library
    before = analysed_at(db)
    touched = lib / FILES[0]
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    summary = run(lib, db)
    assert (summary["changed"], summary["unchanged"], summary["analyzed"]) == (1, 2, 1)
    after = analysed_at(db)
    assert after[str(touched)] > before[str(touched)]
    assert {p: t for p, t in after.items() if p != str(touched)} == {
        p: t for p, t in before.items() if p != str(touched)
    }


def test_renaming_one_file_moves_its_row_without_reanalysis(library):
    lib, db, _ = library
    before = analysed_at(db)
    old = lib / FILES[1]
    new = lib / "good" / "renamed" / "amen.flac"
    new.parent.mkdir()
    old.rename(new)
    summary = run(lib, db)
    assert (summary["moved"], summary["new"], summary["deleted"], summary["analyzed"]) == (
        1,
        0,
        0,
        0,
    )
    after = analysed_at(db)
    assert str(old) not in after
    assert after[str(new)] == before[str(old)]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(
            "SELECT moved_from, status FROM files WHERE path = ?", [str(new)]
        ).fetchone() == (str(old), "present")
        assert con.execute("SELECT count(*) FROM library").fetchone() == (3,)


def test_deleting_one_file_marks_it_deleted_and_keeps_the_row(library):
    lib, db, _ = library
    gone = lib / FILES[2]
    gone.unlink()
    summary = run(lib, db)
    assert (summary["deleted"], summary["unchanged"], summary["analyzed"]) == (1, 2, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        status, deleted_at = con.execute(
            "SELECT status, deleted_at FROM files WHERE path = ?", [str(gone)]
        ).fetchone()
        assert status == "deleted" and deleted_at is not None
        assert con.execute(
            "SELECT count(*) FROM track_features WHERE path = ?", [str(gone)]
        ).fetchone() == (1,)
        paths = {p for (p,) in con.execute("SELECT path FROM library").fetchall()}
    assert str(gone) not in paths and len(paths) == 2


def test_batches_are_bounded_balanced_and_largest_first():
    from playlista.records import FileStat
    from playlista.runs.batches import make_batches

    files = [FileStat(f"/m/{i}.flac", size=i, mtime_ns=0) for i in range(1, 101)]
    batches = make_batches(files, batch_size=8, workers=2)
    assert [len(b) for b in batches] == [8] * 12 + [4]
    assert batches[0][0].size == 100 and batches[-1][-1].size == 1
    assert sorted(f.path for b in batches for f in b) == sorted(f.path for f in files)
    few = make_batches(files[:24], batch_size=8, workers=2)
    assert len(few) == 8 and all(len(b) == 3 for b in few)
    assert make_batches(files[:1], batch_size=8, workers=4) == [[files[0]]]


def test_a_musicnn_version_bump_reruns_musicnn_and_nothing_else(library):
    lib, db, _ = library
    with duckdb.connect(str(db)) as con:  # the stored rows of an older MusiCNN version
        con.execute("UPDATE track_musicnn SET musicnn_version = musicnn_version - 1")
    before = snapshot(db)
    summary = run(lib, db)
    assert (summary["refreshed"], summary["analyzed"], summary["unchanged"]) == (3, 0, 3)
    after = snapshot(db)
    for table in ("files", "track_tags", "track_features", "failures"):
        assert after[table] == before[table], table  # analyzed_at and every other column
    with duckdb.connect(str(db), read_only=True) as con:
        old = musicnn_rows(con, before)
        new = musicnn_rows(con, after)
    assert old.keys() == new.keys() and len(new) == 6  # 3 tracks, 2 models
    for key, (version, analyzed) in new.items():
        assert version == MUSICNN_VERSION and old[key][0] == MUSICNN_VERSION - 1
        assert analyzed > old[key][1]
    assert run(lib, db)["refreshed"] == 0


def musicnn_rows(
    con: duckdb.DuckDBPyConnection, snap: dict[str, list[tuple[Any, ...]]]
) -> dict[tuple[str, str], tuple[int, Any]]:
    """(path, model) -> (musicnn_version, analyzed_at) of a snapshot's track_musicnn rows."""
    names = [
        c
        for (c,) in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'track_musicnn' ORDER BY ordinal_position"
        ).fetchall()
    ]
    rows = [dict(zip(names, r, strict=True)) for r in snap["track_musicnn"]]
    return {(r["path"], r["model"]): (r["musicnn_version"], r["analyzed_at"]) for r in rows}


def bump_musicnn_down(db: Path) -> None:
    """Make the stored MusiCNN rows those of an older version: the next run refreshes them."""
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE track_musicnn SET musicnn_version = musicnn_version - 1")


@pytest.mark.fault("a MusiCNN refresh that times out")
def test_a_refresh_that_times_out_keeps_the_track_and_is_not_tried_every_run(library, monkeypatch):
    lib, db, _ = library
    bump_musicnn_down(db)
    before = snapshot(db)
    hung = lib / FILES[0]
    monkeypatch.setenv("PLAYLISTA_FAULTS", json.dumps([{"match": FILES[0], "fault": "hang"}]))
    monkeypatch.setenv("PLAYLISTA_DECODE_TIMEOUT_SECONDS", "5")
    summary = run(lib, db)
    assert (summary["refreshed"], summary["analyzed"], summary["failed"]) == (3, 0, 1)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM library").fetchone() == (3,)
        kept = con.execute(
            "SELECT error_class, kept_analysis_at FROM failures WHERE path = ?", [str(hung)]
        ).fetchone()
        old_rows = con.execute(
            "SELECT count(*) FROM track_musicnn WHERE path = ? AND musicnn_version = ?",
            [str(hung), MUSICNN_VERSION - 1],
        ).fetchone()
    assert kept == ("timeout", analysed_at(db)[str(hung)])
    assert old_rows == (2,)  # its MusiCNN rows of the older version, not none
    after = snapshot(db)
    for table in ("files", "track_tags", "track_features"):
        assert after[table] == before[table], table
    again = run(lib, db)  # permanent: not refreshed again until it changes
    assert (again["refreshed"], again["analyzed"], again["retried"]) == (0, 0, 0)


@pytest.mark.fault("a refresh failing transiently")
def test_a_refresh_that_fails_transiently_is_retried_as_a_refresh_where_it_failed(
    library, monkeypatch, tmp_path
):
    lib, db, _ = library
    bump_musicnn_down(db)
    before = snapshot(db)
    state = tmp_path / "faults"
    rules = [  # attempts at each file are counted; loop_amen fails once, mozart twice
        {"match": name, "fault": "eio", "times": times, "state": str(state / stem)}
        for name, stem, times in (
            (FILES[0], "bach", 0),
            (FILES[1], "amen", 1),
            (FILES[2], "mozart", 2),
        )
    ]
    monkeypatch.setenv("PLAYLISTA_FAULTS", json.dumps(rules))
    summary = run(lib, db)
    assert (summary["refreshed"], summary["analyzed"], summary["failed"]) == (3, 0, 0)
    after = snapshot(db)
    for table in ("files", "track_tags", "track_features", "failures"):
        assert after[table] == before[table], table  # MusiCNN alone ran, on every try
    with duckdb.connect(str(db), read_only=True) as con:
        versions = con.execute("SELECT DISTINCT musicnn_version FROM track_musicnn").fetchall()
    assert versions == [(MUSICNN_VERSION,)]
    decodes = {p.name: sum(f.stat().st_size for f in p.iterdir()) for p in state.iterdir()}
    # Its batch and one retry for amen; its batch and two retries for mozart; the second
    # retry does not decode amen again.
    assert decodes == {"bach": 1, "amen": 2, "mozart": 3}


@pytest.mark.fault("one database under two names")
def test_a_relative_database_path_is_made_absolute(library, monkeypatch):
    lib, db, _ = library
    monkeypatch.chdir(db.parent)
    summary = analyze_library(roots=[str(lib)], db=db.name, workers=2, batch_size=1)
    assert summary["db"] == str(db)
    assert summary["unchanged"] == 3
