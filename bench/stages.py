"""CPU time of each stage of one track's analysis, in one process, per 4-minute track.

    python bench/stages.py [CORPUS] [--tracks N] [--repeat K] [--json FILE]

Analyses ``--tracks`` files spread over CORPUS (default: the bench corpus) in this process, the
way a worker does (decode, every feature family, both MusiCNN models), ``--repeat`` times
each, and reports each stage's CPU time (``time.process_time``: immune to the machine being
shared, unlike wall time), the least of the repeats, summed over the files and scaled to a
4-minute track. Decoding runs here rather than in the worker's child process, so its cost is
measured too. Prints a table; ``--json`` writes every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
AUDIO_SUFFIXES = {".ogg", ".mp3", ".flac", ".opus"}
TRACK_SECONDS = 240.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=REPO / ".bench-corpus")
    parser.add_argument("--tracks", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-musicnn", action="store_true")
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/stages.json")
    args = parser.parse_args()

    from playlista.audio import features
    from playlista.audio.decode import decode
    from playlista.worker import AudioLibraries

    pool = sorted(p for p in args.corpus.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    paths = [pool[i * len(pool) // args.tracks] for i in range(min(args.tracks, len(pool)))]
    libraries = AudioLibraries()
    libraries.load()
    if libraries.decoder is not None:
        libraries.decoder.close()
    totals: dict[str, float] = {}
    audio = 0.0
    for path in paths:
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            spent = analyse(str(path), decode, features, None if args.no_musicnn else libraries)
            for stage, seconds in spent.items():
                best[stage] = min(seconds, best.get(stage, seconds))
        decoded = decode(str(path), max_seconds=0)
        audio += decoded.seconds
        for stage, seconds in best.items():
            totals[stage] = totals.get(stage, 0.0) + seconds
        print(f"{path.name[:60]:60} {decoded.seconds:7.1f} s {sum(best.values()):6.2f} s cpu")
    scale = TRACK_SECONDS / audio
    print(f"\n{len(paths)} tracks, {audio / 60:.1f} min; CPU seconds per 4-minute track:")
    for stage, seconds in totals.items():
        print(f"  {stage:<24} {seconds * scale:6.3f}")
    total = sum(totals.values()) * scale
    print(f"  {'total':<24} {total:6.3f}  ({1 / total:.2f} four-minute tracks per CPU second)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "tracks": [str(p) for p in paths],
                "audio_seconds": audio,
                "cpu_seconds_per_4min": {k: v * scale for k, v in totals.items()},
            },
            indent=2,
        )
    )


def analyse(
    path: str, decode: Callable[..., Any], features: Any, libraries: Any
) -> dict[str, float]:
    """One file's stages, CPU seconds each, with the analysis cap off (every file whole)."""
    spent: dict[str, float] = {}
    clock = time.process_time()
    decoded = decode(path, max_seconds=0)
    spent["decode"] = time.process_time() - clock
    _, families = features.extract_features(decoded, clock=time.process_time)
    spent.update(families)
    if libraries is not None:
        from playlista.models.tagging import musicnn_scores
        from playlista.settings import Settings

        cap = Settings.model_fields["musicnn_max_patches"].default
        clock = time.process_time()
        musicnn_scores(y=decoded.samples, sr=decoded.sr, taggers=libraries.taggers, cap=cap)
        spent["musicnn"] = time.process_time() - clock
    return spent


if __name__ == "__main__":
    main()
