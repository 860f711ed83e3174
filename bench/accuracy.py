"""How close tempo and key estimates come to the corpus's annotations, beside library defaults.

    .venv/bin/python bench/accuracy.py [--corpus DIR] [--json FILE] [--only tempo|key]
        [--tempo-method METHOD ...] [--key-profile PROFILE ...]

Every good/ file of the corpus with a tempo or key in manifest.json is decoded once, downmixed
and resampled as ``extract_features`` does, and the same samples go to three estimators (each
asked only for what the file is annotated with):

- playlista: ``features.tempo`` and ``features.key`` on the 44.1 kHz mono signal;
- essentia defaults: ``RhythmExtractor2013()`` (multifeature) and ``KeyExtractor()`` on it;
- librosa defaults: ``feature.tempo`` at 22.05 kHz; librosa has no key estimator, so the usual
  naive baseline stands in: mean ``chroma_cqt`` correlated with the Krumhansl-Kessler major and
  minor profiles rotated over the 12 tonics.

``--tempo-method`` and ``--key-profile`` add playlista with ``TEMPO_METHOD`` or ``KEY_PROFILE``
set otherwise, to compare alternatives. Tempo scores: Accuracy1, an estimate within 4 % of the
annotated BPM; Accuracy2, within 4 % of it times 1, 2, 1/2, 3 or 1/3; and Accuracy2 that also
allows 2/3 and 3/2 (triplet feel, which the corpus MANIFEST names). Key score: the MIREX weighted
score of mir_eval's ``key.weighted_score`` (1 same key, 0.5 a fifth above in the same mode, 0.3
relative, 0.2 parallel, else 0). Totals are over files and over distinct recordings: the six
good/formats/ files (one minute of one song in six containers) count as one recording, scored
by the mean of the six. Prints per-file and summary tables and seconds per estimator; writes
them with machine information to bench/results/accuracy.json (or ``--json FILE``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from unittest import mock

import essentia.standard as es
import librosa
import numpy as np
from playlista.audio.longtrack import channel_mean

from playlista.audio import features
from playlista.audio.decode import decode
from playlista.audio.features import ESSENTIA_SR, LIBROSA_SR
from playlista.audio.sources import KEY_PROFILE, TEMPO_METHOD
from playlista.errors import InvalidInputError

T = TypeVar("T")
TOLERANCE = 0.04
# The first factor an estimate matches names its metrical level in the tables.
LEVELS = {
    "x1": 1.0,
    "x2": 2.0,
    "x1/2": 1 / 2,
    "x3": 3.0,
    "x1/3": 1 / 3,
    "x2/3": 2 / 3,
    "x3/2": 3 / 2,
}
ACC2_LEVELS = ("x1", "x2", "x1/2", "x3", "x1/3")
TEMPO_METHODS = ("degara", "multifeature")
# KeyExtractor's profileType range in essentia 2.1-beta6.
KEY_PROFILES = (
    "bgate", "braw", "diatonic", "edma", "edmm", "gomez", "krumhansl", "noland", "shaath",
    "temperley", "temperley2005", "thpcp", "tonictriad", "weichai",
)  # fmt: skip
FORMATS_GROUP = "good/formats/"
PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
TONIC_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KK_PROFILES = {
    "major": np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
    "minor": np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
}


class Signal(NamedTuple):
    """One file's mono samples at both analysis rates, as ``extract_features`` derives them."""

    y44: np.ndarray
    y22: np.ndarray


@dataclass(frozen=True)
class Estimator:
    """A named pair of estimators; either may be None when it only does the other task."""

    name: str
    tempo: Callable[[Signal], float | None] | None
    key: Callable[[Signal], str | None] | None


@contextmanager
def _constant(name: str, value: str) -> Iterator[None]:
    # features reads TEMPO_METHOD and KEY_PROFILE at call time: patching them for one call gives
    # exactly what playlista would report with sources.py changed, without changing it.
    with mock.patch.object(features, name, value):
        yield


def playlista_tempo(signal: Signal, *, method: str = TEMPO_METHOD) -> float | None:
    with _constant("TEMPO_METHOD", method):
        try:
            return features.tempo(y=signal.y44)[0]
        # extract_features leaves the fields None on these: scored as a miss.
        except (InvalidInputError, RuntimeError):
            return None


