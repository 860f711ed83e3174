"""An audit hook that counts, per stage, the files under one folder this process opens."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class OpenCounter:
    """Counts, per stage, the files under one folder that this process opens.

    The ``open`` audit event is raised by ``open``, ``io.open`` and ``os.open`` alike.
    """

    def __init__(self, folder: str) -> None:
        self.prefix = os.path.abspath(folder) + os.sep
        self.stage: str | None = None
        self.counts: dict[str, int] = {}
        self.first: dict[str, str] = {}
        sys.addaudithook(self._hook)  # cannot be removed: it counts only during a stage

    @contextmanager
    def during(self, stage: str) -> Iterator[None]:
        self.counts.setdefault(stage, 0)
        self.stage = stage
        try:
            yield
        finally:
            self.stage = None

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "open" or self.stage is None:
            return
        path = args[0]
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if isinstance(path, str) and os.path.abspath(path).startswith(self.prefix):
            self.counts[self.stage] += 1
            self.first.setdefault(self.stage, path)
