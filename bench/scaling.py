"""How the analyze-library flow scales: 1 against 2 workers, batch size, the in-flight window.

    python bench/scaling.py [CORPUS] [--tracks N] [--json FILE]

Runs the real flow (its own Prefect server, a ``LocalCluster``, a fresh DuckDB file) on
the same ``--tracks`` files of CORPUS (default ``.bench-corpus/``) several times:

- 1 worker, then 2 workers, at the defaults: the speed-up, end to end and steady (the
  window in which batches were in flight, which leaves out the cluster's start);
- 2 workers at each batch size of ``--batch-sizes``;
- 2 workers with each in-flight window of ``--windows`` (batches queued at once).

Prefect and Dask's share is the workers' time in the steady window not spent in the
analysis itself. Prints a table; writes every run to ``--json``.
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--batch-sizes", default="1,2,4")
    parser.add_argument("--windows", default="2,4,8")
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/scaling.json")
    args = parser.parse_args()

    tracks = pick_tracks(args.corpus, args.tracks)
    audio = sum(seconds for _, seconds in tracks)
    print(f"{len(tracks)} tracks, {audio / 3600:.2f} h of audio")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="playlista-scaling-") as work:
        root = link_tracks([path for path, _ in tracks], Path(work, "music"))
        plan = [("workers", 1, {"workers": 1}), ("workers", 2, {"workers": 2})]
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
            figures = run_playlista(root, Path(work, f"run{i}.duckdb"), **options)
            runs.append({"what": what, "value": value, **figures, **_shares(figures)})
    print_table(runs)
    one, two = runs[0], runs[1]
    speedup = {
        "end_to_end": one["wall_s"] / two["wall_s"],
        "steady": one["steady_s"] / two["steady_s"],
    }
    print(
        f"\n2 workers against 1: {speedup['steady']:.2f}x steady, "
        f"{speedup['end_to_end']:.2f}x end to end"
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
        f"\n{'run':<16} {'end to end s':>13} {'steady s':>9} {'cluster start s':>16} "
        f"{'prefect+dask':>13} {'idle at end':>12}"
    )
    for run in runs:
        print(
            f"{run['what'] + ' ' + str(run['value']):<16} {run['wall_s']:>13.1f} "
            f"{run['steady_s']:>9.1f} {run['cluster_start_s']:>16.1f} "
            f"{100 * run['overhead_share']:>12.1f}% {100 * run['idle_share']:>11.1f}%"
        )


if __name__ == "__main__":
    main()
