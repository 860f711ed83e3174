"""Prefect tasks that analyse batches of files on Dask workers."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from playlista.analysis import analyze_file
from playlista.errors import TransientFailures
from playlista.records import ALL_PARTS, AnalysisOutcome, Failure, FileStat, Part
from playlista.worker import audio_libraries
from tasks.retry import raised


def _analyze(
    files: list[FileStat],
    min_seconds: float,
    parts: tuple[Part, ...],
    max_patches: int,
    decode_timeout: float,
    max_seconds: float,
) -> list[AnalysisOutcome]:
    libraries = audio_libraries()
    worker = libraries.worker_name
    outcomes = [
        analyze_file(
            f.path,
            worker=worker,
            min_seconds=min_seconds,
            stat=f,
            taggers=libraries.taggers,
            max_patches=max_patches,
            parts=parts,
            decoder=libraries.decoder,
            decode_timeout=decode_timeout,
            max_seconds=max_seconds,
        )
        for f in files
    ]
    failed = sum(isinstance(o, Failure) for o in outcomes)
    get_run_logger().info("worker %s: %d analysed, %d failed", worker, len(files) - failed, failed)
    return outcomes


@task(name="analyze-batch", cache_policy=NO_CACHE, persist_result=False)
def analyze_batch(
    files: list[FileStat],
    min_seconds: float = 1.0,
    parts: tuple[Part, ...] = ALL_PARTS,
    max_patches: int = 0,
    decode_timeout: float = 300.0,
    max_seconds: float = 600.0,
) -> list[AnalysisOutcome]:
    """Analyse a batch; each file's failure is returned as a record, never raised."""
    return _analyze(files, min_seconds, parts, max_patches, decode_timeout, max_seconds)


@task(
    name="retry-transient",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=raised(TransientFailures),
)
def retry_transient(
    files: list[FileStat],
    min_seconds: float = 1.0,
    parts: tuple[Part, ...] = ALL_PARTS,
    max_patches: int = 0,
    decode_timeout: float = 300.0,
    max_seconds: float = 600.0,
) -> list[AnalysisOutcome]:
    """Analyse files that failed transiently; raise, and so be retried, while any still does."""
    outcomes = _analyze(files, min_seconds, parts, max_patches, decode_timeout, max_seconds)
    if any(isinstance(o, Failure) and o.retryable for o in outcomes):
        raise TransientFailures(outcomes)
    return outcomes
