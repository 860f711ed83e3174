"""The store's schema, migrations, batch upserts, run rows and locking, on real DuckDB files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from playlista.errors import DatabaseBusyError
from playlista.records import Failure
from playlista.scan import fingerprint
from playlista.store import Store
from playlista.store import migrations as migrations_module
from playlista.store.file import connect
from playlista.store.lock import probe, sole_writer
from tests.conftest import database_held_by_another_process
from tests.store.helpers import (
    CHROMA,
    MFCC,
    T0,
    audio_file,
    columns,
    failure,
    library_paths,
    one,
    refreshed,
    rows,
    snapshot,
    track,
)

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
    assert row["tag_replaygain_track_gain_db"] == -6.5  # as tagged
    assert row["tag_replaygain_album_peak"] is None
    assert row["replaygain_track_gain_db"] == -18 - -9.5  # as measured
    assert row["true_peak_dbtp"] == 1.5
    assert row["replaygain_track_peak"] == pytest.approx(10 ** (1.5 / 20))
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


@pytest.mark.fault("a failure of an unchanged file")
def test_a_failure_of_an_unchanged_file_keeps_its_analysis_and_says_so(
    store: Store, lib: Path
) -> None:
    # A re-analysis (a full rescan, a new analyser or MusiCNN version) that fails on a file
    # whose content has not changed must not erase what the library knows of it.
    a, b = audio_file(lib / "a.flac"), audio_file(lib / "b.flac")
    store.write_outcomes([track(a), track(b)])
    before = snapshot(store)
    later = T0 + timedelta(days=3)
    assert store.write_outcomes([failure(a, error_class="timeout", failed_at=later)]) == (0, 1)
    assert library_paths(store) == [str(a), str(b)]
    after = snapshot(store)
    for table in ("files", "track_tags", "track_features", "track_musicnn"):
        assert after[table] == before[table], table
    assert one(store, "SELECT path, error_class, kept_analysis_at FROM failures") == (
        str(a),
        "timeout",
        T0,
    )


def test_a_failure_of_a_changed_file_removes_the_old_analysis(store: Store, lib: Path) -> None:
    a, b = audio_file(lib / "a.flac"), audio_file(lib / "b.flac")
    store.write_outcomes([track(a), track(b)])
    audio_file(a, 5000, seed="new content")
    assert store.write_outcomes([failure(a, message="now broken")]) == (0, 1)
    assert library_paths(store) == [str(b)]
    assert rows(store, "SELECT path FROM track_tags") == [(str(b),)]
    assert rows(store, "SELECT path FROM track_features") == [(str(b),)]
    assert rows(store, "SELECT DISTINCT path FROM track_musicnn") == [(str(b),)]
    # The file stays known and present, at its new stat, without a fingerprint: a failed
    # file is not matched as a move.
    assert one(store, "SELECT status, size, fingerprint FROM files WHERE path = ?", str(a)) == (
        "present",
        5000,
        None,
    )
    assert one(store, "SELECT message, kept_analysis_at FROM failures") == ("now broken", None)


def test_a_refresh_after_a_failure_deletes_the_failure(store: Store, lib: Path) -> None:
    a = audio_file(lib / "a.flac")
    store.write_outcomes([track(a, musicnn_version=1)])
    store.write_outcomes([failure(a, retryable=True, error_class="io_error")])
    store.write_outcomes([refreshed(a, version=2)])
    assert store.failures() == []
    assert rows(store, "SELECT DISTINCT musicnn_version FROM track_musicnn") == [(2,)]


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


# -- one writer, however the path is spelled --------------------------------------------


@pytest.mark.fault("one database under two names")
def test_the_writer_lock_is_one_lock_whatever_the_path_that_names_the_database(
    tmp_path: Path,
) -> None:
    real = tmp_path / "real" / "library.duckdb"
    Store.open(real).close()
    link = tmp_path / "library.duckdb"
    link.symlink_to(real)
    with sole_writer(link, wait_seconds=0):
        for spelling in (real, tmp_path / "real" / ".." / "real" / "library.duckdb"):
            with probe(spelling) as free:
                assert not free, spelling
            with pytest.raises(DatabaseBusyError), sole_writer(spelling, wait_seconds=0):
                pass
    with probe(real) as free:
        assert free
