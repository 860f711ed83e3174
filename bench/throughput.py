"""Throughput of the full default analysis, side by side with bliss-rs, Essentia and librosa.

    python bench/throughput.py [CORPUS] [--tracks N] [--workers N] [--json FILE]

Picks ``--tracks`` files spread evenly over CORPUS (default: the bench corpus that
``make bench-corpus`` builds in ``.bench-corpus/``) and analyses the same files four ways,
one after the other, each with one process per core:

- **playlista**: the real ``analyze-library`` flow on a ``LocalCluster`` (a Prefect
  server of its own, workers loading every library and both MusiCNN models, a fresh
  DuckDB file), every file analysed whole as the peers do (``PLAYLISTA_ANALYSIS_MAX_SECONDS=0``:
  no excerpts of tracks over 10 minutes);
- **bliss-rs**: the PyPI ``bliss-audio`` wheel, ``Song(path)`` per file;
- **essentia**: ``essentia.standard.MusicExtractor()`` per file, default profile;
- **librosa**: a naive per-file script: ``load``, ``beat_track``, ``chroma_cqt``, ``mfcc``,
  spectral centroid and RMS.

Each is timed end to end (start-up included: imports, numba compilation, model loads)
and steady (the files alone). Rates are per core and normalised to 4-minute tracks:
``audio seconds / 240 / wall / cores``. playlista's wall time is then broken down by stage
from the run's own timings, and the peak resident memory of the flow process and of each
worker is sampled while it runs. Prints tables; ``--json`` writes every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import soundfile
from peers import run_pool

REPO = Path(__file__).resolve().parents[1]
TRACK_SECONDS = 240.0  # the "4-minute track" that rates are normalised to
AUDIO_SUFFIXES = {".ogg", ".mp3", ".flac", ".opus", ".wav", ".m4a", ".aiff"}
# The peers analyse every file whole, so playlista does too here: no excerpts of long tracks.
WHOLE_TRACKS = {"PLAYLISTA_ANALYSIS_MAX_SECONDS": "0"}
PREFECT_ENV = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=REPO / ".bench-corpus")
    parser.add_argument("--tracks", type=int, default=24, help="files to analyse (0: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--only", default="playlista,bliss,essentia,librosa", help="comma-separated tools"
    )
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/throughput.json")
    args = parser.parse_args()

    tracks = pick_tracks(args.corpus, args.tracks)
    audio = sum(seconds for _, seconds in tracks)
    print(
        f"{len(tracks)} tracks, {audio / 3600:.2f} h of audio "
        f"(median {sorted(s for _, s in tracks)[len(tracks) // 2]:.0f} s), "
        f"{args.workers} process(es), {os.cpu_count()} cores"
    )
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="playlista-bench-") as work:
        root = link_tracks([path for path, _ in tracks], Path(work, "music"))
        paths = sorted(str(p) for p in root.iterdir())
        for tool in args.only.split(","):
            print(f"running {tool} ...", flush=True)
            if tool == "playlista":
                results[tool] = run_playlista(
                    root,
                    Path(work, "library.duckdb"),
                    workers=args.workers,
                    batch_size=args.batch_size,
                    env=WHOLE_TRACKS,
                )
            else:
                results[tool] = run_pool(tool, paths, processes=args.workers)
            Path(work, "library.duckdb").unlink(missing_ok=True)
    for figures in results.values():
        # A file a tool could not read took it no time: its audio does not count either.
        failed = {int(Path(path).name[:4]) for path, _ in figures.get("failures", [])}
        figures["audio_seconds"] = sum(s for i, (_, s) in enumerate(tracks) if i not in failed)
        add_rates(figures, audio_seconds=figures["audio_seconds"], cores=args.workers)
    print_comparison(results)
    if "playlista" in results:
        print_breakdown(results["playlista"])
        print_memory(results["playlista"])
    report = {
        "machine": machine(),
        "corpus": str(args.corpus),
        "tracks": [{"path": str(p), "seconds": s} for p, s in tracks],
        "audio_seconds": audio,
        "processes": args.workers,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {args.json}")


# -- the files ---------------------------------------------------------------------------------


def pick_tracks(corpus: Path, n: int) -> list[tuple[Path, float]]:
    """``n`` readable audio files spread evenly over ``corpus`` (sorted by path), with lengths."""
    if not corpus.is_dir():
        sys.exit(f"no corpus at {corpus}: run `make bench-corpus`, or name a folder of music")
    found = []
    for path in sorted(p for p in corpus.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        try:
            found.append((path, soundfile.info(str(path)).duration))
        except (RuntimeError, soundfile.LibsndfileError):
            continue  # lengths come from libsndfile; the few files it cannot read are left out
    if n and n < len(found):
        found = [found[i * len(found) // n] for i in range(n)]
    return found


def link_tracks(paths: Sequence[Path], folder: Path) -> Path:
    """A folder holding only ``paths`` (hard links, or copies across file systems)."""
    folder.mkdir(parents=True)
    for i, path in enumerate(paths):
        target = folder / f"{i:04d}_{path.name}"
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return folder


# -- playlista ---------------------------------------------------------------------------------


def run_playlista(
    root: Path,
    db: Path,
    *,
    workers: int,
    batch_size: int | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the analyze-library flow in a child process; its summary, wall time and peak RSS."""
    out = db.with_suffix(".summary.json")
    command = [sys.executable, __file__, "--flow-child", str(root), str(db), str(out), str(workers)]
    if batch_size:
        command.append(str(batch_size))
    environment = {**os.environ, **PREFECT_ENV, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env_path()]))
    started = time.perf_counter()
    child = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)
    peaks = watch_memory(child.pid)
    if child.wait() != 0:
        raise SystemExit(f"the flow failed (exit {child.returncode})")
    process_wall = time.perf_counter() - started
    summary = json.loads(out.read_text())
    timings = summary.pop("timings")
    return {
        "wall_s": summary["wall_seconds"],
        "steady_s": timings.get("flow.analysis", summary["wall_seconds"]),
        "process_wall_s": process_wall,
        "analysed": summary["analyzed"],
        "failed": summary["failed"],
        "summary": summary,
        "timings": timings,
        "peak_rss": peaks.result(),
    }


