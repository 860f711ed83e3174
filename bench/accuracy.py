"""How close tempo and key estimates come to annotations, beside Essentia's defaults.

    .venv/bin/python bench/accuracy.py [--corpus DIR] [--evalset DIR] [--jobs N] [--json FILE]
        [--only tempo|key] [--librosa] [--tempo-method METHOD ...] [--key-profile PROFILE ...]

Two sets: the annotated good/ files of the corpus (``--corpus``, manifest.json), and the
evaluation set that ``make bench-evalset`` renders (``--evalset``, its manifest.json; see
bench/evalset/SOURCES.md). Each file is decoded once and downmixed; the same samples, resampled
once to 44.1 and once to 22.05 kHz, and the shared 22.05 kHz front end
(``playlista.audio.frontend``), go to every estimator, each asked only for what the file is
annotated with:

- essentia defaults: ``RhythmExtractor2013()`` (multifeature) and ``KeyExtractor()``, 44.1 kHz;
- playlista before: what playlista computed up to analyser version 2, essentia's
  ``RhythmExtractor2013(method="degara")`` and ``KeyExtractor(profileType="bgate")``, 44.1 kHz;
- playlista: ``features.tempo`` and ``features.key`` on the shared front end, as the pipeline
  computes them;
- with ``--librosa``: ``feature.tempo``, and mean ``chroma_cqt`` against Krumhansl-Kessler.

Tempo: Accuracy1 (within 4 % of the annotation), Accuracy2 (also at x2, x1/2, x3, x1/3), and
Accuracy2 with x2/3 and x3/2. Key: MIREX weighted score and the share of exact keys. Totals are
over recordings (the corpus's six good/formats/ files are one, scored by their mean). The
evaluation set is also scored on its two halves (``scores.split``: tuning and held-out test).
CPU seconds per 4-minute track: process CPU time of each estimator call, summed, over the
audio it ran on, times 240 (BLAS on one thread). With ``--cache FILE``, the estimates and CPU
seconds of Essentia's defaults and playlista's current estimators (code this repository does
not change) are kept in FILE per file, size and mtime, and reused by later runs. Writes every
per-file estimate to bench/results/accuracy.json (or ``--json FILE``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scores
import soxr
from accuracy_estimators import (
    ESSENTIA_SR,
    KEY_PROFILES,
    LIBROSA_SR,
    TEMPO_METHODS,
    Estimator,
    Signal,
    estimators,
)
from accuracy_tables import TASKS, print_misses, report, report_kinds
from threadpoolctl import threadpool_limits

from playlista.audio.decode import read_native
from playlista.audio.frontend import front_end
from playlista.audio.prepare import channel_mean

FORMATS_GROUP = "good/formats/"


def corpus_entries(corpus: Path) -> list[dict[str, Any]]:
    """The corpus's good/ files with a tempo or a key, in file order."""
    entries = json.loads((corpus / "manifest.json").read_text())
    return sorted(
        (
            {
                "file": e["file"],
                "path": str(corpus / e["file"]),
                "recording": FORMATS_GROUP if e["file"].startswith(FORMATS_GROUP) else e["file"],
                "tempo_bpm": e["ground_truth"].get("tempo_bpm"),
                "key": e["ground_truth"].get("key"),
            }
            for e in entries
            if e["file"].startswith("good/") and {"tempo_bpm", "key"} & set(e["ground_truth"] or {})
        ),
        key=lambda e: e["file"],
    )


def evalset_entries(evalset: Path) -> list[dict[str, Any]]:
    """The evaluation set's files, each with its kind and its half (tune or test)."""
    entries = json.loads((evalset / "manifest.json").read_text())
    return [
        {
            "file": e["file"],
            "path": str(evalset / e["file"]),
            "recording": e["file"],
            "tempo_bpm": e["tempo_bpm"],
            "key": e["key"],
            "kind": e["kind"],
            "split": scores.split(e["id"]),
        }
        for e in entries
        if e["tempo_bpm"] or e["key"]
    ]


def load(path: str) -> tuple[Signal, float]:
    """The file's Signal and the CPU seconds of its front end (decoding excluded)."""
    native, sr = read_native(path)
    mono = channel_mean(native)
    y44 = _resample(mono, sr, ESSENTIA_SR)
    y22 = _resample(mono, sr, LIBROSA_SR)
    started = time.process_time()
    front = front_end(y=y22)
    return Signal(y44, y22, front), time.process_time() - started


_CHOSEN: list[Estimator] = []
# Estimates (and their CPU seconds) of estimators whose code this repository does not change,
# by cache_key(): kept across runs with --cache, so that a run after a change to playlista's
# new estimators, or after more files were rendered, only computes what is new.
_CACHE: dict[str, tuple[Any, float]] = {}
CACHEABLE = ("essentia defaults", "playlista before")


def _resample(y: np.ndarray, sr: float, target: float) -> np.ndarray:
    """Float32 samples at ``target`` Hz: soxr's high quality, as the pipeline resamples."""
    if sr == target:
        return np.ascontiguousarray(y, dtype=np.float32)
    return np.ascontiguousarray(soxr.resample(y, sr, target), dtype=np.float32)


def cache_key(name: str, task: str, path: str) -> str:
    stat = os.stat(path)
    return f"{name}|{task}|{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}"


def read_cache(path: Path | None) -> dict[str, tuple[Any, float]]:
    if path is None or not path.exists():
        return {}
    lines = (json.loads(line) for line in path.read_text().splitlines() if line)
    return {key: (estimate, cpu) for key, estimate, cpu in lines}


