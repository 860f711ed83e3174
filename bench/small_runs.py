"""Small runs end to end: a nightly run that finds 3 new files, and one that finds nothing.

    python bench/small_runs.py [CORPUS] [--library N] [--repeat K] [--json FILE]

Builds a library of ``--library`` files spread over CORPUS (default: the bench corpus) and
analyses it once with ``playlista analyze`` on the embedded defaults (its own temporary Prefect
server, a local Dask cluster, a fresh DuckDB file). Then, ``--repeat`` times each:

- **3 new files**: three more files appear in the library; the whole command is timed, from
  launch to exit, as a user's nightly run would be;
- **no change**: the command again on the unchanged library.

For each run it reports the command's wall time, what the run's row in ``runs`` says it did
(new, analysed, unchanged, the flow's own wall time), and how many Dask worker processes the
command started (none for a run that finds nothing to do).
Prints a table; writes every figure to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import psutil

REPO = Path(__file__).resolve().parents[1]
AUDIO_SUFFIXES = {".ogg", ".mp3", ".flac", ".opus"}
QUIET_PREFECT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=REPO / ".bench-corpus")
    parser.add_argument("--library", type=int, default=12, help="files in the library at first")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/small_runs.json")
    args = parser.parse_args()

    pool = sorted(p for p in args.corpus.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    needed = args.library + 3 * args.repeat
    if len(pool) < needed:
        sys.exit(f"{args.corpus} has {len(pool)} audio files; {needed} are needed")
    # Files spread over the corpus; the new ones of each run are 3-5 minutes long, as songs are.
    picked = [pool[i * len(pool) // needed] for i in range(needed)]
    initial, extra = picked[: args.library], picked[args.library :]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="playlista-small-") as work:
        music, db = Path(work, "music"), Path(work, "library.duckdb")
        music.mkdir()
        for path in initial:
            _link(path, music)
        first = analyse(music, db)
        print(f"library: {args.library} files, first run {first['wall_s']:.1f} s")
        for i in range(args.repeat):
            for path in extra[3 * i : 3 * i + 3]:
                _link(path, music)
            runs.append({"kind": "3 new files", **analyse(music, db)})
            runs.append({"kind": "no change", **analyse(music, db)})
    print_table(runs)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"first": first, "runs": runs}, indent=2, default=str))
    print(f"\nwrote {args.json}")


def analyse(music: Path, db: Path) -> dict[str, Any]:
    """Run ``playlista analyze`` as a user would; its wall time, and what it did.

    The counts come from the run's row in ``runs``; whether a Dask cluster started is seen
    from outside: any worker process among the command's descendants while it runs.
    """
    env = {**os.environ, **QUIET_PREFECT}
    env.pop("PREFECT_API_URL", None)  # the embedded defaults: a temporary server of its own
    command = [str(REPO / ".venv/bin/playlista"), "analyze", str(music), "--db", str(db)]
    started = time.perf_counter()
    child = psutil.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers: set[int] = set()
    while child.poll() is None:
        try:
            for proc in child.children(recursive=True):
                if "spawn_main" in " ".join(proc.cmdline()):
                    workers.add(proc.pid)
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - started
    _, stderr = child.communicate()
    if child.returncode != 0:
        sys.exit(f"playlista analyze failed ({child.returncode}):\n{stderr.decode()[-2000:]}")
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT new, analyzed, unchanged, wall_seconds FROM runs "
            "ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    new, analysed, unchanged, flow_wall = row
    return {
        "wall_s": wall,
        "new": new,
        "analyzed": analysed,
        "unchanged": unchanged,
        "flow_wall_s": flow_wall,
        "worker_processes": len(workers),
    }


def print_table(runs: list[dict[str, Any]]) -> None:
    print(f"\n{'run':<14} {'command s':>10} {'flow s':>7} {'analysed':>9} {'Dask workers':>13}")
    for run in runs:
        print(
            f"{run['kind']:<14} {run['wall_s']:>10.1f} {run['flow_wall_s']:>7.1f} "
            f"{run['analyzed']:>9} {run['worker_processes']:>13}"
        )
    for kind in ("3 new files", "no change"):
        walls = [r["wall_s"] for r in runs if r["kind"] == kind]
        print(f"median {kind}: {statistics.median(walls):.1f} s over {len(walls)} runs")


def _link(path: Path, folder: Path) -> None:
    target = folder / f"{len(list(folder.iterdir())):04d}_{path.name}"
    try:
        os.link(path, target)
    except OSError:
        shutil.copyfile(path, target)


if __name__ == "__main__":
    main()
