"""Fit the weights of playlista's tempo and key estimators on the evaluation set's tuning half.

    .venv/bin/python bench/tune.py EVALSET [--jobs N]

Computes once per file (cached in EVALSET/.cache/) the shared front end's onset periodicities
and semitone energies, then fits ``rhythm.WEIGHTS`` (a softmax over each file's candidate
tempi, maximising the likelihood of the candidate within 4 % of the annotation) and searches
``tonal``'s bass and ending weights (the best mean MIREX score), on the ``tune`` half only
(``scores.split``). Prints the fitted values, to be copied into the modules, and the scores
they give on both halves. Never reads the corpus.
"""

from __future__ import annotations

import argparse
import itertools
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import scores
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from playlista.audio import rhythm, tonal
from playlista.audio.decode import decode
from playlista.audio.frontend import front_end


def cached(entry: dict[str, Any], evalset: Path) -> dict[str, Any]:
    """The file's periodicities and semitone energies, computed once."""
    path = evalset / ".cache" / (entry["id"] + ".npz")
    if not path.exists():
        threadpool_limits(1)
        decoded = decode(str(evalset / entry["file"]))
        y = decoded.samples  # mono at 22.05 kHz
        f = front_end(y=y)
        low, high = rhythm.band_envelopes(f.mel)
        notes = tonal.semitone_map() @ f.S
        path.parent.mkdir(exist_ok=True)
        np.savez(path, full=f.onset_envelope, low=low, high=high, notes=notes.astype(np.float32))
    data = np.load(path)
    periodicity = rhythm.of_envelopes(data["full"], data["low"], data["high"], 22050 / 512)
    return {**entry, "periodicity": periodicity, "notes": data["notes"]}


def tempo_table(files: list[dict[str, Any]]) -> list[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    """Per file: its candidates, their features and the file."""
    table = []
    for f in files:
        p = f["periodicity"]
        candidates = rhythm.candidate_tempi(p)
        table.append(
            (candidates, np.stack([rhythm.candidate_features(p, c) for c in candidates]), f)
        )
    return table


def fit_tempo(table: list[tuple[np.ndarray, np.ndarray, dict[str, Any]]]) -> np.ndarray:
    rows = []
    for candidates, feats, f in table:
        right = [
            i for i, c in enumerate(candidates) if scores.tempo_level(c, f["tempo_bpm"]) == "x1"
        ]
        if right:
            rows.append((feats, right[0]))

    def loss(w: np.ndarray) -> float:
        total = 0.0
        for feats, i in rows:
            s = feats @ w
            total += np.log(np.exp(s - s.max()).sum()) + s.max() - s[i]
        return total / len(rows) + 0.01 * float(w @ w)

    return minimize(loss, rhythm.WEIGHTS.astype(float), method="L-BFGS-B").x


def tempo_scores(table: list[Any], weights: np.ndarray) -> dict[str, float]:
    results = []
    for candidates, feats, f in table:
        best = candidates[int(np.argmax(feats @ weights))]
        p = f["periodicity"]
        results.append(
            scores.tempo_scores(rhythm.refine(p.full, best, p.frame_rate), f["tempo_bpm"])
        )
    return {m: float(np.mean([r[m] for r in results])) for m in ("acc1", "acc2", "acc2_triplet")}


def key_correlations(
    files: list[dict[str, Any]], compression: float, harmonic: float
) -> np.ndarray:
    """Per file, the 24 keys' correlations with its treble, bass and ending profiles
    [shape=(files, 3, 24)]."""
    out = []
    for f in files:
        notes = np.log1p(compression * f["notes"] / max(float(f["notes"].max()), 1e-12))
        ending = tonal._last_sounding(notes, int(tonal.ENDING_SECONDS * 22050 / 512))
        p = tonal.profiles_of(notes.sum(axis=1), ending.sum(axis=1), harmonic)
        out.append([tonal._correlations(x) for x in p])
    return np.array(out)


def key_score(
    files: list[dict[str, Any]], correlations: np.ndarray, bass: float, ending: float
) -> float:
    combined = correlations[:, 0] + bass * correlations[:, 1] + ending * correlations[:, 2]
    total = 0.0
    for f, s in zip(files, combined, strict=True):
        best = int(np.argmax(s))
        total += scores.weighted_score(
            f["key"], f"{tonal.TONICS[best % 12]} {('major', 'minor')[best // 12]}"
        )
    return total / len(files)


def fit_key(keyed: dict[str, list[dict[str, Any]]]) -> None:
    shipped = (tonal.COMPRESSION, tonal.HARMONIC_WEIGHT, tonal.BASS_WEIGHT, tonal.ENDING_WEIGHT)
    results = []
    for compression, harmonic in itertools.product((3.0, 10.0, 30.0), (0.6, 1.0, 1.5, 2.0)):
        corr = key_correlations(keyed["tune"], compression, harmonic)
        for bass, ending in itertools.product((0.5, 1.0, 1.5, 2.0), (0.0, 0.2, 0.4)):
            results.append(
                (
                    key_score(keyed["tune"], corr, bass, ending),
                    (compression, harmonic, bass, ending),
                )
            )
    best = max(results)[1]
    print("tonal COMPRESSION, HARMONIC_WEIGHT, BASS_WEIGHT, ENDING_WEIGHT =", best)
    for h, fs in keyed.items():
        fitted = key_correlations(fs, *best[:2])
        mine = key_correlations(fs, *shipped[:2])
        print(
            f"key {h} ({len(fs)}): shipped {key_score(fs, mine, *shipped[2:]):.3f}, "
            f"fitted {key_score(fs, fitted, *best[2:]):.3f}, "
            f"treble only {key_score(fs, fitted, 0, 0):.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evalset", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", choices=("tempo", "key"))
    args = parser.parse_args()
    entries = json.loads((args.evalset / "manifest.json").read_text())
    with ProcessPoolExecutor(args.jobs) as pool:
        files = list(pool.map(cached, entries, [args.evalset] * len(entries)))
    halves = {h: [f for f in files if scores.split(f["id"]) == h] for h in ("tune", "test")}
    if args.only != "key":
        fit_tempo_and_print(halves)
    if args.only != "tempo":
        fit_key({h: [f for f in fs if f["key"]] for h, fs in halves.items()})


def fit_tempo_and_print(halves: dict[str, list[dict[str, Any]]]) -> None:
    tables = {h: tempo_table([f for f in fs if f["tempo_bpm"]]) for h, fs in halves.items()}
    weights = fit_tempo(tables["tune"])
    print("rhythm.WEIGHTS =", np.array2string(weights, precision=2, separator=", "))
    for h, table in tables.items():
        print(
            f"tempo {h} ({len(table)}): shipped {tempo_scores(table, rhythm.WEIGHTS)}, "
            f"fitted {tempo_scores(table, weights)}"
        )


if __name__ == "__main__":
    main()
