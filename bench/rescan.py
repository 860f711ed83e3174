"""What a rescan of an unchanged library costs: 100,000 files, nothing to analyse, nothing opened.

    .venv/bin/python bench/rescan.py [--files N] [--repeat R] [--workdir DIR]

Builds (or reuses) a tree of N small files named like audio under ``DIR/library`` (artist
folders of 10 albums of 100 tracks, ``.flac``, ``.mp3`` and ``.ogg`` mixed, a few hundred bytes
each) and a DuckDB file ``DIR/rescan.duckdb`` in which every one of them is already analysed,
then times, R times each (median):

- discover: the walk and stat of the tree alone;
- plan: ``Store.plan`` over ``discover`` and ``apply_plan``, the flow's planning stage;
- flow: the analyze-library flow called in this process, the first run (which starts Prefect's
  temporary server) apart from the R later ones;
- cli: ``playlista analyze DIR/library --db DB`` as a user runs it, the whole command; if
  this environment forbids writing bytecode (``PYTHONDONTWRITEBYTECODE``), also with bytecode
  written to ``DIR/pycache`` and read back, as in an ordinary environment.

The target is a rescan (the whole command, as this environment runs it) under 30 s.

The seeding is a seam: the files are not audio and are never decoded. Each one's record is
written through the store's own write path (``Store.write_outcomes``) with its real size,
mtime and fingerprint and the current analyzer and MusiCNN versions, but with constant tags,
features and MusiCNN scores, because this measures the rescan, not analysis. A plan right
after seeding must find every file unchanged, or the script stops.

An audit hook counts the files under the tree opened during each in-process stage (it is
first shown one such open, so that its zeros mean something): a rescan must open none.
Caches are warm (the tree has just been written or walked). Prefect keeps its database in
``DIR/prefect-home``, apart from the user's. Prints a table and writes the figures to
``bench/results/rescan.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opens import OpenCounter

from playlista.analysis import ANALYZER_VERSION, MUSICNN_VERSION
from playlista.models.frontend import MODEL_NAMES
from playlista.records import Features, ModelScores, Tags, TrackResult
from playlista.scan import discover, fingerprint
from playlista.settings import PREFECT_ENVIRONMENT
from playlista.store import Plan, Store

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 30.0
ALBUMS, TRACKS = 10, 100  # albums per artist, tracks per album
EXTENSIONS = (".flac", ".mp3", ".ogg")
SEED_CHUNK = 5_000


def build_tree(library: Path, files: int) -> bool:
    """Write ``files`` small files under ``library`` unless it holds them; True if it wrote them."""
    marker = library.with_name(f"{library.name}.json")
    if library.is_dir() and marker.is_file() and json.loads(marker.read_text()) == files:
        return False
    shutil.rmtree(library, ignore_errors=True)
    for i in range(files):
        artist, rest = divmod(i, ALBUMS * TRACKS)
        album, track = divmod(rest, TRACKS)
        folder = library / f"Artist {artist:03d}" / f"Album {album:02d}"
        if track == 0 or i == 0:
            folder.mkdir(parents=True, exist_ok=True)
        name = folder / f"{track + 1:03d} Track {track + 1}{EXTENSIONS[i % len(EXTENSIONS)]}"
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, f"not audio: file {i}\n".encode().ljust(200 + i % 300, b"."))
        finally:
            os.close(fd)
    marker.write_text(json.dumps(files))
    return True


def seed(db: str, library: str) -> int:
    """Record every file under ``library`` in ``db`` as analysed by the current versions.

    Paths, sizes and mtimes come from ``os.walk`` and ``os.stat``, not from ``discover``,
    so that the records do not share a bug with the code they are checked against.
    """
    musicnn = tuple(
        ModelScores(model, (0.02,) * 50, (0.0,) * 200, patches=8) for model in MODEL_NAMES
    )
    features = Features(bpm=120.0, bpm_confidence=0.5, key="A", mode="minor", camelot="8A")
    now = datetime.now(UTC)
    written = 0
    chunk: list[TrackResult] = []
    with Store.open(db) as store:
        for folder, _, names in os.walk(os.path.abspath(library)):
            album, artist = Path(folder).name, Path(folder).parent.name
            for name in sorted(names):
                path = os.path.join(folder, name)
                st = os.stat(path)
                chunk.append(
                    TrackResult(
                        path=path,
                        size=st.st_size,
                        mtime_ns=st.st_mtime_ns,
                        fingerprint=fingerprint(path, size=st.st_size),
                        tags=Tags(title=Path(name).stem, artist=artist, album=album),
                        features=features,
                        decoder="bench-seed",
                        decoded_seconds=200.0,
                        analyzer_version=ANALYZER_VERSION,
                        worker="bench-seed",
                        analyzed_at=now,
                        elapsed_s=0.0,
                        musicnn=musicnn,
                        musicnn_version=MUSICNN_VERSION,
                    )
                )
                if len(chunk) == SEED_CHUNK:
                    written += store.write_outcomes(chunk)[0]
                    chunk = []
        written += store.write_outcomes(chunk)[0]
    return written


def plan(store: Store, library: str) -> Plan:
    """The plan of a scan of ``library``, as the flow makes it."""
    return store.plan(
        discover([library]),
        roots=[library],
        analyzer_version=ANALYZER_VERSION,
        musicnn_version=MUSICNN_VERSION,
        musicnn_models=len(MODEL_NAMES),
    )


def seeded(db: Path, library: str, files: int) -> dict[str, int] | None:
    """The plan's counts if ``db`` does not have every file unchanged and current, else None."""
    if not db.is_file():
        return {}
    with Store.open(db) as store:
        p = plan(store, library)
    quiet = not (p.to_analyze or p.to_refresh or p.moves or p.deleted or p.unstorable)
    expected = {**dict.fromkeys(p.counts, 0), "files_seen": files, "unchanged": files}
    return None if quiet and p.counts == expected else p.counts


