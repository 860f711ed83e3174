"""The one place that opens playlista's DuckDB file and writes to it.

The flow process is the only writer: it opens the file once per run, and every batch of
results goes in with one transaction of Arrow inserts.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import duckdb
import pyarrow as pa

from playlista.audio.sources import FEATURE_SOURCES, MODEL_SOURCES
from playlista.models.frontend import LABELS
from playlista.playlists.model import Playlist
from playlista.records import AnalysisOutcome, FileStat, UnlistedFolder
from playlista.store import arrow
from playlista.store.arrow import RUN_COUNTERS
from playlista.store.file import connect
from playlista.store.migrations import migrate
from playlista.store.plan import Plan, make_plan
from playlista.store.read import Reader

log = logging.getLogger(__name__)

_TRACK_TABLES = ("files", "track_tags", "track_features", "track_musicnn", "failures")


class Store(Reader):
    """playlista's database, written: schema, planning, batch upserts, run bookkeeping and
    playlists; and read, as a :class:`Reader`."""

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, prepare: bool = True) -> Self:
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
        return self.write_tables(arrow.batch_tables(outcomes))

    def write_tables(self, tables: dict[str, pa.Table]) -> tuple[int, int]:
        """Upsert one batch, as :func:`.arrow.batch_tables` made it, in one transaction.

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

    # -- playlists --------------------------------------------------------------------

    def replace_playlists(
        self,
        spec: str,
        playlists: Sequence[Playlist],
        files: Sequence[str | None],
        durations: Sequence[float],
    ) -> None:
        """Replace every playlist ``spec`` made before with ``playlists``, in one transaction."""
        now = datetime.now(UTC)
        names = [p.name for p in playlists]
        with self._transaction():
            self.con.execute(
                "DELETE FROM playlist_tracks WHERE playlist IN "
                "(SELECT name FROM playlists WHERE spec = $spec) OR playlist IN "
                "(SELECT unnest($names))",
                {"spec": spec, "names": names},
            )
            self.con.execute(
                "DELETE FROM playlists WHERE spec = $spec OR name IN (SELECT unnest($names))",
                {"spec": spec, "names": names},
            )
            for playlist, file, duration in zip(playlists, files, durations, strict=True):
                self.con.execute(
                    "INSERT INTO playlists VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        playlist.name,
                        spec,
                        playlist.title,
                        playlist.method,
                        json.dumps(playlist.parameters, sort_keys=True),
                        file,
                        len(playlist.paths),
                        duration,
                        now,
                    ],
                )
                self.con.executemany(
                    "INSERT INTO playlist_tracks VALUES (?, ?, ?)",
                    [(playlist.name, i, p) for i, p in enumerate(playlist.paths, start=1)],
                )

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
