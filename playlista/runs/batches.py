"""Batches of files for the workers, a bounded window of them in flight, lost workers' batches."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from distributed import as_completed

from playlista.cluster import WORKER_LOST
from playlista.errors import TransientFailures
from playlista.records import ALL_PARTS, AnalysisOutcome, Failure, FileStat, Part

log = logging.getLogger(__name__)

MUSICNN_ONLY: tuple[Part, ...] = ("musicnn",)
# Batches per worker when there are few files: enough that none sits idle at the end.
PER_WORKER = 4

Job = tuple[list[FileStat], tuple[Part, ...]]


def make_batches(
    files: Sequence[FileStat], *, batch_size: int, workers: int
) -> list[list[FileStat]]:
    """Split the work into batches of at most ``batch_size``, largest files first.

    Batches shrink when there are few files, so that every worker gets several (a
    small library in 3 batches on 2 workers leaves one idle for a third of the run);
    taking large files first keeps a long track from finishing last alone.
    """
    size = max(1, min(batch_size, math.ceil(len(files) / (PER_WORKER * max(workers, 1)))))
    ordered = sorted(files, key=lambda f: f.size, reverse=True)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def make_jobs(
    files: Sequence[FileStat], refresh: Sequence[FileStat], *, batch_size: int, workers: int
) -> list[Job]:
    """``files`` in batches analysed in full, then ``refresh`` in batches for MusiCNN alone."""
    return [
        *((b, ALL_PARTS) for b in make_batches(files, batch_size=batch_size, workers=workers)),
        *((b, MUSICNN_ONLY) for b in make_batches(refresh, batch_size=batch_size, workers=workers)),
    ]


def in_flight(max_in_flight: int | None, workers: int) -> int:
    """Batches to keep submitted and not yet collected: ``max_in_flight``, or 2 per worker."""
    return max_in_flight or 2 * max(workers, 1)


def fan_out(
    submit: Callable[[Job], Any], jobs: Sequence[Job], *, window: int, loop: Any = None
) -> Iterator[tuple[Job, Any]]:
    """Submit ``jobs``, ``window`` at a time, and yield each with its future as it ends.

    ``submit`` returns a Prefect future of a task run on Dask (its ``wrapped_future`` is the
    Dask future); ``loop`` is the Dask client's event loop.
    """
    pending = iter(jobs)
    futures: dict[Any, tuple[Any, Job]] = {}

    def send(job: Job) -> Any:
        future = submit(job)
        futures[future.wrapped_future.key] = (future, job)
        return future.wrapped_future

    done = as_completed([send(job) for job in islice(pending, window)], loop=loop)
    for finished in done:
        future, job = futures.pop(finished.key)
        yield job, future
        if (following := next(pending, None)) is not None:
            done.add(send(following))


def outcomes_of(future: Any, batch: Sequence[FileStat]) -> list[AnalysisOutcome]:
    """A batch's outcomes; if its worker died under it, one retryable failure per file.

    Anything else the task raised is a bug, and fails the run.
    """
    try:
        return list(future.result())
    except WORKER_LOST as exc:
        log.error("batch of %d files lost with its worker: %r", len(batch), exc)
        return lost(batch, exc)


def lost(batch: Sequence[FileStat], exc: BaseException) -> list[AnalysisOutcome]:
    """One retryable ``task_failed`` failure for each file of a batch whose worker was lost."""
    now = datetime.now(UTC)
    return [
        Failure(
            path=stat.path,
            size=stat.size,
            mtime_ns=stat.mtime_ns,
            error_class="task_failed",
            message=f"{type(exc).__name__}: {exc}",
            retryable=True,
            worker="",
            failed_at=now,
        )
        for stat in batch
    ]


def set_aside_transient(
    job: Job, outcomes: Sequence[AnalysisOutcome], transient: dict[tuple[Part, ...], list[FileStat]]
) -> list[AnalysisOutcome]:
    """The outcomes to write now; files that failed transiently go to ``transient`` by parts."""
    batch, parts = job
    keep = []
    for stat, outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, Failure) and outcome.retryable:
            transient.setdefault(parts, []).append(stat)
        else:
            keep.append(outcome)
    return keep


def retried_outcomes(submitted: Sequence[tuple[Any, Sequence[FileStat]]]) -> list[AnalysisOutcome]:
    """The outcomes of retry-transient task runs, each with the files it was given: the last
    try's failures for files that failed every try, one per file if the worker was lost."""
    outcomes: list[AnalysisOutcome] = []
    for future, group in submitted:
        try:
            outcomes += future.result()
        except TransientFailures as exc:
            outcomes += exc.outcomes
        except WORKER_LOST as exc:
            outcomes += lost(group, exc)
    return outcomes
