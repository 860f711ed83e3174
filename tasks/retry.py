"""Retry conditions for Prefect tasks: retry when the task raised one of these errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def raised(*errors: type[BaseException]) -> Callable[[Any, Any, Any], bool]:
    """A ``retry_condition_fn`` that retries only a task that raised one of ``errors``."""

    def condition(task: Any, task_run: Any, state: Any) -> bool:
        try:
            state.result()
        except errors:
            return True
        except Exception:
            return False
        return False

    return condition
