"""Prefect tasks that analyse batches of files on Dask workers."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext

from playlista.analysis import analyze_file
from playlista.errors import TransientFailures
from playlista.records import AnalysisOutcome, Failure, FileStat, Part
from playlista.settings import AnalysisParams
from playlista.worker import audio_libraries
from tasks.retry import raised

# What each retry-transient run has settled so far, by task run id. Prefect runs a task's
# retries in the same process with the same arguments, so a retry analyses only the files
# that still failed; if the worker dies, the entry goes with it and the task starts over.
_SETTLED: dict[Any, dict[str, AnalysisOutcome]] = {}


def _analyze(
    files: list[FileStat], parts: tuple[Part, ...], params: AnalysisParams
) -> list[AnalysisOutcome]:
    libraries = audio_libraries()
    worker = libraries.worker_name
    outcomes = [
        analyze_file(
            f.path,
            worker=worker,
            params=params,
            seen=f,
            taggers=libraries.taggers,
            parts=parts,
            decoder=libraries.decoder,
        )
        for f in files
    ]
    failed = sum(isinstance(o, Failure) for o in outcomes)
    get_run_logger().info("worker %s: %d analysed, %d failed", worker, len(files) - failed, failed)
    return outcomes


# The first wait before a transient failure is tried again; each later wait doubles.
TRANSIENT_BACKOFF_SECONDS = 2.0


@task(name="analyze-batch", cache_policy=NO_CACHE, persist_result=False)
def analyze_batch(
    files: list[FileStat], parts: tuple[Part, ...], params: AnalysisParams
) -> list[AnalysisOutcome]:
    """Analyse a batch; each file's failure is returned as a record, never raised."""
    return _analyze(files, parts, params)


@task(
    name="retry-transient",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_jitter_factor=0.5,
    retry_condition_fn=raised(TransientFailures),
)
def retry_transient(
    files: list[FileStat], parts: tuple[Part, ...], params: AnalysisParams
) -> list[AnalysisOutcome]:
    """Analyse files that failed transiently; raise, and so be retried, while any still does.

    Each try analyses only the files no try has settled yet. The flow gives the task its
    number of retries (``Settings.transient_retries``).
    """
    context = TaskRunContext.get()
    assert context is not None and context.task_run is not None
    run = context.task_run
    settled = _SETTLED.setdefault(run.id, {})
    try:
        todo = [f for f in files if f.path not in settled]
        failing: dict[str, AnalysisOutcome] = {}
        for outcome in _analyze(todo, parts, params):
            transient = isinstance(outcome, Failure) and outcome.retryable
            (failing if transient else settled)[outcome.path] = outcome
        outcomes = [settled.get(f.path) or failing[f.path] for f in files]
        if failing:
            raise TransientFailures(outcomes)
    except TransientFailures:
        if run.run_count > context.task.retries:  # the last try
            del _SETTLED[run.id]
        raise
    except BaseException:
        del _SETTLED[run.id]
        raise
    del _SETTLED[run.id]
    return outcomes
