"""Write each batch as it finishes, or keep it as Parquet while another process holds the file.

DuckDB lets one process at a time open a file for writing, and no other process may even
read it meanwhile. So the writer opens the database for each batch and closes it again,
leaving it free between batches to a person's SQL session; when the file is held at that
moment, the batch's tables go to Parquet files in a staging folder beside the database
and are merged, oldest first, at the next batch, at the end of the run, or at the start
of the next run; so is the run's own last row when the file is held as the run ends. A
staged batch is written atomically (to a temporary folder, synced to disk, then renamed)
and removed only after its merge has committed; merging one twice changes nothing. A
batch that cannot be read whole is set aside as ``<name>.rejected`` with its reason, and
the other batches are merged.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from playlista.errors import DatabaseBusyError
from playlista.records import AnalysisOutcome
from playlista.store.arrow import batch_tables, runs_table
from playlista.store.db import Store

log = logging.getLogger(__name__)

# The tables a staged batch may hold, and those that come only together.
_TABLES = {"results", "track_tags", "track_features", "track_musicnn", "failures", "runs"}
_TOGETHER = ("results", "track_tags", "track_features")


def staging_dir(db_path: str | os.PathLike[str]) -> Path:
    """The folder where batches wait while ``db_path`` is held: ``<db>.staged/``."""
    return Path(f"{os.fspath(db_path)}.staged")


class BatchWriter:
    """The run's single writer: one short transaction per batch, or a staged batch."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.db_path = os.fspath(db_path)
        self.staging = staging_dir(db_path)

    def staged(self) -> list[Path]:
        """Staged batches not merged yet, oldest first."""
        if not self.staging.is_dir():
            return []
        return sorted(p for p in self.staging.iterdir() if p.is_dir() and p.suffix == ".batch")

    def write(self, outcomes: list[AnalysisOutcome]) -> bool:
        """Write one batch, after any staged ones; stage it if the file is held. True if written."""
        return self._write(batch_tables(outcomes), "batch")

    def finish_run(
        self, run_id: str, *, status: str, counts: dict[str, float], error: str | None = None
    ) -> bool:
        """Close the run's row, after any staged batches; stage it if the file is held."""
        row = runs_table(
            run_id, status=status, counts=counts, error=error, finished_at=datetime.now(UTC)
        )
        return self._write({"runs": row}, "run's last row")

    def _write(self, tables: dict[str, pa.Table], what: str) -> bool:
        try:
            with Store.open(self.db_path, prepare=False) as store:
                self.merge_into(store)
                store.write_tables(tables)
            return True
        except DatabaseBusyError:
            path = self._stage(tables)
            log.warning("%s is held by another process; %s kept in %s", self.db_path, what, path)
            return False

    def merge_into(self, store: Store) -> int:
        """Write every staged batch into ``store``, oldest first; return how many.

        A batch that cannot be read whole is set aside, and a ``.partial`` folder (left by a
        run killed while staging: only the one writer stages, and not while it merges) is
        removed.
        """
        merged = 0
        for leftover in self._partial():
            log.warning("removing %s, a batch a killed run did not finish staging", leftover)
            shutil.rmtree(leftover)
        for batch in self.staged():
            try:
                tables = _read_batch(batch)
            except (OSError, pa.ArrowException, ValueError) as exc:
                self._set_aside(batch, exc)
                continue
            store.write_tables(tables)
            shutil.rmtree(batch)  # after the commit: a crash here merges it again, idempotently
            merged += 1
        if merged:
            log.info("merged %d staged batch(es) into %s", merged, self.db_path)
        return merged

    def _partial(self) -> list[Path]:
        if not self.staging.is_dir():
            return []
        return sorted(p for p in self.staging.iterdir() if p.is_dir() and p.suffix == ".partial")

    def _set_aside(self, batch: Path, exc: BaseException) -> None:
        kept = batch.with_suffix(".rejected")
        batch.rename(kept)
        reason = f"{type(exc).__name__}: {exc}"
        (kept / "REASON").write_text(reason + "\n", encoding="utf-8")
        log.warning("set aside staged batch %s, which cannot be merged: %s", kept, reason)

    def _stage(self, tables: dict[str, pa.Table]) -> Path:
        self.staging.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        partial = self.staging / f"{name}.partial"
        partial.mkdir()
        for table_name, table in tables.items():
            path = partial / f"{table_name}.parquet"
            pq.write_table(table, path)
            _fsync(path)
        _fsync(partial)
        final = self.staging / f"{name}.batch"
        partial.rename(final)
        _fsync(self.staging)  # the rename itself
        return final


def _read_batch(batch: Path) -> dict[str, pa.Table]:
    """A staged batch's tables, read whole; ``ValueError`` if one is missing or unknown."""
    tables = {p.stem: pq.read_table(p) for p in sorted(batch.glob("*.parquet"))}
    unknown = set(tables) - _TABLES
    missing = [t for t in _TOGETHER if t not in tables] if "results" in tables else []
    if unknown or missing or not tables:
        raise ValueError(
            f"{batch.name} holds {sorted(tables) or 'no tables'}: "
            + (f"missing {', '.join(missing)}" if missing else f"unknown {sorted(unknown)}")
        )
    return tables


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file or a folder's entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
