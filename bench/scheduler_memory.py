"""The Dask scheduler's memory over many flow runs against one long-lived cluster.

    python bench/scheduler_memory.py [--runs 30] [--json FILE]

Starts what the README's scale-out section starts, on 127.0.0.1: a Prefect server, a
``dask scheduler`` and one ``dask worker --nthreads 1 --preload playlista.preload``. Then
runs ``playlista analyze LIBRARY --dask-address ... --full-rescan`` ``--runs`` times, each a
process of its own as a scheduled deployment's run would be, on a library of two short
corpus files (so that every run sends batches through the scheduler). After each run it
prints the scheduler's resident memory and what the scheduler keeps: task groups and
prefixes, clients, event topics, and the workers' plugins. Writes the figures to ``--json``.
With ``--trace``, the scheduler runs under ``tracemalloc`` and the lines whose allocations
grew most from the second run to the last are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil
from distributed import Client
from throughput import REPO, machine

sys.path.insert(0, str(REPO))
from tests.services import background, free_port, http_ok

FILES = ["good/samples/loop_amen_full.flac", "good/rendered/mozart_k545.flac"]
MIB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/scheduler_memory.json")
    parser.add_argument("--trace", action="store_true", help="where the scheduler's memory went")
    args = parser.parse_args()

    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="playlista-scheduler-") as work, ExitStack() as stack:
        library = Path(work, "music")
        library.mkdir()
        for name in FILES:
            shutil.copy2(args.corpus / name, library / Path(name).name)
        env = {**os.environ, "PREFECT_HOME": str(Path(work, "prefect"))}
        env.pop("PREFECT_API_URL", None)
        api, scheduler = free_port(), free_port()
        env["PREFECT_API_URL"] = f"http://127.0.0.1:{api}/api"
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        bin_dir = Path(sys.executable).parent
        stack.enter_context(
            background(
                [str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1",
                 "--port", str(api)],
                env=env, log=Path(work, "server.log"),
            )
        )  # fmt: skip
        wait(lambda: http_ok(f"http://127.0.0.1:{api}/api/health"), "the Prefect server")
        address = f"tcp://127.0.0.1:{scheduler}"
        sched_env = {**env, "PYTHONTRACEMALLOC": "4"} if args.trace else env
        sched = stack.enter_context(
            background(
                [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                 str(scheduler), "--no-dashboard"],
                env=sched_env, log=Path(work, "scheduler.log"),
            )
        )  # fmt: skip
        stack.enter_context(
            background(
                [str(bin_dir / "dask"), "worker", address, "--nworkers", "1", "--nthreads",
                 "1", "--preload", "playlista.preload", "--no-dashboard"],
                env=env, log=Path(work, "worker.log"),
            )
        )  # fmt: skip
        client = stack.enter_context(Client(address, timeout=60))
        client.wait_for_workers(1, timeout=600)
        db = Path(work, "library.duckdb")
        command = [str(bin_dir / "playlista"), "analyze", str(library), "--db", str(db)]
        command += ["--dask-address", address, "--full-rescan"]
        base = rss(sched.pid)
        print(f"scheduler at start (worker joined): {base / MIB:.1f} MiB", flush=True)
        print(f"\n{'run':>4} {'scheduler MiB':>14} {'+ since start':>14} {'run s':>7}  kept")
        for n in range(1, args.runs + 1):
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"run {n} failed:\n{done.stderr[-3000:]}")
            seconds = time.perf_counter() - started
            time.sleep(1.0)  # the run's client has gone; let the scheduler forget it
            kept = client.run_on_scheduler(scheduler_state)
            if args.trace and n == 2:
                client.run_on_scheduler(_snapshot)
            figure = {"run": n, "rss": rss(sched.pid), "seconds": seconds, **kept}
            figures.append(figure)
            print(
                f"{n:>4} {figure['rss'] / MIB:>14.1f} {(figure['rss'] - base) / MIB:>14.1f} "
                f"{seconds:>7.1f}  {kept}",
                flush=True,
            )
        if args.trace:
            print("\ngrown most from run 2 to the last, in the scheduler:")
            for line in client.run_on_scheduler(_grown):
                print(line)
    first, last = figures[0], figures[-1]
    per_run = (last["rss"] - first["rss"]) / max(1, len(figures) - 1) / MIB
    print(f"\nfrom run 1 to run {last['run']}: {per_run:+.2f} MiB per run")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"machine": machine(), "base_rss": base, "per_run_mib": per_run, "runs": figures},
            indent=2,
        )
    )
    print(f"wrote {args.json}")


def scheduler_state(dask_scheduler: Any) -> dict[str, int]:
    """What the scheduler keeps that could grow with each flow run."""
    return {
        "tasks": len(dask_scheduler.tasks),
        "task_groups": len(dask_scheduler.task_groups),
        "task_prefixes": len(dask_scheduler.task_prefixes),
        "clients": len(dask_scheduler.clients),
        "event_topics": len(dask_scheduler._broker._topics),
        "worker_plugins": len(dask_scheduler.worker_plugins),
    }


def _snapshot(dask_scheduler: Any) -> None:
    import tracemalloc

    dask_scheduler._playlista_snapshot = tracemalloc.take_snapshot()


def _grown(dask_scheduler: Any) -> list[str]:
    import tracemalloc

    now = tracemalloc.take_snapshot()
    diff = now.compare_to(dask_scheduler._playlista_snapshot, "traceback")
    lines = []
    for stat in diff[:8]:
        frames = [f"{f.filename}:{f.lineno}" for f in stat.traceback[-6:]]
        lines.append(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+6d} blocks  " +
                     " <- ".join(reversed(frames)))  # fmt: skip
    return lines


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def wait(check: Any, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start in {timeout:.0f} s")
        time.sleep(0.5)


if __name__ == "__main__":
    main()