def playlista_key(signal: Signal, *, profile: str = KEY_PROFILE) -> str | None:
    with _constant("KEY_PROFILE", profile):
        try:
            tonic, mode, _ = features.key(y=signal.y44)
        except (InvalidInputError, RuntimeError):  # weichai raises on minor keys
            return None
    return f"{tonic} {mode}"


def essentia_tempo(signal: Signal) -> float:
    return float(es.RhythmExtractor2013()(signal.y44)[0])


def essentia_key(signal: Signal) -> str:
    tonic, mode, _ = es.KeyExtractor()(signal.y44)
    return f"{tonic} {mode}"


def librosa_tempo(signal: Signal) -> float:
    return float(librosa.feature.tempo(y=signal.y22, sr=LIBROSA_SR)[0])


def librosa_key(signal: Signal) -> str:
    """Krumhansl-Kessler key of the mean CQT chroma: the best Pearson correlation of 24."""
    chroma = librosa.feature.chroma_cqt(y=signal.y22, sr=LIBROSA_SR).mean(axis=1)
    _, tonic, mode = max(
        (np.corrcoef(chroma, np.roll(profile, tonic))[0, 1], tonic, mode)
        for mode, profile in KK_PROFILES.items()
        for tonic in range(12)
    )
    return f"{TONIC_NAMES[tonic]} {mode}"


def tempo_level(estimate: float | None, truth: float) -> str | None:
    """The first of LEVELS whose multiple of ``truth`` is within 4 % of ``estimate``."""
    if estimate is None:
        return None
    for level, factor in LEVELS.items():
        if abs(estimate - factor * truth) <= TOLERANCE * factor * truth:
            return level
    return None


def parse_key(name: str) -> tuple[int, str]:
    """Pitch class (C = 0) and mode of a key such as 'Eb major' or 'D# minor'."""
    tonic, mode = name.split()
    if tonic[0].upper() not in PITCH_CLASSES or set(tonic[1:]) - {"#", "b"}:
        raise ValueError(f"not a key name: {name!r}")
    if mode not in ("major", "minor"):
        raise ValueError(f"mode must be major or minor: {name!r}")
    return (PITCH_CLASSES[tonic[0].upper()] + tonic.count("#") - tonic.count("b")) % 12, mode


def weighted_score(reference: str, estimate: str | None) -> float:
    """MIREX key score, as mir_eval's ``key.weighted_score`` without descending fifths."""
    if estimate is None:
        return 0.0
    ref_tonic, ref_mode = parse_key(reference)
    est_tonic, est_mode = parse_key(estimate)
    interval = (est_tonic - ref_tonic) % 12
    if est_mode == ref_mode:
        return {0: 1.0, 7: 0.5}.get(interval, 0.0)
    if interval == (9 if ref_mode == "major" else 3):  # relative minor / relative major
        return 0.3
    return 0.2 if interval == 0 else 0.0


def estimators(
    tempo_methods: list[str], key_profiles: list[str], only: str | None
) -> list[Estimator]:
    """The three estimators and the asked-for variants, without the task ``only`` excludes."""
    chosen = [
        Estimator("playlista", playlista_tempo, playlista_key),
        Estimator("essentia defaults", essentia_tempo, essentia_key),
        Estimator("librosa defaults", librosa_tempo, librosa_key),
    ]
    chosen += [
        Estimator(f"playlista tempo_method={m}", partial(playlista_tempo, method=m), None)
        for m in tempo_methods
    ]
    chosen += [
        Estimator(f"playlista key_profile={p}", None, partial(playlista_key, profile=p))
        for p in key_profiles
    ]
    tempo, key = only in (None, "tempo"), only in (None, "key")
    chosen = [Estimator(e.name, e.tempo if tempo else None, e.key if key else None) for e in chosen]
    return [e for e in chosen if e.tempo or e.key]


