"""The analyze-library flow: discover, plan against DuckDB, analyse on Dask, upsert in batches."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prefect import flow, get_client, get_run_logger, runtime
from prefect.artifacts import create_markdown_artifact
from prefect_dask import DaskTaskRunner

from playlista.cluster import cluster_for
from playlista.records import AnalysisOutcome, FileStat, Part
from playlista.runs.batches import (
    Job,
    fan_out,
    in_flight,
    make_jobs,
    outcomes_of,
    retried_outcomes,
    set_aside_transient,
)
from playlista.runs.progress import RunProgress
from playlista.runs.run import LibraryRun
from playlista.runs.summary import summary_line, summary_markdown
from playlista.runs.task_runs import settle_task_runs
from playlista.settings import AnalysisParams, Settings
from playlista.store.plan import Plan
from tasks.analyze import TRANSIENT_BACKOFF_SECONDS, analyze_batch, retry_transient
from tasks.retry import with_retries
from tasks.store import BUSY_BACKOFF_SECONDS, finish_run


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
    follow_symlinks: bool | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Analyse every new or changed audio file under ``roots`` into the DuckDB file ``db``.

    Unchanged files are skipped without being opened, moved files keep their analysis,
    and files gone from the roots are marked deleted. Analysis runs in batches on a Dask
    cluster: the one at ``dask_address``, or a local one with ``workers`` processes (or
    scaling between ``min_workers`` and ``max_workers`` with the load). Runs on one database
    take turns: a second run waits for the first to finish. Options left out (None) are
    the settings' (``PLAYLISTA_*``).
    """
    settings = Settings().with_options(
        db=db,
        batch_size=batch_size,
        workers=workers,
        min_workers=min_workers,
        max_workers=max_workers,
        dask_address=dask_address,
        follow_symlinks=follow_symlinks,
    )
    # Prefect hands playlista's loggers its handlers but not a level: waits for the writer
    # lock, migrations and merges of staged batches are worth a line in the run's log.
    logging.getLogger("playlista").setLevel(logging.INFO)
    flow_run_id = runtime.flow_run.id
    with LibraryRun.begin(settings, roots, flow_run_id=flow_run_id, full_rescan=full_rescan) as run:
        plan = run.plan(full_rescan=full_rescan, retry_failed=retry_failed)
        get_run_logger().info("planned %s: %s", run.db, plan.counts)
        for outcomes in analyze_on_dask(plan, run, show_progress=show_progress):
            run.write(outcomes)
        summary = run.finish(
            with_retries(finish_run, settings.write_retries, backoff_seconds=BUSY_BACKOFF_SECONDS)
        )
    get_run_logger().info(summary_line(summary))
    create_markdown_artifact(
        key="analyze-library-summary",
        markdown=summary_markdown(summary),
        description="Counts, audio hours, wall time and throughput of this run",
    )
    return summary


def analyze_on_dask(
    plan: Plan, run: LibraryRun, *, show_progress: bool
) -> Iterator[list[AnalysisOutcome]]:
    """Yield each finished batch's outcomes, then those of the transient failures' retries."""
    if not (plan.to_analyze or plan.to_refresh):
        return
    settings, account = run.settings, run.account
    api_url = str(get_client(sync_client=True).api_url)
    with cluster_for(settings, api_url=api_url, roots=run.roots) as cluster:
        account.cluster(cluster)
        get_run_logger().info(
            "Dask cluster %s with %d worker(s); dashboard %s",
            cluster.address,
            cluster.workers,
            cluster.dashboard,
        )
        jobs = make_jobs(
            plan.to_analyze,
            plan.to_refresh,
            batch_size=settings.batch_size,
            workers=cluster.workers,
        )
        params = AnalysisParams.of(settings)
        transient: dict[tuple[Part, ...], list[FileStat]] = {}
        try:
            with (
                DaskTaskRunner(address=cluster.address) as runner,
                RunProgress.of(jobs, show=show_progress) as progress,
                account.analysis(batches=len(jobs)),
            ):

                def submit(job: Job) -> Any:
                    files, parts = job
                    return runner.submit(
                        analyze_batch, {"files": files, "parts": parts, "params": params}
                    )

                window = in_flight(settings.max_in_flight, cluster.workers)
                for job, future in fan_out(submit, jobs, window=window, loop=runner.client.loop):
                    yield set_aside_transient(job, outcomes_of(future, job[0]), transient)
                    progress.advance(job)
                if transient:
                    get_run_logger().info("retrying the files that failed transiently")
                    task = with_retries(
                        retry_transient,
                        settings.transient_retries,
                        backoff_seconds=TRANSIENT_BACKOFF_SECONDS,
                    )
                    submitted = [
                        (runner.submit(task, {"files": group, "parts": p, "params": params}), group)
                        for p, group in transient.items()
                    ]
                    yield retried_outcomes(submitted)
        finally:
            settle_task_runs(flow_run_id=runtime.flow_run.id)
