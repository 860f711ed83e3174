"""playlista runs as a user starts them, for the fault tests: the CLI in a session of its
own, its log, the database read while it runs or held from it, a worker of its cluster
killed, and its task runs read back from the Prefect API."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import psutil

PLAYLISTA = str(Path(sys.executable).with_name("playlista"))
GOOD = [
    "good/rendered/bach_bwv351.flac",
    "good/rendered/mozart_k545.flac",
    "good/samples/loop_amen_full.flac",
    "good/rendered/trance1.wav",
    "good/rendered/bach_bwv269.flac",
    "good/formats/war_of_freedom_60s.mp3",
]
# Drop the capabilities that let root read any file, so that mode bits bind as for a user.
_NO_DAC = "-dac_override,-dac_read_search"
AS_USER = (
    ["setpriv", f"--bounding-set={_NO_DAC}", f"--inh-caps={_NO_DAC}"] if os.geteuid() == 0 else []
)


def query(db: Path, sql: str, params: Any = None) -> list[tuple[Any, ...]] | None:
    """Rows of ``sql``, or None while another process holds the file."""
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute(sql, params).fetchall()
    except (duckdb.IOException, duckdb.CatalogException):  # held, or not created yet
        return None


def rows(db: Path, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    result = query(db, sql, params)
    assert result is not None, f"{db} is held"
    return result


def start_cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, log: str = "cli"
) -> tuple[subprocess.Popen[bytes], Path]:
    """``playlista ARGS`` in a session of its own, output to a log file."""
    out = tmp_path / f"{log}.log"
    base = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.Popen(
        [PLAYLISTA, *args],
        env={**base, "PREFECT_HOME": str(tmp_path / "prefect"), **(env or {})},
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, out


def analyze_args(lib: Path, db: Path) -> tuple[str, ...]:
    """One batch per file on two workers: several batches, so a fault lands mid-run."""
    return ("analyze", str(lib), "--db", str(db), "--workers", "2", "--batch-size", "1")


def finish(proc: subprocess.Popen[bytes], log: Path, timeout: float = 900) -> str:
    proc.wait(timeout=timeout)
    return log.read_text(errors="replace")


def wait_for(check: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def wait_for_plan(log: Path) -> None:
    """Until the run has planned, the database must be left to it: it would refuse a held file."""
    wait_for(lambda: "planned" in log.read_text(errors="replace"), timeout=300, what="the plan")


def analysed_paths(db: Path) -> dict[str, Any] | None:
    found = query(db, "SELECT path, analyzed_at FROM track_features")
    return dict(found) if found is not None else None


HOLDER = """
import sys, time, duckdb
while True:
    try:
        con = duckdb.connect(sys.argv[1])
        break
    except duckdb.IOException:
        time.sleep(0.005)
print("holding", flush=True)
sys.stdin.read()
"""


def hold_when_planned(db: Path, log: Path) -> subprocess.Popen[str]:
    """Once the run has planned, take the file the moment it lets go, until told to stop."""
    wait_for_plan(log)
    return hold(db)


def hold(db: Path) -> subprocess.Popen[str]:
    """Take the file the moment the run lets go of it, until told to stop (:func:`release`)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)


def kill_a_busy_worker(log: Path) -> tuple[str, tuple[str, ...]]:
    """SIGKILL a worker of the run's cluster while it runs a batch whose Prefect task run has
    started; the worker's address and the batches it had."""
    from distributed import Client

    found = wait_for(
        lambda: re.search(r"Dask cluster (\S+) with", log.read_text(errors="replace")),
        timeout=300,
        what="the run's cluster",
    )
    flow_run_id = wait_for(running_flow_run, timeout=300, what="the running flow run")

    def running() -> dict[str, tuple[str, ...]]:
        executing = client.run(lambda dask_worker: [t.key for t in dask_worker.state.executing])
        started = sum(
            n.startswith("analyze-batch") and s == "RUNNING"
            for n, s in task_run_states(flow_run_id)
        )
        busy = {w: tuple(keys) for w, keys in executing.items() if keys}
        return busy if busy and started >= sum(map(len, busy.values())) else {}

    with Client(found.group(1), timeout=60) as client:
        worker, keys = next(iter(wait_for(running, timeout=300, what="a batch running").items()))
        pid = client.run(os.getpid, workers=[worker])[worker]
        psutil.Process(pid).send_signal(signal.SIGKILL)
    return worker, keys


def running_flow_run() -> str | None:
    """The id of the flow run the Prefect API has running (the run holds the database, so its
    `runs` row cannot be read meanwhile), or None."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    running = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
    with get_client(sync_client=True) as client:
        flow_runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(state=running))
    return str(flow_runs[0].id) if len(flow_runs) == 1 else None


def task_run_states(flow_run_id: str) -> list[tuple[str, str]]:
    """(name, state type) of every task run of a flow run, from the Prefect API."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return [(t.name, t.state_type.value if t.state_type else "NONE") for t in task_runs]


def api_url() -> str:
    """The session's Prefect API (tests/conftest.py's prefect_api), for a CLI to report to."""
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())
