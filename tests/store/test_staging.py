"""Batches staged while another process holds the database: merged once, whatever is left."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from playlista.store import Store
from playlista.store.staging import BatchWriter
from tests.conftest import database_held_by_another_process
from tests.store.helpers import audio_file, failure, library_paths, rows, snapshot, track


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "library.duckdb"
    Store.open(path).close()
    return path


def stage(writer: BatchWriter, db: Path, *batches: list) -> list[Path]:
    """Write ``batches`` while another process holds ``db``: each is kept as Parquet."""
    with database_held_by_another_process(db):
        for outcomes in batches:
            assert writer.write(outcomes) is False
    return writer.staged()


@pytest.mark.fault("a staged batch cut short")
def test_a_truncated_staged_batch_is_set_aside_with_its_reason_and_the_rest_merged(
    db: Path, lib: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = audio_file(lib / "a.flac"), audio_file(lib / "b.flac")
    writer = BatchWriter(db)
    first, _ = stage(writer, db, [track(a)], [track(b)])
    cut = first / "results.parquet"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="playlista"), Store.open(db) as store:
        assert writer.merge_into(store) == 1
        assert library_paths(store) == [str(b)]
    assert writer.staged() == []
    (kept,) = writer.staging.glob("*.rejected")
    assert kept.name == first.with_suffix(".rejected").name
    reason = (kept / "REASON").read_text()
    assert "results.parquet" in reason
    assert any(
        str(kept) in r.getMessage() and "set aside" in r.getMessage() for r in caplog.records
    )
    with Store.open(db) as store:  # the next run is not held up by it
        assert writer.merge_into(store) == 0


def test_a_batch_missing_one_of_its_tables_is_set_aside(db: Path, lib: Path) -> None:
    writer = BatchWriter(db)
    (batch,) = stage(writer, db, [track(audio_file(lib / "a.flac"))])
    (batch / "track_features.parquet").unlink()
    with Store.open(db) as store:
        assert writer.merge_into(store) == 0
        assert library_paths(store) == []
    (kept,) = writer.staging.glob("*.rejected")
    assert "track_features" in (kept / "REASON").read_text()


def test_a_partial_batch_left_by_a_killed_run_is_removed(db: Path, lib: Path) -> None:
    writer = BatchWriter(db)
    (batch,) = stage(writer, db, [track(audio_file(lib / "a.flac"))])
    leftover = writer.staging / "00000000000000000001-deadbeef.partial"
    shutil.copytree(batch, leftover)
    with Store.open(db) as store:
        assert writer.merge_into(store) == 1
    assert not leftover.exists()
    assert sorted(p.name for p in writer.staging.iterdir()) == []


@pytest.mark.fault("a staged batch merged twice")
def test_merging_a_staged_batch_again_changes_nothing(db: Path, lib: Path) -> None:
    # A run killed after a merge commits and before it removes the batch merges it again.
    a, b = audio_file(lib / "a.flac"), audio_file(lib / "b.flac")
    writer = BatchWriter(db)
    (batch,) = stage(writer, db, [track(a), failure(b)])
    copy = batch.with_name("copy")
    shutil.copytree(batch, copy)
    with Store.open(db) as store:
        assert writer.merge_into(store) == 1
        once = snapshot(store)
    copy.rename(batch)
    with Store.open(db) as store:
        assert writer.merge_into(store) == 1
        twice = snapshot(store)
        assert rows(store, "SELECT path, attempts FROM failures") == [(str(b), 1)]
    for table in ("track_tags", "track_features", "track_musicnn", "failures"):
        assert twice[table] == once[table], table


def test_a_runs_row_that_could_not_be_written_is_merged_with_its_counts(
    db: Path, lib: Path
) -> None:
    writer = BatchWriter(db)
    with Store.open(db) as store:
        store.start_run("run-1", flow_run_id=None, roots=[str(lib)], full_rescan=False)
    with database_held_by_another_process(db):
        assert writer.finish_run("run-1", status="completed", counts={"analyzed": 3}) is False
    with Store.open(db) as store:
        store.start_run("run-2", flow_run_id=None, roots=[str(lib)], full_rescan=False)
        writer.merge_into(store)
        assert rows(store, "SELECT run_id, status, analyzed FROM runs ORDER BY run_id") == [
            ("run-1", "completed", 3),
            ("run-2", "running", None),
        ]