def env_path() -> str:
    return os.environ.get("PYTHONPATH", "")


def flow_child(root: str, db: str, out: str, workers: str, batch_size: str | None) -> None:
    from flows.analyze_library import analyze_library

    summary = analyze_library(
        roots=[root], db=db, workers=int(workers), batch_size=int(batch_size or 0) or None
    )
    Path(out).write_text(json.dumps(summary, default=str))


class MemoryWatch:
    """Peak RSS of a process and of each of its descendants, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.peaks: dict[int, tuple[str, int]] = {}
        self._thread = threading.Thread(target=self._run, args=(pid,), daemon=True)
        self._thread.start()

    def _run(self, pid: int) -> None:
        try:
            top = psutil.Process(pid)
            while top.is_running() and top.status() != psutil.STATUS_ZOMBIE:
                for proc in [top, *top.children(recursive=True)]:
                    try:
                        rss = proc.memory_info().rss
                        role = self.peaks.get(proc.pid, (None, 0))[0] or role_of(proc, top)
                    except psutil.Error:
                        continue
                    self.peaks[proc.pid] = (role, max(rss, self.peaks.get(proc.pid, ("", 0))[1]))
                time.sleep(0.2)
        except psutil.Error:
            pass

    def result(self) -> dict[str, list[int]]:
        """Peak bytes by role (flow, worker, decoder, prefect server, other)."""
        self._thread.join()
        roles: dict[str, list[int]] = {}
        for role, peak in self.peaks.values():
            roles.setdefault(role, []).append(peak)
        return {role: sorted(peaks, reverse=True) for role, peaks in roles.items()}


def watch_memory(pid: int) -> MemoryWatch:
    return MemoryWatch(pid)


def role_of(proc: psutil.Process, top: psutil.Process) -> str:
    if proc.pid == top.pid:
        return "flow"
    command = " ".join(proc.cmdline())
    if "spawn_main" in command and "resource_tracker" not in command:
        return "worker"
    if "playlista.audio.isolate" in command:
        return "decoder"
    if ("prefect" in command and "server" in command) or "uvicorn" in command:
        return "prefect server"
    return "other"


# -- reporting ---------------------------------------------------------------------------------


def add_rates(figures: dict[str, Any], *, audio_seconds: float, cores: int) -> None:
    for kind in ("wall", "steady"):
        seconds = figures[f"{kind}_s"]
        figures[f"{kind}_tracks_per_s_per_core"] = audio_seconds / TRACK_SECONDS / seconds / cores
        figures[f"{kind}_realtime_per_core"] = audio_seconds / seconds / cores


def print_comparison(results: dict[str, dict[str, Any]]) -> None:
    print("\n4-minute tracks per second per core (audio seconds / 240 / wall / cores)")
    header = f"{'tool':<10} {'end to end':>11} {'steady':>8} {'x realtime':>11} {'failed':>7}"
    print(header + (f" {'vs bliss':>9}" if "bliss" in results else ""))
    for tool, f in results.items():
        line = (
            f"{tool:<10} {f['wall_tracks_per_s_per_core']:>11.3f} "
            f"{f['steady_tracks_per_s_per_core']:>8.3f} {f['steady_realtime_per_core']:>11.0f} "
            f"{f['failed']:>7}"
        )
        if "bliss" in results:
            ratio = (
                f["steady_tracks_per_s_per_core"] / results["bliss"]["steady_tracks_per_s_per_core"]
            )
            line += f" {ratio:>8.2f}x"
        print(line)


def breakdown(figures: dict[str, Any]) -> list[tuple[str, float, float]]:
    """playlista's stages: (stage, seconds, share of the workers' time in the analysis window).

    Worker stages are summed over workers. ``prefect + dask`` is the workers' time before
    their first file and between files: Dask's scheduling and Prefect's task-run
    bookkeeping. ``idle at the end`` is a worker's time after its last file while another
    ends the last batch; ``untimed`` is the rest of the files' own time.
    """
    t = figures["timings"]
    capacity = t.get("flow.workers", 1) * t["flow.analysis"]
    stages = {k: v for k, v in t.items() if not k.startswith("flow.")}
    overhead = t.get("flow.worker_head", 0.0) + t.get("flow.worker_between", 0.0)
    tail = t.get("flow.worker_tail", 0.0)
    rows = [(stage, seconds, seconds / capacity) for stage, seconds in stages.items()]
    untimed = capacity - sum(stages.values()) - overhead - tail
    for stage, seconds in (
        ("untimed", untimed),
        ("prefect + dask", overhead),
        ("idle at the end", tail),
    ):
        rows.append((stage, seconds, seconds / capacity))
    for stage in ("plan", "cluster_start", "upsert", "finish"):
        rows.append((f"flow: {stage}", t.get(f"flow.{stage}", 0.0), float("nan")))
    return rows


def print_breakdown(figures: dict[str, Any]) -> None:
    rows = breakdown(figures)
    figures["breakdown"] = [{"stage": s, "seconds": v, "share": share} for s, v, share in rows]
    print(
        f"\nplaylista by stage (workers' time while batches ran: "
        f"{figures['timings']['flow.workers']} x {figures['timings']['flow.analysis']:.1f} s)"
    )
    for stage, seconds, share in rows:
        shown = "" if share != share else f"{100 * share:5.1f} %"
        print(f"  {stage:<24} {seconds:>8.2f} s  {shown}")


def print_memory(figures: dict[str, Any]) -> None:
    print("\nplaylista peak resident memory")
    for role, peaks in figures["peak_rss"].items():
        shown = ", ".join(f"{p / 2**20:.0f}" for p in peaks[:4])
        print(f"  {role:<16} {shown} MiB")


def machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--flow-child":
        flow_child(*sys.argv[2:6], sys.argv[6] if len(sys.argv) > 6 else None)
    else:
        main()
