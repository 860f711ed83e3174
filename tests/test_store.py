"""The DuckDB store on real database files: schema, upserts, planning and locking.

Results are built here as ``TrackResult`` and ``Failure`` records for real files in tmp_path
(real size, mtime and fingerprint) instead of by decoding audio: the records are the seam
between analysis and storage, and the real audio path is tested in test_flow and
test_incremental.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from playlista.errors import DatabaseBusyError
from playlista.records import Failure, Features, FileStat, Tags, TrackResult
from playlista.scan import discover, fingerprint
from playlista.store import Plan, Store, connect
from playlista.store import migrations as migrations_module
from tests.conftest import database_held_by_another_process

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
TABLES = ("files", "track_tags", "track_features", "failures")
MFCC = tuple(-250.5 + 17.25 * i for i in range(13))  # exact in float32
CHROMA = tuple(i / 16 for i in range(12))


# -- helpers --------------------------------------------------------------------------


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
) -> TrackResult:
    """A result for the real file at ``path``, as analysis would return it."""
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
    )


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


def plan(store: Store, *roots: Path, version: int = 1, **options: bool) -> Plan:
    return store.plan(
        discover(roots),
        roots=[str(r) for r in roots],
        analyzer_version=version,
        **options,
    )


def counts(**nonzero: int) -> dict[str, int]:
    keys = ("files_seen", "new", "changed", "unchanged", "moved", "deleted", "retried")
    return {k: nonzero.get(k, 0) for k in keys}


def rows(store: Store, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return store.con.execute(sql, list(params)).fetchall()


def one(store: Store, sql: str, *params: Any) -> Any:
    result = rows(store, sql, *params)
    assert len(result) == 1, result
    return result[0]


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {t: rows(store, f"SELECT * FROM {t} ORDER BY path") for t in TABLES}


def library_paths(store: Store) -> list[str]:
    return [p for (p,) in rows(store, "SELECT path FROM library ORDER BY path")]


def columns(store: Store, relation: str) -> dict[str, str]:
    return {name: kind for name, kind, *_ in rows(store, f"DESCRIBE {relation}")}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "db" / "playlista.duckdb") as s:
        yield s


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    root.mkdir()
    return root


@pytest.fixture
def analysed(store: Store, lib: Path) -> list[Path]:
    """Three analysed files and one permanent failure, written and planned once."""
    files = [audio_file(lib / "a.flac"), audio_file(lib / "b.mp3"), audio_file(lib / "c" / "d.ogg")]
    broken = audio_file(lib / "broken.mp3", 100)
    first = plan(store, lib)
    assert first.counts == counts(files_seen=4, new=4)
    store.apply_plan(first)
    assert store.write_outcomes([*(track(f) for f in files), failure(broken)]) == (3, 1)
    return [*files, broken]


# -- schema and migrations ------------------------------------------------------------


def test_a_new_database_has_every_migration_recorded_once(tmp_path: Path) -> None:
    db = tmp_path / "new" / "sub" / "playlista.duckdb"
    with Store.open(db) as s:
        applied = rows(s, "SELECT name, applied_at FROM migrations ORDER BY name")
    assert db.is_file()
    assert [name for name, _ in applied] == [name for name, _ in migrations_module.MIGRATIONS]
    assert applied[0][0] == "0001_initial"
    assert abs(applied[0][1] - datetime.now(UTC)) < timedelta(minutes=5)


def test_reopening_applies_nothing_and_keeps_the_data(tmp_path: Path) -> None:
    db = tmp_path / "playlista.duckdb"
    song = audio_file(tmp_path / "music" / "a.flac")
    with Store.open(db) as s:
        s.write_outcomes([track(song)])
        before = rows(s, "SELECT * FROM migrations")
        sources = rows(s, "SELECT * FROM feature_sources ORDER BY feature")
    with Store.open(db) as s:
        assert rows(s, "SELECT * FROM migrations") == before
        assert rows(s, "SELECT * FROM feature_sources ORDER BY feature") == sources
        assert library_paths(s) == [str(song)]
        assert migrations_module.migrate(s.con) == []
    assert len(sources) > 0


def test_migrate_on_an_empty_connection_returns_the_names_applied() -> None:
    con = duckdb.connect()
    assert migrations_module.migrate(con) == [n for n, _ in migrations_module.MIGRATIONS]
    assert migrations_module.migrate(con) == []
    assert con.execute("SELECT count(*) FROM migrations").fetchone() == (
        len(migrations_module.MIGRATIONS),
    )


def test_a_failing_migration_leaves_no_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    # A step and its migrations row share one transaction: a half-applied step is undone.
    con = duckdb.connect()
    migrations_module.migrate(con)
    broken = "CREATE TABLE extra (x INTEGER); SELECT * FROM no_such_table;"
    monkeypatch.setattr(
        migrations_module, "MIGRATIONS", [*migrations_module.MIGRATIONS, ("0099_broken", broken)]
    )
    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        migrations_module.migrate(con)
    assert con.execute("SELECT name FROM migrations WHERE name = '0099_broken'").fetchall() == []
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "extra" not in tables and "files" in tables


def test_library_view_has_the_documented_columns(store: Store) -> None:
    cols = columns(store, "library")
    wanted = {
        "path", "title", "artist", "album", "albumartist", "genre", "year", "track_no",
        "disc_no", "duration_s", "codec", "bitrate", "sample_rate", "channels", "bpm",
        "bpm_confidence", "key", "mode", "key_strength", "camelot", "loudness_lufs",
        "loudness_range_lu", "energy", "danceability", "spectral_centroid_hz", "onset_rate",
        "mfcc_mean", "chroma_mean", "analyzer_version", "analyzed_at",
    }  # fmt: skip
    assert wanted <= set(cols), wanted - set(cols)
    assert cols["mfcc_mean"] == "FLOAT[13]"
    assert cols["chroma_mean"] == "FLOAT[12]"
    assert cols["bpm"] == "DOUBLE"
    assert cols["year"] == "INTEGER"
    assert cols["analyzed_at"] == "TIMESTAMP WITH TIME ZONE"


def test_failures_and_runs_tables_have_the_documented_columns(store: Store) -> None:
    failures = set(columns(store, "failures"))
    assert {
        "path", "error_class", "message", "retryable", "attempts",
        "first_failed_at", "last_failed_at",
    } <= failures  # fmt: skip
    runs = set(columns(store, "runs"))
    assert {
        "run_id", "flow_run_id", "started_at", "finished_at", "files_seen", "new", "changed",
        "unchanged", "moved", "deleted", "analyzed", "failed", "audio_seconds", "wall_seconds",
    } <= runs  # fmt: skip


# -- write_outcomes -------------------------------------------------------------------


def test_values_round_trip_into_the_library_view(store: Store, lib: Path) -> None:
    song = audio_file(lib / "a.flac")
    result = track(song, warnings=("date '19xx' has no year", "loudness range: too short"))
    assert store.write_outcomes([result]) == (1, 0)
    row = dict(
        zip(
            [d[0] for d in store.con.execute("SELECT * FROM library").description],
            one(store, "SELECT * FROM library"),
            strict=True,
        )
    )
    st = song.stat()
    assert row["path"] == str(song)
    assert (row["size"], row["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
    assert (row["title"], row["artist"], row["album"], row["albumartist"], row["genre"]) == (
        "Song",
        "Artist",
        "Album",
        "Various",
        "Jazz",
    )
    assert (row["year"], row["track_no"], row["track_total"], row["disc_no"]) == (1999, 3, 12, 1)
    assert (row["codec"], row["bitrate"], row["sample_rate"], row["channels"]) == (
        "flac",
        900_000,
        44100,
        2,
    )
    assert row["duration_s"] == 180.25  # the decoded length, not the header's 181
    assert row["replaygain_track_gain_db"] == -6.5
    assert row["replaygain_album_peak"] is None
    assert (row["bpm"], row["bpm_confidence"]) == (128.0, 0.75)
    assert (row["key"], row["mode"], row["camelot"]) == ("A", "minor", "8A")
    assert row["key_strength"] == pytest.approx(0.62)
    assert (row["loudness_lufs"], row["loudness_range_lu"]) == (-9.5, 6.25)
    assert row["energy"] == pytest.approx(0.21)
    assert row["spectral_centroid_hz"] == 2100.5
    assert row["spectral_rolloff_hz"] is None
    assert row["onset_rate"] == 3.5
    assert row["mfcc_mean"] == MFCC
    assert row["chroma_mean"] == CHROMA
    assert row["mfcc_std"] is None
    assert row["warnings"] == ["date '19xx' has no year", "loudness range: too short"]
    assert (row["decoder"], row["worker"], row["analyzer_version"]) == ("soundfile", "host:123", 1)
    assert row["analyzed_at"] == T0
    stream = one(store, "SELECT stream_duration_s, analyzed_at FROM track_tags")
    assert stream == (181.0, T0)
    assert one(store, "SELECT fingerprint, status FROM files") == (
        fingerprint(str(song)),
        "present",
    )


def test_no_warnings_are_stored_as_an_empty_list(store: Store, lib: Path) -> None:
    store.write_outcomes([track(audio_file(lib / "a.flac"))])
    assert one(store, "SELECT warnings FROM library") == ([],)


def test_duplicates_of_one_path_in_a_batch_keep_the_last(store: Store, lib: Path) -> None:
    a, b = audio_file(lib / "a.flac"), audio_file(lib / "b.flac")
    batch = [track(a, title="first"), track(b, title="other"), track(a, title="last")]
    assert store.write_outcomes(batch) == (2, 0)
    assert rows(store, "SELECT path, title FROM library ORDER BY path") == [
        (str(a), "last"),
        (str(b), "other"),
    ]


def test_a_failure_after_a_result_in_one_batch_wins(store: Store, lib: Path) -> None:
    a = audio_file(lib / "a.flac")
    assert store.write_outcomes([track(a), failure(a)]) == (0, 1)
    assert library_paths(store) == []
    assert rows(store, "SELECT path, attempts FROM failures") == [(str(a), 1)]
    assert store.write_outcomes([failure(a), track(a)]) == (1, 0)
    assert library_paths(store) == [str(a)]
    assert rows(store, "SELECT * FROM failures") == []


def test_writing_the_same_batch_twice_changes_nothing(store: Store, lib: Path) -> None:
    batch = [track(audio_file(lib / f"{n}.flac"), title=n) for n in "abc"]
    assert store.write_outcomes(batch) == (3, 0)
    first = snapshot(store)
    assert store.write_outcomes(batch) == (3, 0)
    second = snapshot(store)
    assert second["track_tags"] == first["track_tags"]
    assert second["track_features"] == first["track_features"]
    assert len(first["track_features"]) == 3
    # files.updated_at records the upsert itself; every other column is unchanged.
    keep = "path, size, mtime_ns, fingerprint, status, first_seen_at, deleted_at, moved_from"
    assert rows(store, f"SELECT {keep} FROM files ORDER BY path") == [
        (*r[:5], r[5], r[7], r[8]) for r in first["files"]
    ]


def test_a_failure_removes_the_stored_analysis(store: Store, lib: Path) -> None:
    a, b = audio_file(lib / "a.flac"), audio_file(lib / "b.flac")
    store.write_outcomes([track(a), track(b)])
    assert store.write_outcomes([failure(a, message="now broken")]) == (0, 1)
    assert library_paths(store) == [str(b)]
    assert rows(store, "SELECT path FROM track_tags") == [(str(b),)]
    assert rows(store, "SELECT path FROM track_features") == [(str(b),)]
    # The file stays known and present, without a fingerprint: a failed file is not matched
    # as a move.
    assert one(store, "SELECT status, fingerprint FROM files WHERE path = ?", str(a)) == (
        "present",
        None,
    )
    assert one(store, "SELECT message FROM failures") == ("now broken",)


def test_a_success_after_a_failure_deletes_the_failure(store: Store, lib: Path) -> None:
    a = audio_file(lib / "a.flac")
    store.write_outcomes([failure(a, retryable=True, error_class="io_error")])
    assert store.failures()[0][:5] == (str(a), "io_error", "cannot decode", True, 1)
    store.write_outcomes([track(a)])
    assert store.failures() == []
    assert library_paths(store) == [str(a)]
    assert one(store, "SELECT fingerprint FROM files") == (fingerprint(str(a)),)


def test_repeated_failures_count_attempts_and_keep_the_first_time(store: Store, lib: Path) -> None:
    a = audio_file(lib / "a.flac")
    times = [T0 + timedelta(hours=h) for h in range(3)]
    for n, t in enumerate(times):
        store.write_outcomes([failure(a, failed_at=t, message=f"try {n}")])
    assert rows(
        store, "SELECT attempts, first_failed_at, last_failed_at, message, retryable FROM failures"
    ) == [(3, times[0], times[2], "try 2", False)]


def test_a_failure_with_an_unknown_stat_is_recorded_without_a_files_row(
    store: Store, lib: Path
) -> None:
    gone = str(lib / "gone.flac")
    record = Failure(gone, None, None, "file_vanished", "disappeared", False, "w", T0)
    assert store.write_outcomes([record]) == (0, 1)
    assert rows(store, "SELECT path, size, mtime_ns, attempts FROM failures") == [
        (gone, None, None, 1)
    ]
    assert rows(store, "SELECT * FROM files") == []


def test_an_empty_batch_writes_nothing(store: Store) -> None:
    assert store.write_outcomes([]) == (0, 0)
    assert all(v == [] for v in snapshot(store).values())


# -- planning ---------------------------------------------------------------------------


def test_everything_is_new_on_an_empty_database(store: Store, lib: Path) -> None:
    files = sorted([audio_file(lib / "x.mp3"), audio_file(lib / "y" / "z.flac")])
    p = plan(store, lib)
    assert sorted(s.path for s in p.to_analyze) == [str(f) for f in files]
    assert all(s == FileStat(s.path, *_stat(s.path)) for s in p.to_analyze)
    assert (p.moves, p.deleted, p.restored) == ([], [], [])
    assert p.counts == counts(files_seen=2, new=2)


def _stat(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def test_an_unchanged_library_plans_nothing_and_changes_no_row(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    before = snapshot(store)
    assert [len(before[t]) for t in TABLES] == [4, 3, 3, 1]
    p = plan(store, lib)
    assert p.counts == counts(files_seen=4, unchanged=4)
    assert (p.to_analyze, p.moves, p.deleted, p.restored) == ([], [], [], [])
    store.apply_plan(p)
    assert snapshot(store) == before


def test_a_touched_or_resized_file_is_changed(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    touched, resized = analysed[0], analysed[1]
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    st = resized.stat()
    with resized.open("ab") as f:
        f.write(b"more")
    os.utime(resized, ns=(st.st_atime_ns, st.st_mtime_ns))  # only the size differs
    p = plan(store, lib)
    assert sorted(s.path for s in p.to_analyze) == sorted([str(touched), str(resized)])
    assert p.counts == counts(files_seen=4, changed=2, unchanged=2)
    assert (p.moves, p.deleted) == ([], [])


def test_a_renamed_file_moves_with_its_analysis(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    old = analysed[0]
    new = lib / "renamed" / "A.flac"
    new.parent.mkdir()
    identity = (
        "SELECT x.analyzed_at, f.first_seen_at, f.fingerprint "
        "FROM track_features AS x JOIN files AS f USING (path) WHERE path = ?"
    )
    before = one(store, identity, str(old))
    old.rename(new)
    p = plan(store, lib)
    size, mtime_ns = _stat(str(new))
    assert p.moves == [(str(old), FileStat(str(new), size, mtime_ns))]
    assert p.counts == counts(files_seen=4, moved=1, unchanged=3)
    assert (p.to_analyze, p.deleted) == ([], [])
    store.apply_plan(p)
    for table in TABLES:
        assert rows(store, f"SELECT * FROM {table} WHERE path = ?", str(old)) == []
    moved = one(
        store, "SELECT status, moved_from, size, mtime_ns FROM files WHERE path = ?", str(new)
    )
    assert moved == ("present", str(old), size, mtime_ns)
    assert one(store, identity, str(new)) == before
    assert one(store, "SELECT title, bpm, mfcc_mean FROM library WHERE path = ?", str(new)) == (
        "Song",
        128.0,
        MFCC,
    )
    assert len(library_paths(store)) == 3
    assert plan(store, lib).counts == counts(files_seen=4, unchanged=4)


def test_a_new_file_of_the_same_size_but_other_content_is_not_a_move(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    old = analysed[0]
    size = old.stat().st_size
    old.unlink()
    other = audio_file(lib / "other.flac", size, seed="different")
    p = plan(store, lib)
    assert p.moves == []
    assert [s.path for s in p.to_analyze] == [str(other)]
    assert p.deleted == [str(old)]
    assert p.counts == counts(files_seen=4, new=1, unchanged=3, deleted=1)


def test_two_identical_copies_moved_at_once_are_matched_one_to_one(store: Store, lib: Path) -> None:
    copies = [audio_file(lib / n, seed="same") for n in ("one.flac", "two.flac")]
    store.write_outcomes([track(c) for c in copies])
    targets = [lib / "moved" / n for n in ("uno.flac", "dos.flac")]
    targets[0].parent.mkdir()
    for c, t in zip(copies, targets, strict=True):
        c.rename(t)
    p = plan(store, lib)
    assert sorted(old for old, _ in p.moves) == sorted(str(c) for c in copies)
    assert sorted(new.path for _, new in p.moves) == sorted(str(t) for t in targets)
    assert p.counts == counts(files_seen=2, moved=2)
    assert (p.to_analyze, p.deleted) == ([], [])
    store.apply_plan(p)
    assert library_paths(store) == sorted(str(t) for t in targets)
    assert sorted(m for (m,) in rows(store, "SELECT moved_from FROM files")) == sorted(
        str(c) for c in copies
    )


def test_two_identical_copies_of_which_one_came_back_make_one_move_one_deletion(
    store: Store, lib: Path
) -> None:
    copies = [audio_file(lib / n, seed="same") for n in ("one.flac", "two.flac")]
    store.write_outcomes([track(c) for c in copies])
    copies[0].rename(lib / "uno.flac")
    copies[1].unlink()
    p = plan(store, lib)
    assert len(p.moves) == 1 and p.moves[0][1].path == str(lib / "uno.flac")
    assert sorted([p.moves[0][0], *p.deleted]) == sorted(str(c) for c in copies)
    assert p.counts == counts(files_seen=1, moved=1, deleted=1)


def test_a_moved_file_replaces_a_stale_row_at_its_new_path(store: Store, lib: Path) -> None:
    a = audio_file(lib / "a.flac")
    stale = audio_file(lib / "b.flac", 999)
    store.write_outcomes([track(a), track(stale, title="stale")])
    stale.unlink()
    store.apply_plan(plan(store, lib))  # b.flac is now a deleted row
    a.rename(stale)
    p = plan(store, lib)
    assert [(old, new.path) for old, new in p.moves] == [(str(a), str(stale))]
    store.apply_plan(p)
    assert rows(store, "SELECT path, title FROM library") == [(str(stale), "Song")]
    assert rows(store, "SELECT path, status FROM files") == [(str(stale), "present")]


def test_a_deleted_file_keeps_its_rows_but_leaves_the_library(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    gone = analysed[1]
    gone.unlink()
    p = plan(store, lib)
    assert p.deleted == [str(gone)]
    assert p.counts == counts(files_seen=3, unchanged=3, deleted=1)
    store.apply_plan(p)
    status, deleted_at = one(
        store, "SELECT status, deleted_at FROM files WHERE path = ?", str(gone)
    )
    assert status == "deleted"
    assert abs(deleted_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert rows(store, "SELECT title FROM track_tags WHERE path = ?", str(gone)) == [("Song",)]
    assert rows(store, "SELECT count(*) FROM track_features") == [(3,)]
    assert str(gone) not in library_paths(store)
    assert len(library_paths(store)) == 2
    # Deleted once is enough: the next scan does not report it again.
    assert plan(store, lib).counts == counts(files_seen=3, unchanged=3)


def delete_and_bring_back(store: Store, lib: Path, path: Path) -> Path:
    """Delete ``path``, let a scan mark it deleted, then put it back byte- and mtime-equal."""
    data, st = path.read_bytes(), path.stat()
    path.unlink()
    store.apply_plan(plan(store, lib))
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return path


def test_a_deleted_file_that_comes_back_unchanged_is_restored(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    back = delete_and_bring_back(store, lib, analysed[1])
    p = plan(store, lib)
    assert p.restored == [str(back)]
    assert p.counts == counts(files_seen=4, unchanged=4)
    assert (p.to_analyze, p.moves, p.deleted) == ([], [], [])
    store.apply_plan(p)
    assert one(store, "SELECT status, deleted_at FROM files WHERE path = ?", str(back)) == (
        "present",
        None,
    )
    assert str(back) in library_paths(store)


def test_a_deleted_file_that_comes_back_changed_is_new(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    back = analysed[1]
    back.unlink()
    store.apply_plan(plan(store, lib))
    audio_file(back, 5000)
    p = plan(store, lib)
    assert [s.path for s in p.to_analyze] == [str(back)]
    assert p.restored == []
    assert p.counts == counts(files_seen=4, new=1, unchanged=3)


def test_only_the_scanned_roots_can_lose_files(store: Store, tmp_path: Path) -> None:
    # "music2" shares a prefix with "music": scoping must be by folder, not by string.
    a_root, b_root = tmp_path / "music", tmp_path / "music2"
    a = [audio_file(a_root / "a1.flac"), audio_file(a_root / "sub" / "a2.flac")]
    b = [audio_file(b_root / "b1.flac")]
    store.write_outcomes([track(f) for f in a + b])
    a[0].unlink()
    p = plan(store, b_root)
    assert p.counts == counts(files_seen=1, unchanged=1)
    assert p.deleted == []
    store.apply_plan(p)
    assert rows(store, "SELECT count(*) FROM files WHERE status = 'present'") == [(3,)]
    p = plan(store, a_root)
    assert p.deleted == [str(a[0])]
    assert p.counts == counts(files_seen=1, unchanged=1, deleted=1)


def test_a_permanent_failure_is_not_retried_until_the_file_changes(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    broken = analysed[3]
    p = plan(store, lib)
    assert p.to_analyze == []
    assert p.counts["unchanged"] == 4
    with broken.open("ab") as f:
        f.write(b"fixed")
    p = plan(store, lib)
    assert [s.path for s in p.to_analyze] == [str(broken)]
    assert p.counts == counts(files_seen=4, changed=1, unchanged=3)


def test_a_transient_failure_is_retried(store: Store, lib: Path, analysed: list[Path]) -> None:
    flaky = analysed[0]
    store.write_outcomes([failure(flaky, retryable=True, error_class="io_error")])
    p = plan(store, lib)
    assert [s.path for s in p.to_analyze] == [str(flaky)]
    assert p.counts == counts(files_seen=4, retried=1, unchanged=3)


def test_retry_failed_plans_permanent_failures_again(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    broken = analysed[3]
    p = plan(store, lib, retry_failed=True)
    assert [s.path for s in p.to_analyze] == [str(broken)]
    assert p.counts == counts(files_seen=4, retried=1, unchanged=3)


def test_a_new_analyzer_version_plans_analysed_files_again(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    p = plan(store, lib, version=2)
    assert sorted(s.path for s in p.to_analyze) == sorted(str(f) for f in analysed[:3])
    # The permanent failure has no analysis to be stale; it waits for a change.
    assert p.counts["unchanged"] == 1
    assert p.counts["changed"] + p.counts["retried"] == 3
    assert p.counts["files_seen"] == 4
    store.write_outcomes([track(f, version=2) for f in analysed[:3]])
    assert plan(store, lib, version=2).counts == counts(files_seen=4, unchanged=4)


def test_full_rescan_plans_every_file(store: Store, lib: Path, analysed: list[Path]) -> None:
    extra = audio_file(lib / "new.wav")
    analysed[1].unlink()
    p = plan(store, lib, full_rescan=True)
    expected = [analysed[0], analysed[2], analysed[3], extra]
    assert sorted(s.path for s in p.to_analyze) == sorted(str(f) for f in expected)
    assert p.deleted == [str(analysed[1])]
    assert p.counts == counts(files_seen=4, new=1, unchanged=3, deleted=1)


def test_full_rescan_with_a_file_that_came_back(
    store: Store, lib: Path, analysed: list[Path]
) -> None:
    delete_and_bring_back(store, lib, analysed[1])
    p = plan(store, lib, full_rescan=True)
    assert sorted(s.path for s in p.to_analyze) == sorted(str(f) for f in analysed)
    assert p.counts["files_seen"] == 4
    assert sum(p.counts[k] for k in ("new", "changed", "unchanged", "retried")) == 4


def test_a_non_utf8_file_name_does_not_stop_planning(store: Store, lib: Path) -> None:
    good = audio_file(lib / "good.flac")
    with open(os.path.join(os.fsencode(lib), b"caf\xe9.mp3"), "wb") as f:
        f.write(b"x" * 100)
    p = plan(store, lib)
    assert [s.path for s in p.to_analyze] == [str(good)]
    assert p.skipped == [str(lib / "caf\\xe9.mp3")]


def test_duplicate_paths_in_a_scan_are_seen_once(store: Store, lib: Path) -> None:
    a = audio_file(lib / "a.flac")
    stat = FileStat(str(a), *_stat(str(a)))
    p = store.plan([stat, stat], roots=[str(lib)], analyzer_version=1)
    assert p.to_analyze == [stat]
    assert p.counts == counts(files_seen=1, new=1)


# -- runs -------------------------------------------------------------------------------


def test_a_run_row_records_start_finish_and_counts(store: Store) -> None:
    store.start_run("run-1", flow_run_id="flow-9", roots=["/m/a", "/m/b"], full_rescan=True)
    row = one(store, "SELECT status, finished_at, roots, full_rescan, flow_run_id FROM runs")
    assert row == ("running", None, ["/m/a", "/m/b"], True, "flow-9")
    store.finish_run(
        "run-1",
        status="completed",
        counts={"files_seen": 5, "new": 2, "unchanged": 3, "analyzed": 1, "failed": 1,
                "audio_seconds": 12.5, "wall_seconds": 3.25},
    )  # fmt: skip
    cols = (
        "status, files_seen, new, changed, unchanged, moved, deleted, retried, analyzed, "
        "failed, audio_seconds, wall_seconds"
    )
    assert one(store, f"SELECT {cols} FROM runs") == (
        "completed", 5, 2, 0, 3, 0, 0, 0, 1, 1, 12.5, 3.25,
    )  # fmt: skip
    started, finished = one(store, "SELECT started_at, finished_at FROM runs")
    assert started <= finished


# -- a database held by another process -------------------------------------------------


@pytest.fixture
def held_db(tmp_path: Path) -> Iterator[Path]:
    """A DuckDB file opened read-write by another process until the test ends."""
    db = tmp_path / "held.duckdb"
    Store.open(db).close()
    with database_held_by_another_process(db):
        yield db


@pytest.mark.parametrize("read_only", [False, True])
def test_connect_to_a_held_file_raises_busy(held_db: Path, read_only: bool) -> None:
    with pytest.raises(DatabaseBusyError, match="is open in another process") as info:
        connect(held_db, read_only=read_only)
    assert info.value.path == str(held_db)
    assert str(held_db) in str(info.value)
    assert isinstance(info.value.cause, duckdb.IOException)


def test_opening_a_held_store_raises_busy(held_db: Path) -> None:
    with pytest.raises(DatabaseBusyError) as info:
        Store.open(held_db)
    assert str(held_db) in str(info.value)


def test_a_missing_folder_is_not_reported_as_busy(tmp_path: Path) -> None:
    # Only a lock conflict is "busy"; other I/O errors keep their own type.
    with pytest.raises(duckdb.IOException) as info:
        connect(tmp_path / "no" / "such" / "db.duckdb")
    assert not isinstance(info.value, DatabaseBusyError)
