"""How the analyze-library flow scales: 1 against 2 workers, on a busy machine, on short songs.

    python bench/scaling.py [CORPUS] [--tracks N] [--batch-sizes B,..] [--windows W,..]

Runs the real flow (its own Prefect server, a ``LocalCluster``, a fresh DuckDB file) on
the same ``--tracks`` files of CORPUS (default ``.bench-corpus/``) several times:

- 1 worker, then 2 workers, at the defaults: the speed-up, end to end and steady (the
  window in which batches were in flight, which leaves out the cluster's start);
- the same two while a third process keeps one core half busy (50 ms of work, 50 ms of
  sleep, started by this script): cores shared with something else still have to add up;
- 2 workers on ``--tracks`` songs of 2 to 3 minutes: their per-core rate against the rate
  on the whole selection (whose tracks are longer), both per 4-minute track;
- optionally, 2 workers at each batch size of ``--batch-sizes`` and with each in-flight
  window of ``--windows`` (batches queued at once).

Prefect and Dask's share is the workers' time in the steady window not spent in the
analysis itself. Prints a table; writes every run to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from throughput import (
    REPO,
    WHOLE_TRACKS,
    breakdown,
    link_tracks,
    machine,
    pick_tracks,
    run_playlista,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=REPO / ".bench-corpus")
    parser.add_argument("--tracks", type=int, default=32)
    parser.add_argument("--batch-sizes", default="")
    parser.add_argument("--windows", default="")
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/scaling.json")
    args = parser.parse_args()

    pool = pick_tracks(args.corpus, 0)
    tracks = pick_tracks(args.corpus, args.tracks)
    audio = sum(seconds for _, seconds in tracks)
    songs = [t for t in pool if SHORT[0] <= t[1] <= SHORT[1]]
    songs = [songs[i * len(songs) // args.tracks] for i in range(min(args.tracks, len(songs)))]
    print(f"{len(tracks)} tracks, {audio / 3600:.2f} h of audio; {len(songs)} of 2-3 minutes")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="playlista-scaling-") as work:
        root = link_tracks([path for path, _ in tracks], Path(work, "music"))
        short = link_tracks([path for path, _ in songs], Path(work, "songs"))
        plan: list[tuple[str, Any, dict[str, Any]]] = [
            ("workers", 1, {"workers": 1}),
            ("workers", 2, {"workers": 2}),
            ("busy, workers", 1, {"workers": 1, "busy": True}),
            ("busy, workers", 2, {"workers": 2, "busy": True}),
            ("songs, workers", 2, {"workers": 2, "root": short}),
        ]
        plan += [
            ("batch size", b, {"workers": 2, "batch_size": b}) for b in _ints(args.batch_sizes)
        ]
        plan += [
            ("in flight", w, {"workers": 2, "env": {"PLAYLISTA_MAX_IN_FLIGHT": str(w)}})
            for w in _ints(args.windows)
        ]
        for i, (what, value, options) in enumerate(plan):
            print(f"run {i + 1}/{len(plan)}: {what} {value} ...", flush=True)
            options["env"] = {**WHOLE_TRACKS, **options.get("env", {})}
            busy = half_busy() if options.pop("busy", False) else None
            folder = options.pop("root", root)
            try:
                figures = run_playlista(folder, Path(work, f"run{i}.duckdb"), **options)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
            seconds = audio if folder is root else sum(s for _, s in songs)
            rate = seconds / TRACK_SECONDS / figures["steady_s"] / options["workers"]
            runs.append({"what": what, "value": value, "rate": rate, **figures, **_shares(figures)})
    print_table(runs)
    speedup = {
        "steady": runs[0]["steady_s"] / runs[1]["steady_s"],
        "end_to_end": runs[0]["wall_s"] / runs[1]["wall_s"],
        "steady_busy": runs[2]["steady_s"] / runs[3]["steady_s"],
        "songs_rate_share": runs[4]["rate"] / runs[1]["rate"],
    }
    print(
        f"\n2 workers against 1: {speedup['steady']:.2f}x steady, "
        f"{speedup['end_to_end']:.2f}x end to end; "
        f"{speedup['steady_busy']:.2f}x steady beside a half-busy process"
        f"\n2-3-minute songs: {100 * speedup['songs_rate_share']:.0f} % of the per-core rate "
        "on the whole selection"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": machine(),
                "tracks": len(tracks),
                "audio_seconds": audio,
                "speedup_2_over_1": speedup,
                "runs": runs,
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {args.json}")


SHORT = (120.0, 180.0)
TRACK_SECONDS = 240.0


def half_busy() -> subprocess.Popen[bytes]:
    """A process that keeps one core half busy: 50 ms of arithmetic, 50 ms of sleep."""
    loop = (
        "import time\n"
        "while True:\n"
        "    end = time.perf_counter() + 0.05\n"
        "    while time.perf_counter() < end:\n"
        "        pass\n"
        "    time.sleep(0.05)\n"
    )
    return subprocess.Popen([sys.executable, "-c", loop])


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _shares(figures: dict[str, Any]) -> dict[str, float]:
    rows = {stage: share for stage, _, share in breakdown(figures)}
    timings = figures["timings"]
    return {
        "overhead_share": rows["prefect + dask"],
        "idle_share": rows["idle at the end"],
        "cluster_start_s": timings.get("flow.cluster_start", 0.0),
        "batches": timings.get("flow.batches", float("nan")),
    }


def print_table(runs: list[dict[str, Any]]) -> None:
    print(
        f"\n{'run':<20} {'end to end s':>13} {'steady s':>9} {'per core':>9} "
        f"{'cluster start s':>16} {'prefect+dask':>13} {'idle at end':>12}"
    )
    for run in runs:
        print(
            f"{run['what'] + ' ' + str(run['value']):<20} {run['wall_s']:>13.1f} "
            f"{run['steady_s']:>9.1f} {run['rate']:>9.2f} {run['cluster_start_s']:>16.1f} "
            f"{100 * run['overhead_share']:>12.1f}% {100 * run['idle_share']:>11.1f}%"
        )


if __name__ == "__main__":
    main()
