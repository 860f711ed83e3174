"""The database's writer slot: one flow run writes a DuckDB file at a time.

Shared by the flows that write (analyze-library, generate-playlists); not a flow itself.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress

from prefect import get_client, get_run_logger
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from playlista.errors import DatabaseBusyError


def writer_limit_name(db_path: str) -> str:
    """The Prefect global concurrency limit that admits one writer to ``db_path`` at a time."""
    digest = hashlib.blake2b(os.path.realpath(db_path).encode(), digest_size=6).hexdigest()
    return f"playlista-writer-{digest}"


@contextmanager
def sole_writer(db_path: str, wait_seconds: float) -> Iterator[None]:
    """Hold the database's writer slot for the run, waiting while another run holds it.

    The slot is a global concurrency limit of 1, created on first use, so it covers every
    run that talks to the same Prefect API, whichever deployment started it. A process that
    holds the file outside Prefect (a person's SQL session, a run on another API) is
    DuckDB's own lock, which :meth:`Store.open` reports.
    """
    logger = get_run_logger()
    name = writer_limit_name(db_path)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another run created it meanwhile
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
    asked = time.perf_counter()
    with ExitStack() as stack:
        try:
            stack.enter_context(
                concurrency(
                    name, occupy=1, timeout_seconds=wait_seconds, lease_duration=60, strict=True
                )
            )
        except TimeoutError as exc:
            logger.error("another run held %s for over %.0f s", name, wait_seconds)
            raise DatabaseBusyError(db_path, exc) from exc
        if (waited := time.perf_counter() - asked) > 1:
            logger.info("waited %.0f s for another run writing %s to finish", waited, db_path)
        yield
