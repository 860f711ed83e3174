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
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.states import Crashed
from prefect_dask import DaskTaskRunner
from rich.progress import Progress

from playlista.analysis import ANALYZER_VERSION, MUSICNN_VERSION
from playlista.cluster import WORKER_LOST, analysis_cluster
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
    db_path = os.path.abspath(db or settings.db)
    run_id = str(uuid.uuid4())
    counts: dict[str, float] = {}
    with sole_writer(db_path, wait_seconds=settings.writer_wait_seconds) as waited:
        if waited > 1:
            logger.info("waited %.0f s for another run writing %s to finish", waited, db_path)
        writer = BatchWriter(db_path)
        with Store.open(db_path) as store:  # a file held by another process is refused here
            store.start_run(
                run_id, flow_run_id=runtime.flow_run.id, roots=roots, full_rescan=full_rescan
            )
        try:
            timings = _run(
                writer,
                counts,
                roots=roots,
                started=started,
                settings=settings,
                full_rescan=full_rescan,
                retry_failed=retry_failed,
                follow_symlinks=follow_symlinks,
                show_progress=show_progress,
                cluster={
                    "dask_address": dask_address or settings.dask_address,
                    "workers": workers or settings.workers,
                    "min_workers": min_workers or settings.min_workers,
                    "max_workers": max_workers or settings.max_workers,
                    "batch_size": batch_size or settings.batch_size,
                },
            )
        except BaseException as exc:
            counts["wall_seconds"] = time.perf_counter() - started
            status = "failed" if isinstance(exc, Exception) else "interrupted"
            try:
                writer.finish_run(run_id, status=status, counts=counts, error=_error_line(exc))
            except Exception as unrecorded:  # the run's own error is the one to raise
                logger.error("could not record how run %s ended: %r", run_id, unrecorded)
            raise
        clock = time.perf_counter()
        counts["staged"] = _finish(writer, run_id, counts, settings)
        timings["flow.finish"] = time.perf_counter() - clock
    summary = {"run_id": run_id, "db": db_path, **counts, "timings": timings}
    _report(summary)
    return summary


