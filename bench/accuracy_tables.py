"""The tables bench/accuracy.py prints: each set's scores and CPU seconds, the evaluation
set by kind of piece, and the files some estimator misses."""

from __future__ import annotations

from typing import Any

import scores

TASKS = ("tempo", "key")


def cpu_per_track(rows: list[dict[str, Any]], name: str, task: str) -> float | None:
    """CPU seconds of ``name``'s ``task`` per 240 s of the audio it ran on."""
    spent = [
        (r["cpu_s"][name][task], r["audio_s"]) for r in rows if task in r["cpu_s"].get(name, {})
    ]
    if not spent:
        return None
    return 240.0 * sum(s for s, _ in spent) / sum(a for _, a in spent)


def report(title: str, rows: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Print one set's summary table; return it with the CPU figures."""
    summary = {name: scores.summarise(rows, name) for name in names}
    cpu = {name: {task: cpu_per_track(rows, name, task) for task in TASKS} for name in names}
    n_tempo = sum(bool(r["tempo_bpm"]) for r in rows)
    n_key = sum(bool(r["key"]) for r in rows)
    recordings = {r["recording"] for r in rows}
    print(
        f"{title}: {len(rows)} files ({len(recordings)} recordings), "
        f"{n_tempo} with a tempo, {n_key} with a key"
    )
    lines = []
    for name in names:
        values = summary[name]
        lines.append(
            [
                name,
                *(_percent(values.get(m)) for m in ("acc1", "acc2", "acc2_triplet")),
                _number(values.get("key_score")),
                _percent(values.get("key_exact")),
                *(_number(cpu[name][task]) for task in TASKS),
            ]
        )
    header = [
        "estimator",
        "Acc1",
        "Acc2",
        "Acc2+3/2",
        "key MIREX",
        "key exact",
        "tempo CPU s",
        "key CPU s",
    ]
    print_table(header, lines)
    return {"summary": summary, "cpu_s_per_4min": cpu}


def report_kinds(rows: list[dict[str, Any]], names: list[str]) -> None:
    kinds = sorted({r["kind"] for r in rows})
    lines = []
    for kind in kinds:
        subset = [r for r in rows if r["kind"] == kind]
        for name in names:
            v = scores.summarise(subset, name)
            if v:
                lines.append(
                    [
                        kind if name == names[0] else "",
                        name,
                        str(v.get("n_tempo", "")),
                        _percent(v.get("acc1")),
                        _percent(v.get("acc2")),
                        str(v.get("n_key", "")),
                        _number(v.get("key_score")),
                    ]
                )
    print("Evaluation set by kind of piece")
    print_table(["kind", "estimator", "tempo n", "Acc1", "Acc2", "key n", "key MIREX"], lines)


def print_misses(rows: list[dict[str, Any]], names: list[str]) -> None:
    """Per-file estimates of the files some estimator gets wrong (Acc1 or a wrong key)."""
    lines = []
    for r in rows:
        cells = [r["estimates"].get(n, {}) for n in names]
        if r["tempo_bpm"] and any(c.get("acc1") is False for c in cells):
            lines.append([r["file"], f"{r['tempo_bpm']:g}", *map(_tempo_cell, cells)])
        if r["key"] and any(c.get("key_exact") is False for c in cells):
            lines.append([r["file"], r["key"], *map(_key_cell, cells)])
    print("Files some estimator misses (tempo: estimate and metrical level; key: estimate, score)")
    print_table(["file", "truth", *names], lines)


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    print()


def _tempo_cell(result: dict[str, Any]) -> str:
    if "level" not in result:
        return ""
    bpm = "none" if result["bpm"] is None else f"{result['bpm']:.1f}"
    return f"{bpm} {result['level'] or '-'}"


def _key_cell(result: dict[str, Any]) -> str:
    return f"{result['key']} {result['key_score']:.1f}" if "key_score" in result else ""


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f} %"