def remove_db(db: Path) -> None:
    for path in (db, Path(f"{db}.wal"), Path(f"{db}.lock")):
        path.unlink(missing_ok=True)
    shutil.rmtree(f"{db}.staged", ignore_errors=True)


def prepare(workdir: Path, files: int) -> tuple[str, Path]:
    """The tree and a database with every file in it analysed: reused when they fit."""
    library, db = str(workdir / "library"), workdir / "rescan.duckdb"
    seconds, built = timed(lambda: build_tree(Path(library), files))
    print(f"tree: {'built' if built else 'reused'} {library} ({seconds:.1f} s)", flush=True)
    if seeded(db, library, files) is None:
        print(f"database: reused {db}", flush=True)
        return library, db
    remove_db(db)
    # In a child process, so that this one's peak RSS is the rescan's alone.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        seconds, written = timed(lambda: pool.apply(seed, (str(db), library)))
    print(f"database: seeded {written} tracks in {seconds:.1f} s", flush=True)
    if (counts := seeded(db, library, files)) is not None:
        raise SystemExit(f"after seeding, a plan still finds work to do: {counts}")
    return library, db


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def plan_and_apply(db: Path, library: str) -> dict[str, int]:
    with Store.open(db) as store:
        p = plan(store, library)
        store.apply_plan(p)
    return p.counts


def in_process(
    library: str, db: Path, *, files: int, repeat: int, counter: OpenCounter
) -> dict[str, Any]:
    """Time discover, planning and the flow in this process; the flow's first run apart."""
    times: dict[str, list[float]] = {"discover": [], "plan": []}
    for _ in range(repeat):
        with counter.during("discover"):
            seconds, found = timed(lambda: sum(1 for _ in discover([library])))
        assert found == files, found
        times["discover"].append(seconds)
    for _ in range(repeat):
        with counter.during("plan"):
            seconds, counts = timed(lambda: plan_and_apply(db, library))
        assert counts["unchanged"] == files, counts
        times["plan"].append(seconds)
    rss_before_flow = peak_rss()
    from flows.analyze_library import analyze_library  # imports Prefect: environment set

    summaries = []
    for i in range(repeat + 1):
        with counter.during("flow"):
            seconds, summary = timed(lambda: analyze_library(roots=[library], db=str(db)))
        if summary["analyzed"] or summary["new"] or summary["unchanged"] != files:
            raise SystemExit(f"the flow did not see an unchanged library: {summary}")
        times.setdefault("flow_later" if i else "flow_first", []).append(seconds)
        summaries.append(summary)
    return {
        "times": times,
        "flow_summary": summaries[-1],
        "flow_own_wall_s": [s["wall_seconds"] for s in summaries],
        "peak_rss_before_flow_mb": rss_before_flow / 2**20,
        "peak_rss_mb": peak_rss() / 2**20,
    }


def cli_env(pycache: Path | None = None) -> dict[str, str]:
    """This environment, with the worktree first on the path, for the CLI runs.

    With ``pycache``, Python writes bytecode as it does by default, into that folder (the
    installed packages stay untouched) even when this environment forbids writing it.
    """
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_cli(db: Path, library: str, log: Path, env: dict[str, str]) -> float:
    """Wall seconds of the whole ``playlista analyze`` command; its output goes to ``log``."""
    command = [
        str(Path(sys.executable).with_name("playlista")),
        "analyze",
        library,
        "--db",
        str(db),
    ]
    with log.open("w") as out:
        seconds, done = timed(lambda: subprocess.run(command, env=env, stdout=out, stderr=out))
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}; see {log}")
    return seconds