def annotated(corpus: Path, only: str | None) -> list[dict[str, Any]]:
    """Manifest entries under good/ with the annotation(s) asked for, in file order."""
    wanted = {"tempo": {"tempo_bpm"}, "key": {"key"}, None: {"tempo_bpm", "key"}}[only]
    entries = json.loads((corpus / "manifest.json").read_text())
    return sorted(
        (
            e
            for e in entries
            if e["file"].startswith("good/") and wanted & set(e.get("ground_truth") or {})
        ),
        key=lambda e: e["file"],
    )


def load(path: Path) -> Signal:
    decoded = decode(str(path))
    mono = channel_mean(decoded.samples)
    return Signal(
        y44=features._resample(mono, sr=decoded.sr, target_sr=ESSENTIA_SR),
        y22=features._resample(mono, sr=decoded.sr, target_sr=LIBROSA_SR),
    )


def warm_up(chosen: list[Estimator]) -> None:
    """Run each estimator once on 4 s of clicks and a triad, so that numba's compilation and
    essentia's first set-up are not charged to the first file."""
    t = np.arange(4 * ESSENTIA_SR) / ESSENTIA_SR
    triad = sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0))
    clicks = (np.mod(t, 0.5) < 0.01) * np.sin(2 * np.pi * 2000.0 * t)
    y44 = (0.1 * triad + 0.5 * clicks).astype(np.float32)
    signal = Signal(y44, features._resample(y44, sr=ESSENTIA_SR, target_sr=LIBROSA_SR))
    for estimator in chosen:
        for task in (estimator.tempo, estimator.key):
            if task is not None:
                task(signal)


