"""How playlista's Prefect tasks are retried: which errors, how many times, how long apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prefect import Task
from prefect.tasks import exponential_backoff

T = TypeVar("T", bound=Task[..., Any])


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


def with_retries(task: T, retries: int, *, backoff_seconds: float) -> T:
    """``task`` tried ``retries`` more times, ``backoff_seconds`` then twice as long each time.

    The number of retries is a setting, so it is given here rather than where the task is
    declared: Prefect turns a backoff into its list of delays when the task is made.
    """
    delays = exponential_backoff(backoff_factor=backoff_seconds)(retries)
    return task.with_options(retries=retries, retry_delay_seconds=delays)  # type: ignore[return-value]