def _run(
    writer: BatchWriter,
    counts: dict[str, float],
    *,
    roots: list[str],
    started: float,
    settings: Settings,
    full_rescan: bool,
    retry_failed: bool,
    follow_symlinks: bool,
    show_progress: bool,
    cluster: dict[str, Any],
) -> dict[str, float]:
    """Merge what earlier runs staged, plan, analyse and write; fill ``counts`` as it goes.

    ``cluster`` holds :func:`_analyze_on_dask`'s cluster options. Returns the seconds by stage.
    """
    logger = get_run_logger()
    with Store.open(writer.db_path, prepare=False) as store:
        writer.merge_into(store)  # batches a run before us had to keep aside
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
        store.write_outcomes([*plan.unstorable, *plan.unlisted])
    counts.update(plan.counts)
    timings: dict[str, float] = {"flow.plan": time.perf_counter() - started}
    logger.info("planned %s in %.1f s: %s", writer.db_path, timings["flow.plan"], plan.counts)
    for failure in plan.unlisted:
        logger.warning("%s: %s", failure.path, failure.message)
    counts.update(analyzed=0, failed=len(plan.unstorable), audio_seconds=0.0)
    spans: dict[str, list[tuple[float, float]]] = {}
    if plan.to_analyze or plan.to_refresh:
        for outcomes in _analyze_on_dask(
            plan.to_analyze,
            plan.to_refresh,
            settings=settings,
            roots=roots,
            show_progress=show_progress,
            timings=timings,
            **cluster,
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
            counts["analyzed"] += sum(isinstance(o, TrackResult) for o in outcomes)
            counts["failed"] += sum(isinstance(o, Failure) for o in outcomes)
            counts["audio_seconds"] += sum(
                o.decoded_seconds for o in outcomes if isinstance(o, TrackResult)
            )
        timings.update(_worker_idle(spans, timings))
    counts["wall_seconds"] = time.perf_counter() - started
    return timings


def _error_line(exc: BaseException) -> str:
    """What ended a run, for its row: the exception's class and the first line of its text."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


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
    seconds the cluster took to start (``flow.cluster_start``), the workers it may have
    (``flow.workers``) and had at the start (``flow.workers_started``), the number of
    batches (``flow.batches``) and the seconds from the first batch sent to the last one
    back (``flow.analysis``).
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
        timings["flow.workers_started"] = cluster.started
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
        transient: dict[tuple[Part, ...], list[FileStat]] = {}
        finished_files = 0
        try:
            with DaskTaskRunner(address=cluster.address) as runner, progress as bar:
                bar_task = bar.add_task("analysing", total=total) if bar else None
                clock = time.perf_counter()
                timings["flow.analysis_started_at"] = time.time()
                for (batch, parts), outcomes in _fan_out(runner, jobs, params, window=window):
                    transient.setdefault(parts, []).extend(
                        s
                        for s, o in zip(batch, outcomes, strict=True)
                        if isinstance(o, Failure) and o.retryable
                    )
                    yield [o for o in outcomes if not (isinstance(o, Failure) and o.retryable)]
                    finished_files += len(batch)
                    update_progress_artifact(artifact, 100.0 * finished_files / total)
                    if bar and bar_task is not None:
                        bar.advance(bar_task, len(batch))
                if any(transient.values()):
                    yield _retry_transient(runner, transient, params, settings)
                timings["flow.analysis"] = time.perf_counter() - clock
        finally:
            _settle_task_runs(runtime.flow_run.id)


Job = tuple[list[FileStat], tuple[Part, ...]]


def _fan_out(
    runner: DaskTaskRunner,
    jobs: Sequence[Job],
    params: dict[str, Any],
    *,
    window: int,
) -> Iterator[tuple[Job, list[AnalysisOutcome]]]:
    """Submit ``jobs`` as analyze-batch tasks, ``window`` at a time; yield each as it ends."""
    logger = get_run_logger()
    pending = iter(jobs)
    futures: dict[Any, tuple[Any, Job]] = {}

    def submit(batch: list[FileStat], parts: tuple[Part, ...]) -> Any:
        fut = runner.submit(analyze_batch, {"files": batch, "parts": parts, **params})
        futures[fut.wrapped_future.key] = (fut, (batch, parts))
        return fut.wrapped_future

    done = as_completed([submit(*job) for job in islice(pending, window)], loop=runner.client.loop)
    for finished in done:
        fut, job = futures.pop(finished.key)
        yield job, _collect(fut, job[0], logger)
        if (following := next(pending, None)) is not None:
            done.add(submit(*following))


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
    """A batch's outcomes; if its worker died under it, one retryable failure per file.

    Anything else the task raised is a bug, and fails the run.
    """
    try:
        return list(fut.result())
    except WORKER_LOST as exc:
        logger.error("batch of %d files lost with its worker: %r", len(batch), exc)
        return [_batch_failure(s, exc) for s in batch]


def _retry_transient(
    runner: Any,
    files: dict[tuple[Part, ...], list[FileStat]],
    params: dict[str, Any],
    settings: Settings,
) -> list[AnalysisOutcome]:
    """Analyse again, in one retry-transient task per set of parts, the files that failed
    transiently; each file is retried for what it was to have computed."""
    get_run_logger().info(
        "retrying %d file(s) that failed transiently", sum(map(len, files.values()))
    )
    task = retry_transient.with_options(retries=settings.transient_retries)
    submitted = [
        (runner.submit(task, {"files": group, "parts": parts, **params}), group)
        for parts, group in files.items()
        if group
    ]
    outcomes: list[AnalysisOutcome] = []
    for fut, group in submitted:
        try:
            outcomes += fut.result()
        except TransientFailures as exc:
            outcomes += exc.outcomes
        except WORKER_LOST as exc:
            outcomes += [_batch_failure(s, exc) for s in group]
    return outcomes


def _settle_task_runs(flow_run_id: Any) -> None:
    """Give every task run of this flow run that has not ended a final state: Crashed.

    Called once its batches have all ended (or the run has failed), when none can still be
    running; one whose Dask worker died is otherwise left RUNNING (PrefectHQ/prefect#21638).
    """
    unfinished = TaskRunFilter(
        state=TaskRunFilterState(
            type=TaskRunFilterStateType(
                any_=[StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED]
            )
        )
    )
    this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        stuck = client.read_task_runs(flow_run_filter=this_run, task_run_filter=unfinished)
        for task_run in stuck:
            client.set_task_run_state(
                task_run.id,
                Crashed(message="its Dask worker died or the run ended before it could report"),
                force=True,
            )
    if stuck:
        get_run_logger().warning(
            "%d task run(s) left unfinished by lost workers marked Crashed: %s",
            len(stuck),
            ", ".join(t.name for t in stuck),
        )


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
    it past the last try, the batches and the run's row stay staged and the next run merges
    them first.
    """
    task = finish_run.with_options(retries=settings.write_retries)
    try:
        task(writer.db_path, run_id, counts)
    except DatabaseBusyError:
        writer.finish_run(run_id, status="completed", counts=counts)
        get_run_logger().warning(
            "%s is still held by another process: %d batch(es) and this run's row stay in "
            "%s and are merged by the next run",
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