def evaluate(
    corpus: Path, entries: list[dict[str, Any]], chosen: list[Estimator]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """Per-file estimates and scores, and the seconds each estimator spent on each task."""
    rows = []
    seconds: dict[str, dict[str, float]] = {e.name: {} for e in chosen}
    for i, entry in enumerate(entries, 1):
        print(f"[{i}/{len(entries)}] {entry['file']}", file=sys.stderr, flush=True)
        truth = entry["ground_truth"]
        signal = load(corpus / entry["file"])
        row: dict[str, Any] = {"file": entry["file"], "audio_s": len(signal.y44) / ESSENTIA_SR}
        row |= {"tempo_bpm": truth.get("tempo_bpm"), "key": truth.get("key"), "estimates": {}}
        for estimator in chosen:
            result: dict[str, Any] = {}
            if row["tempo_bpm"] and estimator.tempo:
                bpm = _timed(estimator.tempo, signal, seconds[estimator.name], "tempo")
                level = tempo_level(bpm, row["tempo_bpm"])
                result |= {"bpm": bpm, "level": level, "acc1": level == "x1"}
                result |= {"acc2": level in ACC2_LEVELS, "acc2_triplet": level is not None}
            if row["key"] and estimator.key:
                name = _timed(estimator.key, signal, seconds[estimator.name], "key")
                result |= {"key": name, "key_score": weighted_score(row["key"], name)}
            if result:
                row["estimates"][estimator.name] = result
        rows.append(row)
    return rows, seconds


def _timed(task: Callable[[Signal], T], signal: Signal, seconds: dict[str, float], name: str) -> T:
    started = time.perf_counter()
    value = task(signal)
    seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
    return value


def recording(file: str) -> str:
    return FORMATS_GROUP if file.startswith(FORMATS_GROUP) else file


def summarise(rows: list[dict[str, Any]], name: str) -> dict[str, dict[str, float | int]]:
    """Mean of each score over files and over recordings (a group's score: its files' mean)."""
    summary: dict[str, dict[str, float | int]] = {"files": {}, "recordings": {}}
    for metric in ("acc1", "acc2", "acc2_triplet", "key_score"):
        groups: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            value = row["estimates"].get(name, {}).get(metric)
            if value is not None:
                groups[recording(row["file"])].append(float(value))
        if not groups:
            continue
        per_file = [v for values in groups.values() for v in values]
        per_recording = [float(np.mean(values)) for values in groups.values()]
        count = "n_key" if metric == "key_score" else "n_tempo"
        summary["files"] |= {metric: float(np.mean(per_file)), count: len(per_file)}
        summary["recordings"] |= {metric: float(np.mean(per_recording)), count: len(groups)}
    return summary


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    print()


def print_per_file(rows: list[dict[str, Any]], names: list[str]) -> None:
    tempo_names = [n for n in names if any("bpm" in r["estimates"].get(n, {}) for r in rows)]
    key_names = [n for n in names if any("key" in r["estimates"].get(n, {}) for r in rows)]
    if tempo_names:
        print("Tempo: estimate in BPM and the metrical level it matches within 4 %")
        print("(x1 = Accuracy1; x2 x1/2 x3 x1/3 = Accuracy2; x2/3 x3/2 = triplet only; - = miss)")
        _print_task(rows, tempo_names, "bpm", lambda r: f"{r['tempo_bpm']:g}", _tempo_cell)
    if key_names:
        print("Key: estimate and MIREX weighted score (librosa has no key estimator: its column")
        print("is the naive baseline, mean chroma_cqt against the Krumhansl-Kessler profiles)")
        _print_task(rows, key_names, "key", lambda r: r["key"], _key_cell)


def _print_task(
    rows: list[dict[str, Any]],
    names: list[str],
    field: str,
    truth: Callable[[dict[str, Any]], str],
    cell: Callable[[dict[str, Any]], str],
) -> None:
    lines = []
    for r in rows:
        cells = [r["estimates"].get(n, {}) for n in names]
        if any(field in c for c in cells):
            lines.append([r["file"], truth(r), *map(cell, cells)])
    print_table(["file", "truth", *names], lines)


def _tempo_cell(result: dict[str, Any]) -> str:
    if "bpm" not in result:
        return ""
    bpm = "none" if result["bpm"] is None else f"{result['bpm']:.1f}"
    return f"{bpm} {result['level'] or '-'}"


def _key_cell(result: dict[str, Any]) -> str:
    return f"{result['key']} {result['key_score']:.1f}" if "key" in result else ""


def print_summary(summary: dict[str, Any], seconds: dict[str, dict[str, float]]) -> None:
    print("Summary: Accuracy1, Accuracy2, Accuracy2 also at x2/3 and x3/2, mean key score;")
    print("totals over files, and over recordings (good/formats/ as one, its files' mean)")
    lines = []
    for name, scopes in summary.items():
        for scope, values in scopes.items():
            tempo_n = f"{values['n_tempo']} {scope}" if "n_tempo" in values else ""
            key_n = f"{values['n_key']} {scope}" if "n_key" in values else ""
            cells = [_percent(values.get(m)) for m in ("acc1", "acc2", "acc2_triplet")]
            key = "" if values.get("key_score") is None else f"{values['key_score']:.2f}"
            lines.append([name if scope == "files" else "", tempo_n, *cells, key_n, key])
    print_table(["estimator", "tempo over", "Acc1", "Acc2", "Acc2+3/2", "key over", "key"], lines)
    print("Seconds per estimator (decoding and resampling excluded; the machine may be shared)")
    print_table(
        ["estimator", "tempo s", "key s"],
        [
            [name, *(_seconds(s.get(task)) for task in ("tempo", "key"))]
            for name, s in seconds.items()
        ],
    )


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f} %"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path(__file__).parents[2] / "shared/corpus")
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "accuracy.json"
    )
    parser.add_argument("--only", choices=("tempo", "key"), help="score one task only")
    parser.add_argument(
        "--tempo-method", action="append", default=[], choices=TEMPO_METHODS,
        help=f"also run playlista's tempo with this method (playlista's: {TEMPO_METHOD})",
    )  # fmt: skip
    parser.add_argument(
        "--key-profile", action="append", default=[], choices=KEY_PROFILES,
        help=f"also run playlista's key with this profile (playlista's: {KEY_PROFILE})",
    )  # fmt: skip
    args = parser.parse_args()
    info = machine()
    chosen = estimators(args.tempo_method, args.key_profile, args.only)
    entries = annotated(args.corpus, args.only)
    warm_up(chosen)
    rows, seconds = evaluate(args.corpus, entries, chosen)
    names = [e.name for e in chosen]
    summary = {name: summarise(rows, name) for name in names}
    print_per_file(rows, names)
    print_summary(summary, seconds)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {"machine": info, "files": rows, "summary": summary, "estimator_s": seconds}
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
