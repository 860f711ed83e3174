"""Write each batch as it finishes, or keep it as Parquet while another process holds the file.

DuckDB lets one process at a time open a file for writing, and no other process may even
read it meanwhile. So the writer opens the database for each batch and closes it again,
leaving it free between batches to a person's SQL session; when the file is held at that
moment, the batch's tables go to Parquet files in a staging folder beside the database
and are merged, oldest first, at the next batch, at the end of the run, or at the start
of the next run. A staged batch is written atomically (to a temporary folder, then
renamed) and removed only after its merge has committed.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from playlista.errors import DatabaseBusyError
from playlista.records import AnalysisOutcome
from playlista.store.db import Store, batch_tables

log = logging.getLogger(__name__)


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
        tables = batch_tables(outcomes)
        try:
            with Store.open(self.db_path, prepare=False) as store:
                self.merge_into(store)
                store.write_tables(tables)
            return True
        except DatabaseBusyError:
            path = self._stage(tables)
            log.warning("%s is held by another process; batch kept in %s", self.db_path, path)
            return False

    def merge_into(self, store: Store) -> int:
        """Write every staged batch into ``store``, oldest first; return how many."""
        merged = 0
        for batch in self.staged():
            tables = {p.stem: pq.read_table(p) for p in batch.glob("*.parquet")}
            store.write_tables(tables)
            shutil.rmtree(batch)  # after the commit: a crash here merges it again, idempotently
            merged += 1
        if merged:
            log.info("merged %d staged batch(es) into %s", merged, self.db_path)
        return merged

    def _stage(self, tables: dict[str, pa.Table]) -> Path:
        self.staging.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        partial = self.staging / f"{name}.partial"
        partial.mkdir()
        for table_name, table in tables.items():
            pq.write_table(table, partial / f"{table_name}.parquet")
        final = self.staging / f"{name}.batch"
        partial.rename(final)
        return final
