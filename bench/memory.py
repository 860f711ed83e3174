"""Peak memory of the flow, a worker and its decoder, by track length up to two hours.

    python bench/memory.py [CORPUS] [--minutes 4,30,120] [--json FILE]

Builds one FLAC file per length in ``bench/results/long/`` (44.1 kHz stereo, real music:
CORPUS's tracks, default ``.bench-corpus/``, one after another) and runs the real flow on
each alone with one worker, sampling the resident memory of every process it starts.
Prints a table; writes the figures to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import soxr
from throughput import REPO, link_tracks, machine, pick_tracks, run_playlista

SR = 44100
MIB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=REPO / ".bench-corpus")
    parser.add_argument("--minutes", default="4,30,120")
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/memory.json")
    args = parser.parse_args()

    sources = [path for path, _ in pick_tracks(args.corpus, 0)]
    rows: list[dict[str, Any]] = []
    for minutes in [float(m) for m in args.minutes.split(",")]:
        long_file = build_long_file(sources, minutes * 60, REPO / "bench/results/long")
        print(f"{minutes:g} min: {long_file.name} ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="playlista-memory-") as work:
            root = link_tracks([long_file], Path(work, "music"))
            figures = run_playlista(root, Path(work, "library.duckdb"), workers=1)
        peaks = figures["peak_rss"]
        rows.append(
            {
                "minutes": minutes,
                "analysed": figures["analysed"],
                "wall_s": figures["wall_s"],
                **{f"{role}_peak_mib": max(p) / MIB for role, p in peaks.items()},
            }
        )
    roles = sorted({key for row in rows for key in row if key.endswith("_peak_mib")})
    print("\n" + f"{'minutes':>8} {'analysed':>9} " + " ".join(f"{r:>22}" for r in roles))
    for row in rows:
        cells = " ".join(f"{row.get(r, float('nan')):>22.0f}" for r in roles)
        print(f"{row['minutes']:>8g} {row['analysed']:>9} {cells}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine(), "runs": rows}, indent=2))
    print(f"wrote {args.json}")


def build_long_file(sources: list[Path], seconds: float, folder: Path) -> Path:
    """A FLAC file of ``seconds`` of music from ``sources``, made once and then reused."""
    target = folder / f"long_{seconds / 60:g}min.flac"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.flac")
    needed = int(seconds * SR)
    with soundfile.SoundFile(partial, "w", SR, 2, format="FLAC", subtype="PCM_16") as out:
        for source in _cycle(sources):
            if needed <= 0:
                break
            y, sr = soundfile.read(source, dtype="float32", always_2d=True)
            y = np.repeat(y, 2, axis=1) if y.shape[1] == 1 else y[:, :2]
            if sr != SR:
                y = soxr.resample(y, sr, SR)
            out.write(y[:needed])
            needed -= len(y)
    partial.rename(target)
    return target


def _cycle(paths: list[Path]) -> Any:
    while True:
        yield from paths


if __name__ == "__main__":
    main()