def _start_worker(args: argparse.Namespace) -> None:
    """Build the estimators and run each once on 4 s of clicks and a triad, so that numba's
    compilation and essentia's first set-up are not charged to the first file."""
    threadpool_limits(1)  # BLAS on one thread: CPU seconds are then one core's
    _CHOSEN[:] = estimators(args)
    _CACHE.update(read_cache(args.cache))
    t = np.arange(4 * ESSENTIA_SR) / ESSENTIA_SR
    triad = sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0))
    clicks = (np.mod(t, 0.5) < 0.01) * np.sin(2 * np.pi * 2000.0 * t)
    y44 = (0.1 * triad + 0.5 * clicks).astype(np.float32)
    y22 = _resample(y44, ESSENTIA_SR, LIBROSA_SR)
    signal = Signal(y44, y22, front_end(y=y22))
    for estimator in _CHOSEN:
        for task in (estimator.tempo, estimator.key):
            if task is not None:
                task(signal)


def evaluate(entry: dict[str, Any]) -> dict[str, Any]:
    """One file's estimates and scores, and the CPU seconds of each estimator and task."""
    signal, front_s = load(entry["path"])
    row = {k: v for k, v in entry.items() if k != "path"}
    row |= {"audio_s": len(signal.y22) / LIBROSA_SR, "front_end_s": front_s}
    row |= {"estimates": {}, "cpu_s": {}, "fresh": []}
    for estimator in _CHOSEN:
        result: dict[str, Any] = {}
        cpu: dict[str, float] = {}
        for task, truth, score in (
            ("tempo", entry["tempo_bpm"], scores.tempo_scores),
            ("key", entry["key"], scores.key_scores),
        ):
            estimate_of = getattr(estimator, task)
            if truth and estimate_of:
                key = cache_key(estimator.name, task, entry["path"])
                if key in _CACHE:
                    estimate, cpu[task] = _CACHE[key]
                else:
                    started = time.process_time()
                    estimate = estimate_of(signal)
                    cpu[task] = time.process_time() - started
                    if estimator.name in CACHEABLE:
                        row["fresh"].append([key, estimate, cpu[task]])
                result |= score(estimate, truth)
        if result:
            row["estimates"][estimator.name] = result
            row["cpu_s"][estimator.name] = cpu
    return row


def evaluate_all(entries: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    def progress(i: int, row: dict[str, Any]) -> dict[str, Any]:
        print(f"[{i}/{len(entries)}] {row['file']}", file=sys.stderr, flush=True)
        if args.cache is not None and row["fresh"]:
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            with args.cache.open("a") as out:
                out.writelines(json.dumps(line) + "\n" for line in row["fresh"])
        del row["fresh"]
        return row

    if args.jobs == 1:
        _start_worker(args)
        return [progress(i, evaluate(e)) for i, e in enumerate(entries, 1)]
    with ProcessPoolExecutor(args.jobs, initializer=_start_worker, initargs=(args,)) as pool:
        return [progress(i, r) for i, r in enumerate(pool.map(evaluate, entries), 1)]


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    models = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
        if line.startswith("model name")
    ]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": models[0] if models else platform.processor(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        **{name: importlib.metadata.version(name) for name in ("essentia", "librosa", "numpy")},
    }


def parse_args() -> argparse.Namespace:
    here = Path(__file__).parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=here.parents[1] / "shared/corpus")
    parser.add_argument("--evalset", type=Path, help="the folder make bench-evalset filled")
    parser.add_argument("--jobs", type=int, default=1, help="files analysed in parallel")
    parser.add_argument("--json", type=Path, default=here / "results" / "accuracy.json")
    parser.add_argument(
        "--cache", type=Path, help="a file of essentia's estimates (defaults and before), reused"
    )
    parser.add_argument(
        "--shard",
        default="0/1",
        help="K/N: evaluate every N-th file from the K-th (fills --cache"
        " from several processes; the tables then cover that share only)",
    )
    parser.add_argument("--only", choices=TASKS, help="score one task only")
    parser.add_argument("--librosa", action="store_true", help="add librosa's defaults")
    parser.add_argument(
        "--tempo-method",
        action="append",
        default=[],
        choices=TEMPO_METHODS,
        help="also run essentia's RhythmExtractor2013 with this method",
    )
    parser.add_argument(
        "--key-profile",
        action="append",
        default=[],
        choices=KEY_PROFILES,
        help="also run essentia's KeyExtractor with this profile",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    info = machine()
    names = [e.name for e in estimators(args) if e.tempo or e.key]
    sets = {"corpus": corpus_entries(args.corpus)}
    if args.evalset:
        sets["evalset"] = evalset_entries(args.evalset)
    k, n = (int(x) for x in args.shard.split("/"))
    sets = {name: entries[k::n] for name, entries in sets.items()}
    rows = evaluate_all([e for entries in sets.values() for e in entries], args)
    n_corpus = len(sets["corpus"])
    by_set = {"corpus": rows[:n_corpus], **({"evalset": rows[n_corpus:]} if args.evalset else {})}
    result: dict[str, Any] = {"machine": info, "sets": {}}
    print_misses(by_set["corpus"], names)
    result["sets"]["corpus"] = report("Corpus", by_set["corpus"], names)
    if args.evalset:
        evalset = by_set["evalset"]
        report_kinds(evalset, names)
        result["sets"]["evalset"] = report("Evaluation set", evalset, names)
        for half in ("tune", "test"):
            subset = [r for r in evalset if r["split"] == half]
            result["sets"][f"evalset_{half}"] = report(
                f"Evaluation set, {half} half", subset, names
            )
    front = [r["front_end_s"] / r["audio_s"] * 240 for r in rows]
    print(
        f"Shared front end (STFT, mel, onset envelope): {np.median(front):.3f} CPU s per "
        "4-minute track (median over files), not charged to any estimator"
    )
    result["front_end_cpu_s_per_4min"] = float(np.median(front))
    result["files"] = by_set
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
