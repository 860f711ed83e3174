"""Tempo and key scores for bench/accuracy.py: metrical levels, MIREX key weights, totals."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

import numpy as np

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
PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
METRICS = ("acc1", "acc2", "acc2_triplet", "key_score", "key_exact")


def tempo_level(estimate: float | None, truth: float) -> str | None:
    """The first of LEVELS whose multiple of ``truth`` is within 4 % of ``estimate``."""
    if estimate is None:
        return None
    for level, factor in LEVELS.items():
        if abs(estimate - factor * truth) <= TOLERANCE * factor * truth:
            return level
    return None


def tempo_scores(estimate: float | None, truth: float) -> dict[str, Any]:
    level = tempo_level(estimate, truth)
    return {
        "bpm": estimate,
        "level": level,
        "acc1": level == "x1",
        "acc2": level in ACC2_LEVELS,
        "acc2_triplet": level is not None,
    }


def parse_key(name: str) -> tuple[int, str]:
    """Pitch class (C = 0) and mode of a key such as 'Eb major' or 'D# minor'."""
    tonic, mode = name.split()
    if tonic[0].upper() not in PITCH_CLASSES or set(tonic[1:]) - {"#", "b"}:
        raise ValueError(f"not a key name: {name!r}")
    if mode not in ("major", "minor"):
        raise ValueError(f"mode must be major or minor: {name!r}")
    return (PITCH_CLASSES[tonic[0].upper()] + tonic.count("#") - tonic.count("b")) % 12, mode


def weighted_score(reference: str, estimate: str | None) -> float:
    """MIREX key score, as mir_eval's ``key.weighted_score`` without descending fifths:
    1 same key, 0.5 a fifth above in the same mode, 0.3 relative, 0.2 parallel, else 0."""
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


def key_scores(estimate: str | None, truth: str) -> dict[str, Any]:
    score = weighted_score(truth, estimate)
    return {"key": estimate, "key_score": score, "key_exact": score == 1.0}


def split(piece_id: str) -> str:
    """'tune' or 'test': a fixed half of the evaluation set by a hash of the piece's id."""
    return "tune" if hashlib.sha1(piece_id.encode()).digest()[0] % 2 == 0 else "test"


def summarise(rows: list[dict[str, Any]], name: str) -> dict[str, float | int]:
    """Mean of each score over recordings (a recording's score: the mean of its files)."""
    summary: dict[str, float | int] = {}
    for metric in METRICS:
        groups: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            value = row["estimates"].get(name, {}).get(metric)
            if value is not None:
                groups[row["recording"]].append(float(value))
        if groups:
            summary[metric] = float(np.mean([np.mean(v) for v in groups.values()]))
            summary["n_key" if metric.startswith("key") else "n_tempo"] = len(groups)
    return summary
