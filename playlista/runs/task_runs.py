"""Task runs in the Prefect API that a lost Dask worker left without a final state."""

from __future__ import annotations

import logging
from typing import Any

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.states import Crashed

log = logging.getLogger(__name__)

_UNFINISHED = TaskRunFilter(
    state=TaskRunFilterState(
        type=TaskRunFilterStateType(
            any_=[StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED]
        )
    )
)


def settle_task_runs(flow_run_id: Any) -> list[str]:
    """Give every task run of this flow run that has not ended a final state: Crashed.

    Called once its batches have all ended (or the run has failed), when none can still be
    running; one whose Dask worker died is otherwise left RUNNING (PrefectHQ/prefect#21638).
    Returns the names of the task runs it marked.
    """
    this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        stuck = client.read_task_runs(flow_run_filter=this_run, task_run_filter=_UNFINISHED)
        for task_run in stuck:
            client.set_task_run_state(
                task_run.id,
                Crashed(message="its Dask worker died or the run ended before it could report"),
                force=True,
            )
    if stuck:
        log.warning(
            "%d task run(s) left unfinished by lost workers marked Crashed: %s",
            len(stuck),
            ", ".join(t.name for t in stuck),
        )
    return [t.name for t in stuck]
