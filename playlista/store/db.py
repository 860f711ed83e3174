"""The one place that opens playlista's DuckDB file and writes to it.

The flow process is the only writer: it opens the file once per run, and every batch of
results goes in with one transaction of Arrow inserts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from playlista.audio.sources import FEATURE_SOURCES, MODEL_SOURCES
from playlista.errors import DatabaseBusyError, DatabaseFileError
from playlista.models.frontend import LABELS
from playlista.records import (
    AnalysisOutcome,
    Failure,
    FileStat,
    MusicnnResult,
    TrackResult,
    UnlistedFolder,
)
from playlista.store import arrow
from playlista.store.arrow import RUN_COUNTERS
from playlista.store.migrations import migrate
from playlista.store.plan import Plan, make_plan

log = logging.getLogger(__name__)

_TRACK_TABLES = ("files", "track_tags", "track_features", "track_musicnn", "failures")


# The first bytes of every DuckDB file: a checksum, then this at offset 8.
_MAGIC, _MAGIC_AT = b"DUCK", 8


def connect(path: str | os.PathLike[str], *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the database file.

    Raises
    ------
    DatabaseBusyError
        Another process holds it.
    DatabaseFileError
        Read-only, and there is no database at ``path``; or ``path`` is not a DuckDB file.
    """
    try:
        return duckdb.connect(os.fspath(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DatabaseBusyError(os.fspath(path), exc) from exc
        check_database_file(path, must_exist=read_only)
        raise


def check_database_file(path: str | os.PathLike[str], *, must_exist: bool = False) -> None:
    """Raise :class:`DatabaseFileError` if ``path`` exists and is not a DuckDB file, or, with
    ``must_exist``, if there is no file.

    Looks at the file's first bytes only: nothing is opened for writing or locked.
    """
    if not os.path.lexists(path):
        if must_exist:
            raise DatabaseFileError(
                os.fspath(path),
                f"does not exist; make it with `playlista analyze MUSIC --db {path}`",
            )
        return
    if os.path.isdir(path):
        raise DatabaseFileError(os.fspath(path), "is a folder; give --db a file name")
    try:
        with open(path, "rb") as f:
            head = f.read(_MAGIC_AT + len(_MAGIC))
    except OSError as exc:
        raise DatabaseFileError(
            os.fspath(path), f"cannot be read ({exc.strerror or exc}); give --db another file", exc
        ) from exc
    if head and head[_MAGIC_AT:] != _MAGIC:
        raise DatabaseFileError(
            os.fspath(path),
            "is not a DuckDB database; give --db the file `playlista analyze` made, or a new name",
        )


def failure_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """``(path, error_class, message, retryable, attempts, last_failed_at, kept_analysis_at)``
    by class, path."""
    return con.execute(
        "SELECT path, error_class, message, retryable, attempts, last_failed_at, "
        "kept_analysis_at FROM failures ORDER BY error_class, path"
    ).fetchall()


def batch_tables(outcomes: Iterable[AnalysisOutcome]) -> dict[str, pa.Table]:
    """One batch's rows as Arrow tables, by what they update; the last record of a path wins.

    ``results`` (files rows of analysed tracks), ``track_tags`` and ``track_features`` come
    together; ``track_musicnn`` from full and MusiCNN-only results; ``failures`` alone.
    """
    unique = arrow.dedupe_by_path(outcomes)
    results = [o for o in unique if isinstance(o, TrackResult)]
    refreshed = [o for o in unique if isinstance(o, MusicnnResult)]
    failures = [o for o in unique if isinstance(o, Failure)]
    tables: dict[str, pa.Table] = {}
    if results:
        tables["results"] = arrow.files_table(results, [r.fingerprint for r in results])
        tables["track_tags"] = arrow.tags_table(results)
        tables["track_features"] = arrow.features_table(results)
    if results or refreshed:
        tables["track_musicnn"] = arrow.musicnn_table([*results, *refreshed])
    if failures:
        tables["failures"] = arrow.failures_table(failures)
    return tables


def similar_rows(
    con: duckdb.DuckDBPyConnection, path: str, *, n: int, model: str
) -> list[tuple[Any, ...]]:
    """``(path, title, artist, similarity)`` of the ``n`` tracks most like ``path``.

    Raises ``LookupError`` when ``path`` has no embedding from ``model``.
    """
    found = con.execute(
        "SELECT count(*) FROM track_musicnn WHERE path = ? AND model = ?", [path, model]
    ).fetchone()
    if not found or not found[0]:
        raise LookupError(f"{path} has no {model} embedding in the database")
    return con.execute(
        "SELECT path, title, artist, similarity "
        "FROM similar_tracks($path, n := $n, embedding_model := $model)",
        {"path": path, "n": n, "model": model},
    ).fetchall()


class Store:
    """playlista's database: schema, planning, batch upserts and run bookkeeping."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str) -> None:
        self.con = con
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, prepare: bool = True) -> Store:
        """Open (creating if needed) and migrate the database at ``path``.

        ``prepare=False`` skips the migrations and reference rows, for a writer that
        reopens, within one run, a file it has already prepared.
        """
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        store = cls(connect(path), os.fspath(path))
        if prepare:
            migrate(store.con)
            store._record_feature_sources()
        return store

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- planning ---------------------------------------------------------------------

    def plan(
        self,
        scan: Iterable[FileStat | UnlistedFolder],
        *,
        roots: Sequence[str],
        analyzer_version: int,
        musicnn_version: int,
        musicnn_models: int,
        full_rescan: bool = False,
        retry_failed: bool = False,
    ) -> Plan:
        return make_plan(
            self.con,
            scan,
            roots=roots,
            analyzer_version=analyzer_version,
            musicnn_version=musicnn_version,
            musicnn_models=musicnn_models,
            full_rescan=full_rescan,
            retry_failed=retry_failed,
        )

    def apply_plan(self, plan: Plan) -> None:
        """Carry moved rows to their new paths, mark gone files deleted, restore returners,
        and forget the failures discovery no longer finds."""
        now = datetime.now(UTC)
        with self._transaction():
            if plan.resolved:
                self._delete_paths("failures", plan.resolved)
            if plan.moves:
                self._move(plan.moves, now)
            if plan.deleted:
                self._update_paths(
                    "UPDATE files SET status = 'deleted', deleted_at = $now, updated_at = $now "
                    "WHERE path IN (SELECT path FROM paths)",
                    plan.deleted,
                    now,
                )
            if plan.restored:
                self._update_paths(
                    "UPDATE files SET status = 'present', deleted_at = NULL, updated_at = $now "
                    "WHERE path IN (SELECT path FROM paths)",
                    plan.restored,
                    now,
                )

    def _move(self, moves: Sequence[tuple[str, FileStat]], now: datetime) -> None:
        self.con.register("moves", arrow.moves_table(moves))
        try:
            for table in _TRACK_TABLES:  # a stale row at a new path (a deleted file) gives way
                self.con.execute(f"DELETE FROM {table} WHERE path IN (SELECT new_path FROM moves)")
            for table in _TRACK_TABLES:
                self.con.execute(
                    f"UPDATE {table} SET path = m.new_path FROM moves AS m "
                    f"WHERE {table}.path = m.old_path"
                )
            self.con.execute(
                "UPDATE files SET size = m.size, mtime_ns = m.mtime_ns, moved_from = m.old_path, "
                "updated_at = $now FROM moves AS m WHERE files.path = m.new_path",
                {"now": now},
            )
        finally:
            self.con.unregister("moves")

    # -- results ----------------------------------------------------------------------

    def write_outcomes(self, outcomes: Iterable[AnalysisOutcome]) -> tuple[int, int]:
        """Upsert one batch in one transaction; return (analysed, failed) counts."""
        return self.write_tables(batch_tables(outcomes))

    def write_tables(self, tables: dict[str, pa.Table]) -> tuple[int, int]:
        """Upsert one batch, as :func:`batch_tables` made it, in one transaction.

        Writing the same tables again changes nothing: a staged batch may be merged twice.
        """
        results, failures = tables.get("results"), tables.get("failures")
        now = datetime.now(UTC)
        with self._transaction():
            if results is not None:
                self._upsert_files(results, now)
                self._replace("track_tags", tables["track_tags"])
                self._replace("track_features", tables["track_features"])
                self._delete_paths("track_musicnn", results.column("path").to_pylist())
            if "track_musicnn" in tables:
                self._replace("track_musicnn", tables["track_musicnn"])
            for done in (results, tables.get("track_musicnn")):
                if done is not None:  # analysed, or MusiCNN run again: not failing any more
                    self._delete_paths("failures", done.column("path").unique().to_pylist())
            if failures is not None:
                self._record_failures(failures, now)
            if "runs" in tables:
                self._finish_runs(tables["runs"])
        return (
            results.num_rows if results is not None else 0,
            failures.num_rows if failures is not None else 0,
        )

    def _record_failures(self, failures: pa.Table, now: datetime) -> None:
        """Record failures; the old analysis of a file goes only if the file has changed.

        A failure carries the stat of the file it was met on. Where that is the stat the
        database holds, the content is the one the stored analysis was made of: a new
        attempt that failed (a timeout on a full rescan, a MusiCNN refresh) leaves that
        analysis in the library, and the failure's ``kept_analysis_at`` says when it was made.
        The same failure recorded twice (a staged batch merged again) counts one attempt.
        """
        self.con.register("batch", failures)
        try:
            changed = [
                path
                for (path,) in self.con.execute(
                    "SELECT b.path FROM batch AS b JOIN files AS f USING (path) "
                    "WHERE f.size <> b.size OR f.mtime_ns <> b.mtime_ns"
                ).fetchall()
            ]
            for table in ("track_tags", "track_features", "track_musicnn"):
                self._delete_paths(table, changed)  # an analysis of the old content
            self.con.execute(
                """
                INSERT INTO files
                SELECT path, size, mtime_ns, NULL, 'present', $now, $now, NULL, NULL
                FROM batch WHERE size IS NOT NULL AND mtime_ns IS NOT NULL
                ON CONFLICT (path) DO UPDATE SET
                    size = excluded.size, mtime_ns = excluded.mtime_ns,
                    fingerprint = excluded.fingerprint, status = 'present',
                    updated_at = excluded.updated_at, deleted_at = NULL
                WHERE files.size <> excluded.size OR files.mtime_ns <> excluded.mtime_ns
                   OR files.status <> 'present'
                """,
                {"now": now},
            )
            self.con.execute("""
                INSERT INTO failures (path, size, mtime_ns, error_class, message, retryable,
                    attempts, worker, first_failed_at, last_failed_at, kept_analysis_at)
                SELECT b.path, b.size, b.mtime_ns, b.error_class, b.message, b.retryable, 1,
                       b.worker, b.failed_at, b.failed_at, x.analyzed_at
                FROM batch AS b LEFT JOIN track_features AS x USING (path)
                ON CONFLICT (path) DO UPDATE SET
                    size = excluded.size, mtime_ns = excluded.mtime_ns,
                    error_class = excluded.error_class, message = excluded.message,
                    retryable = excluded.retryable,
                    attempts = failures.attempts
                        + CASE WHEN failures.last_failed_at = excluded.last_failed_at
                               THEN 0 ELSE 1 END,
                    worker = excluded.worker, last_failed_at = excluded.last_failed_at,
                    kept_analysis_at = excluded.kept_analysis_at
            """)
        finally:
            self.con.unregister("batch")

    def _upsert_files(self, table: Any, now: datetime) -> None:
        self.con.register("batch", table)
        try:
            self.con.execute(
                """
                INSERT INTO files
                SELECT path, size, mtime_ns, fingerprint, 'present', $now, $now, NULL, NULL
                FROM batch
                ON CONFLICT (path) DO UPDATE SET
                    size = excluded.size, mtime_ns = excluded.mtime_ns,
                    fingerprint = excluded.fingerprint, status = 'present',
                    updated_at = excluded.updated_at, deleted_at = NULL
            """,
                {"now": now},
            )
        finally:
            self.con.unregister("batch")

    def _replace(self, table: str, rows: Any) -> None:
        self.con.register("batch", rows)
        try:
            self.con.execute(f"INSERT OR REPLACE INTO {table} BY NAME SELECT * FROM batch")
        finally:
            self.con.unregister("batch")

    def _delete_paths(self, table: str, paths: list[str]) -> None:
        self._update_paths(
            f"DELETE FROM {table} WHERE path IN (SELECT path FROM paths)", paths, None
        )

    def _update_paths(self, sql: str, paths: Sequence[str], now: datetime | None) -> None:
        self.con.register("paths", arrow.paths_table(paths))
        try:
            self.con.execute(sql, {"now": now} if now is not None else None)
        finally:
            self.con.unregister("paths")

    # -- runs -------------------------------------------------------------------------

    def start_run(
        self, run_id: str, *, flow_run_id: str | None, roots: Sequence[str], full_rescan: bool
    ) -> None:
        """Record a run as started; a run still marked running was killed: say so."""
        self.con.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
        self.con.execute(
            "INSERT INTO runs (run_id, flow_run_id, roots, full_rescan, status, started_at) "
            "VALUES (?, ?, ?, ?, 'running', ?)",
            [run_id, flow_run_id, list(roots), full_rescan, datetime.now(UTC)],
        )

    def finish_run(
        self, run_id: str, *, status: str, counts: dict[str, float], error: str | None = None
    ) -> None:
        """Close a run's row: ``completed`` with its counts, or ``failed`` with its error."""
        table = arrow.runs_table(
            run_id, status=status, counts=counts, error=error, finished_at=datetime.now(UTC)
        )
        with self._transaction():
            self._finish_runs(table)

    def _finish_runs(self, table: pa.Table) -> None:
        columns = ("status", "finished_at", "error", *RUN_COUNTERS, "audio_seconds", "wall_seconds")
        sets = ", ".join(f"{c} = r.{c}" for c in columns)
        self.con.register("finished", table)
        try:
            self.con.execute(
                f"UPDATE runs SET {sets} FROM finished AS r WHERE runs.run_id = r.run_id"
            )
        finally:
            self.con.unregister("finished")

    def failures(self) -> list[tuple[Any, ...]]:
        return failure_rows(self.con)

    # -- helpers ----------------------------------------------------------------------

    def _record_feature_sources(self) -> None:
        rows = sorted({**FEATURE_SOURCES, **MODEL_SOURCES}.items())
        labels = [
            (model, i, tag) for model, tags in sorted(LABELS.items()) for i, tag in enumerate(tags)
        ]
        with self._transaction():
            self.con.executemany(
                "INSERT INTO feature_sources VALUES (?, ?) ON CONFLICT (feature) DO UPDATE "
                "SET source = excluded.source WHERE feature_sources.source <> excluded.source",
                rows,
            )
            self.con.executemany("INSERT OR REPLACE INTO musicnn_labels VALUES (?, ?, ?)", labels)

    def _transaction(self) -> _Transaction:
        return _Transaction(self.con)


class _Transaction:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def __enter__(self) -> None:
        self.con.execute("BEGIN TRANSACTION")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.con.execute("ROLLBACK" if exc_type else "COMMIT")
