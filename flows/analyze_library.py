"""The analyze-library flow: discover, plan against DuckDB, analyse on Dask, upsert in batches."""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from itertools import islice, pairwise
from typing import Any

from distributed import as_completed
from prefect import flow, get_client, get_run_logger, runtime
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect_dask import DaskTaskRunner
from rich.progress import Progress

from playlista.analysis import ANALYZER_VERSION, MUSICNN_VERSION
from playlista.cluster import analysis_cluster
from playlista.errors import DatabaseBusyError, TransientFailures
from playlista.models.frontend import MODEL_NAMES
from playlista.records import ALL_PARTS, AnalysisOutcome, Failure, FileStat, Part, TrackResult
from playlista.scan import discover
from playlista.settings import Settings
from playlista.store import Store
from playlista.store.lock import sole_writer
from playlista.store.staging import BatchWriter
from tasks.analyze import analyze_batch, retry_transient
from tasks.store import finish_run

MUSICNN_ONLY: tuple[Part, ...] = ("musicnn",)


@flow(name="analyze-library", log_prints=False)
def analyze_library(
    roots: list[str],
    db: str | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    min_workers: int | None = None,
    max_workers: int | None = None,
    dask_address: str | None = None,
    full_rescan: bool = False,
    retry_failed: bool = False,
    follow_symlinks: bool = False,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Analyse every new or changed audio file under ``roots`` into the DuckDB file ``db``.

    Unchanged files are skipped without being opened, moved files keep their analysis,
    and files gone from the roots are marked deleted. Analysis runs in batches on a Dask
    cluster: the one at ``dask_address``, or a local one with ``workers`` processes (or
    scaling between ``min_workers`` and ``max_workers`` with the load). Runs on one database
    take turns: a second run waits for the first to finish.
    """
    settings = Settings()
    logger = get_run_logger()
    # Prefect hands playlista's loggers its handlers but not a level: waits for the writer
    # lock, migrations and merges of staged batches are worth a line in the run's log.
    logging.getLogger("playlista").setLevel(logging.INFO)
    started = time.perf_counter()
    roots = [os.path.abspath(r) for r in roots]
    db_path = str(db or settings.db)
    run_id = str(uuid.uuid4())
    with sole_writer(db_path, wait_seconds=settings.writer_wait_seconds) as waited:
        if waited > 1:
            logger.info("waited %.0f s for another run writing %s to finish", waited, db_path)
        writer = BatchWriter(db_path)
        with Store.open(db_path) as store:  # a file held by another process is refused here
            writer.merge_into(store)  # batches a run before us had to keep aside
            store.start_run(
                run_id, flow_run_id=runtime.flow_run.id, roots=roots, full_rescan=full_rescan
            )
            plan = store.plan(
                discover(roots, follow_symlinks=follow_symlinks),
                roots=roots,
                analyzer_version=ANALYZER_VERSION,
                musicnn_version=MUSICNN_VERSION,
                musicnn_models=len(MODEL_NAMES),
                full_rescan=full_rescan,
                retry_failed=retry_failed,
            )
            store.apply_plan(plan)
            store.write_outcomes(plan.unstorable)
        counts: dict[str, float] = dict(plan.counts)
        timings: dict[str, float] = {"flow.plan": time.perf_counter() - started}
        logger.info("planned %s in %.1f s: %s", db_path, timings["flow.plan"], counts)
        totals = {"analyzed": 0, "failed": len(plan.unstorable), "audio_seconds": 0.0}
        spans: dict[str, list[tuple[float, float]]] = {}
        if plan.to_analyze or plan.to_refresh:
            for outcomes in _analyze_on_dask(
                plan.to_analyze,
                plan.to_refresh,
                settings=settings,
                roots=roots,
                dask_address=dask_address or settings.dask_address,
                workers=workers or settings.workers,
                min_workers=min_workers or settings.min_workers,
                max_workers=max_workers or settings.max_workers,
                batch_size=batch_size or settings.batch_size,
                show_progress=show_progress,
                timings=timings,
            ):
                clock = time.perf_counter()
                writer.write(outcomes)
                _add(timings, "flow.upsert", time.perf_counter() - clock)
                for outcome in outcomes:
                    if not isinstance(outcome, Failure):
                        for stage, seconds in outcome.stage_seconds:
                            _add(timings, stage, seconds)
                        end = outcome.analyzed_at.timestamp()
                        spans.setdefault(outcome.worker, []).append((end - outcome.elapsed_s, end))
                totals["analyzed"] += sum(isinstance(o, TrackResult) for o in outcomes)
                totals["failed"] += sum(isinstance(o, Failure) for o in outcomes)
                totals["audio_seconds"] += sum(
                    o.decoded_seconds for o in outcomes if isinstance(o, TrackResult)
                )
            timings.update(_worker_idle(spans, timings))
        counts.update(totals, wall_seconds=time.perf_counter() - started)
        clock = time.perf_counter()
        counts["staged"] = _finish(writer, run_id, counts, settings)
        timings["flow.finish"] = time.perf_counter() - clock
    summary = {"run_id": run_id, "db": db_path, **counts, "timings": timings}
    _report(summary)
    return summary


def _analyze_on_dask(
    files: Sequence[FileStat],
    refresh: Sequence[FileStat],
    *,
    settings: Settings,
    roots: list[str],
    dask_address: str | None,
    workers: int | None,
    min_workers: int | None,
    max_workers: int | None,
    batch_size: int,
    show_progress: bool,
    timings: dict[str, float],
) -> Iterator[list[AnalysisOutcome]]:
    """Yield each finished batch's outcomes, keeping a bounded number of batches in flight.

    ``files`` are analysed in full, ``refresh`` by MusiCNN alone. ``timings`` receives the
    seconds the cluster took to start (``flow.cluster_start``), the workers it had
    (``flow.workers``), the number of batches (``flow.batches``) and the seconds from the
    first batch sent to the last one back (``flow.analysis``).
    """
    logger = get_run_logger()
    api_url = str(get_client(sync_client=True).api_url)
    clock = time.perf_counter()
    with analysis_cluster(
        address=dask_address,
        workers=workers,
        min_workers=min_workers,
        max_workers=max_workers,
        host=settings.host,
        api_url=api_url,
        roots=roots,
    ) as cluster:
        n = cluster.workers
        timings["flow.cluster_start"] = time.perf_counter() - clock
        timings["flow.workers"] = n
        logger.info(
            "Dask cluster %s with %d worker(s); dashboard %s",
            cluster.address,
            cluster.workers,
            cluster.dashboard,
        )
        window = settings.max_in_flight or 2 * max(cluster.workers, 1)
        jobs = [
            *((b, ALL_PARTS) for b in make_batches(files, batch_size=batch_size, workers=n)),
            *((b, MUSICNN_ONLY) for b in make_batches(refresh, batch_size=batch_size, workers=n)),
        ]
        total = len(files) + len(refresh)
        timings["flow.batches"] = len(jobs)
        logger.info("%d files in %d batches, %d in flight", total, len(jobs), window)
        params = {
            "min_seconds": settings.min_audio_seconds,
            "max_patches": settings.musicnn_max_patches,
            "decode_timeout": settings.decode_timeout_seconds,
            "max_seconds": settings.analysis_max_seconds,
        }
        progress = Progress(transient=False) if show_progress else nullcontext()
        artifact: Any = create_progress_artifact(
            0.0, key="analyze-library-progress", description=f"{total} files to analyse"
        )
        transient: list[FileStat] = []
        finished_files = 0
        with DaskTaskRunner(address=cluster.address) as runner, progress as bar:
            bar_task = bar.add_task("analysing", total=total) if bar else None
            clock = time.perf_counter()
            timings["flow.analysis_started_at"] = time.time()
            for batch, outcomes in _fan_out(runner, jobs, params, window=window):
                transient += [
                    s
                    for s, o in zip(batch, outcomes, strict=True)
                    if isinstance(o, Failure) and o.retryable
                ]
                yield [o for o in outcomes if not (isinstance(o, Failure) and o.retryable)]
                finished_files += len(batch)
                update_progress_artifact(artifact, 100.0 * finished_files / total)
                if bar and bar_task is not None:
                    bar.advance(bar_task, len(batch))
            if transient:
                yield _retry_transient(runner, transient, params, settings, logger)
            timings["flow.analysis"] = time.perf_counter() - clock


def _fan_out(
    runner: DaskTaskRunner,
    jobs: Sequence[tuple[list[FileStat], tuple[Part, ...]]],
    params: dict[str, Any],
    *,
    window: int,
) -> Iterator[tuple[list[FileStat], list[AnalysisOutcome]]]:
    """Submit ``jobs`` as analyze-batch tasks, ``window`` at a time; yield each as it ends."""
    logger = get_run_logger()
    pending = iter(jobs)
    futures: dict[Any, tuple[Any, list[FileStat]]] = {}

    def submit(batch: list[FileStat], parts: tuple[Part, ...]) -> Any:
        fut = runner.submit(analyze_batch, {"files": batch, "parts": parts, **params})
        futures[fut.wrapped_future.key] = (fut, batch)
        return fut.wrapped_future

    done = as_completed([submit(*job) for job in islice(pending, window)], loop=runner.client.loop)
    for finished in done:
        fut, batch = futures.pop(finished.key)
        yield batch, _collect(fut, batch, logger)
        if (job := next(pending, None)) is not None:
            done.add(submit(*job))


def make_batches(
    files: Sequence[FileStat], *, batch_size: int, workers: int
) -> list[list[FileStat]]:
    """Split the work into batches of at most ``batch_size``, largest files first.

    Batches shrink when there are few files, so that every worker gets several (a
    small library in 3 batches on 2 workers leaves one idle for a third of the run);
    taking large files first keeps a long track from finishing last alone.
    """
    per_worker = 4
    size = max(1, min(batch_size, math.ceil(len(files) / (per_worker * max(workers, 1)))))
    ordered = sorted(files, key=lambda f: f.size, reverse=True)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _collect(fut: Any, batch: list[FileStat], logger: Any) -> list[AnalysisOutcome]:
    """A batch's outcomes; if the task itself failed, one retryable failure per file."""
    try:
        return list(fut.result())
    except Exception as exc:  # a dead worker or a bug: record it, keep the run going
        logger.error("batch of %d files failed: %r", len(batch), exc)
        return [_batch_failure(s, exc) for s in batch]


def _retry_transient(
    runner: Any, files: list[FileStat], params: dict[str, Any], settings: Settings, logger: Any
) -> list[AnalysisOutcome]:
    logger.info("retrying %d file(s) that failed transiently", len(files))
    task = retry_transient.with_options(retries=settings.transient_retries)
    fut = runner.submit(task, {"files": files, **params})
    try:
        return list(fut.result())
    except TransientFailures as exc:
        return exc.outcomes
    except Exception as exc:
        return [_batch_failure(s, exc) for s in files]


def _batch_failure(stat: FileStat, exc: BaseException) -> Failure:
    return Failure(
        path=stat.path,
        size=stat.size,
        mtime_ns=stat.mtime_ns,
        error_class="task_failed",
        message=f"{type(exc).__name__}: {exc}",
        retryable=True,
        worker="",
        failed_at=datetime.now(UTC),
    )


def _finish(writer: BatchWriter, run_id: str, counts: dict[str, float], settings: Settings) -> int:
    """Merge what was staged and close the run's row; return the batches still staged.

    The merge is retried with backoff while another process holds the file; if it holds
    it past the last try, the batches stay staged and the next run merges them first.
    """
    task = finish_run.with_options(retries=settings.write_retries)
    try:
        task(writer.db_path, run_id, counts)
    except DatabaseBusyError:
        get_run_logger().warning(
            "%s is still held by another process: %d batch(es) stay in %s and are merged "
            "by the next run",
            writer.db_path,
            len(writer.staged()),
            writer.staging,
        )
    return len(writer.staged())


def _add(timings: dict[str, float], stage: str, seconds: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + seconds


def _worker_idle(
    spans: dict[str, list[tuple[float, float]]], timings: dict[str, float]
) -> dict[str, float]:
    """Seconds the workers spent outside ``analyze_file`` while batches were in flight.

    ``spans`` holds each worker's (start, end) wall-clock times of the files it analysed.
    ``flow.worker_head`` is the time before each worker's first file, ``flow.worker_between``
    the gaps between its files (Prefect's task-run bookkeeping and Dask's scheduling of the
    next batch) and ``flow.worker_tail`` the time after its last file, while others finish.
    """
    start = timings.pop("flow.analysis_started_at", None)
    if start is None or not spans:
        return {}
    end = start + timings["flow.analysis"]
    head = between = 0.0
    tail = end - start  # and so for each worker that never got a file
    tail *= max(0.0, timings.get("flow.workers", 0) - len(spans))
    for intervals in spans.values():
        intervals.sort()
        head += max(0.0, intervals[0][0] - start)
        tail += max(0.0, end - max(e for _, e in intervals))
        between += sum(max(0.0, b[0] - a[1]) for a, b in pairwise(intervals))
    return {"flow.worker_head": head, "flow.worker_between": between, "flow.worker_tail": tail}


def _report(summary: dict[str, Any]) -> None:
    logger = get_run_logger()
    hours = summary["audio_seconds"] / 3600
    wall = summary["wall_seconds"]
    rate = summary["analyzed"] / wall if wall else 0.0
    logger.info(
        "done: %d seen, %d new, %d changed, %d unchanged, %d moved, %d deleted; "
        "%d analysed, %d failed; %.2f h of audio in %.1f s (%.2f tracks/s)",
        summary["files_seen"],
        summary["new"],
        summary["changed"],
        summary["unchanged"],
        summary["moved"],
        summary["deleted"],
        summary["analyzed"],
        summary["failed"],
        hours,
        wall,
        rate,
    )
    rows = "\n".join(
        f"| {k} | {v:.2f} |" if isinstance(v, float) else f"| {k} | {v} |"
        for k, v in summary.items()
        if k != "timings"
    )
    stages = "\n".join(f"| {k} | {v:.2f} |" for k, v in summary["timings"].items())
    create_markdown_artifact(
        key="analyze-library-summary",
        markdown=f"# Library analysis\n\n| what | value |\n|---|---|\n{rows}\n\n"
        f"Audio analysed: {hours:.2f} h; throughput {rate:.2f} tracks/s.\n\n"
        f"## Seconds by stage\n\nWorker stages are summed over workers.\n\n"
        f"| stage | seconds |\n|---|---|\n{stages}\n",
        description="Counts, audio hours, wall time and throughput of this run",
    )
