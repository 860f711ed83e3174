"""One analysis run on one database: its turn as the writer, its plan, its writes, its row."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from playlista.analysis import ANALYZER_VERSION, MUSICNN_VERSION
from playlista.errors import DatabaseBusyError
from playlista.models.frontend import MODEL_NAMES
from playlista.records import AnalysisOutcome
from playlista.runs.account import RunAccount, error_line
from playlista.scan import discover
from playlista.settings import Settings
from playlista.store import Store
from playlista.store.lock import sole_writer
from playlista.store.plan import Plan
from playlista.store.staging import BatchWriter

log = logging.getLogger(__name__)


class LibraryRun:
    """A run's writer of ``db`` and its account; made by :meth:`begin`."""

    def __init__(self, settings: Settings, roots: Sequence[str]) -> None:
        self.settings = settings
        self.roots = [os.path.abspath(r) for r in roots]
        self.db = str(settings.db)
        self.run_id = str(uuid.uuid4())
        self.writer = BatchWriter(self.db)
        self.account = RunAccount()

    @classmethod
    @contextmanager
    def begin(
        cls, settings: Settings, roots: Sequence[str], *, flow_run_id: Any, full_rescan: bool
    ) -> Iterator[LibraryRun]:
        """Wait for the database's other writers, open the run's row; close it as ``failed``
        (or ``interrupted``) with its error if the ``with`` block raises."""
        run = cls(settings, roots)
        with sole_writer(run.db, wait_seconds=settings.writer_wait_seconds) as waited:
            if waited > 1:
                log.info("waited %.0f s for another run writing %s to finish", waited, run.db)
            with Store.open(run.db) as store:  # a file held by another process is refused here
                store.start_run(
                    run.run_id, flow_run_id=flow_run_id, roots=run.roots, full_rescan=full_rescan
                )
            try:
                yield run
            except BaseException as exc:
                run._ended(exc)
                raise

    def plan(self, *, full_rescan: bool, retry_failed: bool) -> Plan:
        """Merge what earlier runs staged, then compare the files under the roots with the
        database and record what that changes (moves, deletions, failures of discovery)."""
        with Store.open(self.db, prepare=False) as store:
            self.writer.merge_into(store)  # batches a run before us had to keep aside
            plan = store.plan(
                discover(self.roots, follow_symlinks=self.settings.follow_symlinks),
                roots=self.roots,
                analyzer_version=ANALYZER_VERSION,
                musicnn_version=MUSICNN_VERSION,
                musicnn_models=len(MODEL_NAMES),
                full_rescan=full_rescan,
                retry_failed=retry_failed,
            )
            store.apply_plan(plan)
            store.write_outcomes([*plan.unstorable, *plan.unlisted])
        self.account.planned(plan)
        for failure in plan.unlisted:
            log.warning("%s: %s", failure.path, failure.message)
        return plan

    def write(self, outcomes: list[AnalysisOutcome]) -> None:
        """Upsert a batch's outcomes (staged if the database is held) and count them."""
        with self.account.timed("flow.upsert"):
            self.writer.write(outcomes)
        self.account.add(outcomes)

    def finish(self, merge: Callable[[str, str, dict[str, float]], Any]) -> dict[str, Any]:
        """Close the run's row through ``merge`` (the finish-run task, retried while the
        database is held) and return the run's summary.

        If another process holds the file past the last try, the staged batches and the
        run's row stay in the staging folder, and the next run merges them first.
        """
        self.account.close()
        counts = self.account.counts
        with self.account.timed("flow.finish"):
            try:
                merge(self.db, self.run_id, counts)
            except DatabaseBusyError:
                self.writer.finish_run(self.run_id, status="completed", counts=counts)
                log.warning(
                    "%s is still held by another process: %d batch(es) and this run's row "
                    "stay in %s and are merged by the next run",
                    self.db,
                    len(self.writer.staged()),
                    self.writer.staging,
                )
            counts["staged"] = len(self.writer.staged())
        return self.account.summary(self.run_id, self.db)

    def _ended(self, exc: BaseException) -> None:
        self.account.close()
        status = "failed" if isinstance(exc, Exception) else "interrupted"
        try:
            self.writer.finish_run(
                self.run_id, status=status, counts=self.account.counts, error=error_line(exc)
            )
        except Exception as unrecorded:  # the run's own error is the one to raise
            log.error("could not record how run %s ended: %r", self.run_id, unrecorded)
