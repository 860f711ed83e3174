"""Prefect tasks that run in the flow process, the database's single writer."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from playlista.errors import DatabaseBusyError
from playlista.store import Store
from playlista.store.staging import BatchWriter
from tasks.retry import raised

# The first wait before merging again into a database another process holds; it doubles.
BUSY_BACKOFF_SECONDS = 1.0


@task(
    name="finish-run",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_jitter_factor=0.5,
    retry_condition_fn=raised(DatabaseBusyError),
)
def finish_run(db: str, run_id: str, counts: dict[str, float]) -> int:
    """Merge the batches staged while the database was held, then close the run's row."""
    with Store.open(db, prepare=False) as store:
        merged = BatchWriter(db).merge_into(store)
        store.finish_run(run_id, status="completed", counts=counts)
    return merged
