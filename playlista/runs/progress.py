"""A run's progress: a Prefect progress artifact, and a bar on the terminal if asked for."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from rich.progress import Progress

from playlista.runs.batches import Job


class RunProgress:
    """Files analysed out of ``total``: call :meth:`advance` as jobs end."""

    def __init__(self, total: int, artifact: Any, bar: Progress | None) -> None:
        self.total, self.done = total, 0
        self._artifact, self._bar = artifact, bar
        self._bar_task = bar.add_task("analysing", total=total) if bar else None

    @classmethod
    @contextmanager
    def of(cls, jobs: Sequence[Job], *, show: bool) -> Iterator[RunProgress]:
        """The progress of analysing the files of ``jobs``; a bar too if ``show``."""
        total = sum(len(files) for files, _ in jobs)
        artifact = create_progress_artifact(
            0.0, key="analyze-library-progress", description=f"{total} files to analyse"
        )
        if not show:
            yield cls(total, artifact, None)
            return
        with Progress(transient=False) as bar:
            yield cls(total, artifact, bar)

    def advance(self, job: Job) -> None:
        files = len(job[0])
        self.done += files
        update_progress_artifact(self._artifact, 100.0 * self.done / self.total)
        if self._bar is not None and self._bar_task is not None:
            self._bar.advance(self._bar_task, files)