def cli_times(db: Path, library: str, workdir: Path, repeat: int) -> dict[str, list[float]]:
    """The command as this environment runs it and, if it forbids bytecode, with bytecode."""
    env = cli_env()
    times = {"cli": [run_cli(db, library, workdir / f"cli-{i}.log", env) for i in range(repeat)]}
    if sys.flags.dont_write_bytecode:
        # Then every process compiles all its imports from source, which an ordinary
        # environment does once: one run fills the cache, the next ones are timed.
        env = cli_env(workdir / "pycache")
        run_cli(db, library, workdir / "cli-warm.log", env)
        times["cli_cached"] = [
            run_cli(db, library, workdir / f"cli-cached-{i}.log", env) for i in range(repeat)
        ]
    return times


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def spread(times: list[float]) -> dict[str, Any]:
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "runs_s": times,
    }


LABELS = {
    "discover": "discover (walk + stat)",
    "plan": "Store.plan + apply_plan (walks too)",
    "flow_first": "flow in-process, first run (*)",
    "flow_later": "flow in-process, later runs",
    "cli": "playlista analyze, whole command",
    "cli_cached": "  same, bytecode cached",
}


def show(figures: dict[str, Any]) -> None:
    files, repeat = figures["parameters"]["files"], figures["parameters"]["repeat"]
    opened = figures["files_opened_under_tree"]
    print(f"\n{files} files, nothing changed; median of {repeat} run(s), first flow run alone")
    print(f"{'stage':36} {'median s':>9} {'min s':>7} {'max s':>7} {'opened':>7}")
    for name, label in LABELS.items():
        if name not in figures["stages"]:
            continue
        s = figures["stages"][name]
        n = opened.get(name.split("_")[0] if name.startswith("flow") else name, "-")
        print(f"{label:36} {s['median_s']:9.2f} {s['min_s']:7.2f} {s['max_s']:7.2f} {n:>7}")
    fresh = " and creates its database" if figures["prefect_home_fresh"] else ""
    print(f"(*) starts Prefect's temporary server{fresh}")
    if not figures["machine"]["writes_bytecode"]:
        print(
            "PYTHONDONTWRITEBYTECODE is set: a process compiles from source whatever the "
            "environment's install did not byte-compile"
        )
    summary = figures["flow_summary"]
    print(
        f"\nflow summary: analysed {summary['analyzed']}, unchanged {summary['unchanged']}, "
        f"new {summary['new']}, changed {summary['changed']}, refreshed {summary['refreshed']}; "
        f"its own wall_seconds {summary['wall_seconds']:.2f}"
    )
    print(
        f"peak RSS of this process: {figures['peak_rss_before_flow_mb']:.0f} MB before the "
        f"flow, {figures['peak_rss_mb']:.0f} MB after"
    )
    verdict = "met" if figures["target_met"] else "MISSED"
    print(
        f"target, rescan under {figures['target_seconds']:.0f} s: {verdict} "
        f"({figures['stages']['cli']['median_s']:.1f} s); "
        f"files under the tree opened: {sum(opened.values())}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="files in the tree")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each stage (median)")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench/results/rescan-tree")
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/rescan.json")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # Set before Prefect is first imported (by the flow stage), as the CLI sets them.
    os.environ.update(PREFECT_ENVIRONMENT, DO_NOT_TRACK="1")
    os.environ["PREFECT_HOME"] = str(workdir / "prefect-home")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    load = os.getloadavg()
    prefect_home_fresh = not Path(os.environ["PREFECT_HOME"]).exists()

    library, db = prepare(workdir, args.files)
    counter = OpenCounter(library)
    with counter.during("control"):  # the hook must see an open, or its zeros mean nothing
        next(Path(library).rglob("*.flac")).read_bytes()
    if counter.counts.pop("control") != 1:
        raise SystemExit("the audit hook did not see a file opened under the tree")
    measured = in_process(library, db, files=args.files, repeat=args.repeat, counter=counter)
    times = measured.pop("times")
    times.update(cli_times(db, library, workdir, args.repeat))

    end_to_end = statistics.median(times["cli"])
    figures: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average": {"start": load, "end": os.getloadavg()},
            "writes_bytecode": not sys.flags.dont_write_bytecode,
        },
        "prefect_home_fresh": prefect_home_fresh,
        "parameters": {"files": args.files, "repeat": args.repeat, "workdir": str(workdir)},
        "stages": {name: spread(t) for name, t in times.items()},
        **measured,
        "files_opened_under_tree": counter.counts,
        "first_opened": counter.first,
        "target_seconds": TARGET_SECONDS,
        "target_met": end_to_end < TARGET_SECONDS,
        "no_unchanged_file_opened": not any(counter.counts.values()),
    }
    show(figures)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2, default=str))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
