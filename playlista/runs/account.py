"""What a run did: its counts, the seconds by stage, and where the workers' time went."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from playlista.cluster import ClusterInfo
from playlista.records import AnalysisOutcome, Failure, TrackResult
from playlista.store.plan import Plan

Span = tuple[float, float]


@dataclass
class RunAccount:
    """Counts and timings of one run, kept as it goes, for its ``runs`` row and its summary.

    ``counts`` starts with the plan's (files seen, new, changed ...) and adds ``analyzed``,
    ``failed``, ``audio_seconds`` and ``wall_seconds``. ``timings`` holds the seconds of the
    flow's own stages (``flow.*``) and, summed over files, of each analysis stage on the
    workers.
    """

    started: float = field(default_factory=time.perf_counter)
    counts: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # Each worker's (start, end) wall-clock times of the files it analysed.
    spans: dict[str, list[Span]] = field(default_factory=dict)
    _analysis_started_at: float | None = None

    def planned(self, plan: Plan) -> None:
        self.counts.update(plan.counts)
        self.counts.update(analyzed=0, failed=len(plan.unstorable), audio_seconds=0.0)
        self.timings["flow.plan"] = time.perf_counter() - self.started

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the seconds of the ``with`` block to ``stage``."""
        clock = time.perf_counter()
        try:
            yield
        finally:
            self.add_seconds(stage, time.perf_counter() - clock)

    def add_seconds(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    def cluster(self, cluster: ClusterInfo) -> None:
        """The cluster the run's batches go to: its start, the workers it may have and had."""
        self.timings["flow.cluster_start"] = cluster.start_seconds
        self.timings["flow.workers"] = cluster.workers
        self.timings["flow.workers_started"] = cluster.started

    @contextmanager
    def analysis(self, batches: int) -> Iterator[None]:
        """The ``with`` block sends ``batches`` and collects them: ``flow.analysis`` seconds."""
        self.timings["flow.batches"] = batches
        self._analysis_started_at = time.time()
        with self.timed("flow.analysis"):
            yield

    def add(self, outcomes: Sequence[AnalysisOutcome]) -> None:
        """Count a written batch's outcomes and add their stage timings and spans."""
        for outcome in outcomes:
            if isinstance(outcome, Failure):
                self.counts["failed"] += 1
                continue
            for stage, seconds in outcome.stage_seconds:
                self.add_seconds(stage, seconds)
            end = outcome.analyzed_at.timestamp()
            self.spans.setdefault(outcome.worker, []).append((end - outcome.elapsed_s, end))
            if isinstance(outcome, TrackResult):
                self.counts["analyzed"] += 1
                self.counts["audio_seconds"] += outcome.decoded_seconds

    def close(self) -> None:
        """The run's analysis is over: its wall time, and the workers' time outside files."""
        self.counts["wall_seconds"] = time.perf_counter() - self.started
        if self._analysis_started_at is not None and "flow.analysis" in self.timings:
            self.timings.update(
                worker_idle(
                    self.spans,
                    start=self._analysis_started_at,
                    seconds=self.timings["flow.analysis"],
                    workers=int(self.timings.get("flow.workers", 0)),
                )
            )

    def summary(self, run_id: str, db: str) -> dict[str, Any]:
        return {"run_id": run_id, "db": db, **self.counts, "timings": dict(self.timings)}


def worker_idle(
    spans: dict[str, list[Span]], *, start: float, seconds: float, workers: int
) -> dict[str, float]:
    """Seconds the workers spent outside ``analyze_file`` while batches were in flight.

    ``spans`` holds each worker's (start, end) wall-clock times of the files it analysed;
    the batches were in flight for ``seconds`` from ``start`` on ``workers`` workers.
    ``flow.worker_head`` is the time before each worker's first file, ``flow.worker_between``
    the gaps between its files (Prefect's task-run bookkeeping and Dask's scheduling of the
    next batch) and ``flow.worker_tail`` the time after its last file, while others finish.
    """
    if not spans:
        return {}
    end = start + seconds
    head = between = 0.0
    tail = seconds * max(0, workers - len(spans))  # each worker that never got a file
    for intervals in spans.values():
        ordered = sorted(intervals)
        head += max(0.0, ordered[0][0] - start)
        tail += max(0.0, end - max(e for _, e in ordered))
        between += sum(max(0.0, b[0] - a[1]) for a, b in pairwise(ordered))
    return {"flow.worker_head": head, "flow.worker_between": between, "flow.worker_tail": tail}


def error_line(exc: BaseException) -> str:
    """What ended a run, for its row: the exception's class and the first line of its text."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
