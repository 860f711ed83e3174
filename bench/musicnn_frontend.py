"""MusiCNN's front end: the chosen patches alone against the whole-track spectrogram.

    python bench/musicnn_frontend.py [--corpus DIR] [--bench-corpus DIR] [--bench-tracks 16]
                                     [--cap 8] [--json FILE]

For corpus and bench-corpus tracks, mixed to mono and resampled to 22050 Hz as the pipeline
hands them over, computes the ``--cap`` patches both ways: ``musicnn_patches`` (each patch's
stretch resampled to 16 kHz and its frames computed alone) and the whole track resampled and
transformed, then indexed. Prints the largest difference of the samples at 16 kHz and of the
log-mel values, and the CPU time of each way per 4-minute track (process time, median of 5).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import soxr

from playlista.audio.decode import decode
from playlista.models.frontend import SR, log_mel_patches, patch_count, patch_start, spread_patches
from playlista.models.tagging import musicnn_patches, resample_stretch, to_mono_16k
from playlista.settings import AUDIO_EXTENSIONS

REPO = Path(__file__).resolve().parents[1]


def whole_track(y22: np.ndarray, cap: int) -> np.ndarray:
    patches = log_mel_patches(y=to_mono_16k(y=y22, sr=22050), sr=SR)
    return patches[spread_patches(len(patches), cap=cap)]


def cpu_seconds(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--bench-corpus", type=Path, default=REPO / ".bench-corpus")
    parser.add_argument("--bench-tracks", type=int, default=16)
    parser.add_argument("--cap", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    good = sorted(p for p in (args.corpus / "good").rglob("*") if p.suffix in AUDIO_EXTENSIONS)
    bench = sorted(p for p in args.bench_corpus.rglob("*") if p.suffix in AUDIO_EXTENSIONS)
    if len(bench) > args.bench_tracks:
        bench = [bench[i] for i in np.linspace(0, len(bench) - 1, args.bench_tracks).astype(int)]
    rows = []
    for path in good + bench:
        decoded = decode(str(path))
        mono = decoded.samples.mean(axis=0) if decoded.samples.ndim == 2 else decoded.samples
        y22 = soxr.resample(mono.astype(np.float32), decoded.sr, 22050, quality="HQ")
        whole16 = to_mono_16k(y=y22, sr=22050)
        n_patches = patch_count(len(whole16))
        if n_patches <= args.cap:
            continue
        sample_diff = 0.0
        for k in spread_patches(n_patches, cap=args.cap):
            start = patch_start(k)
            stretch = resample_stretch(y22, sr=22050, start=start, n16=len(whole16))
            padded = np.pad(whole16, (max(-start, 0), len(stretch)))[max(start, 0) :]
            sample_diff = max(sample_diff, float(np.abs(stretch - padded[: len(stretch)]).max()))
        partial, whole = musicnn_patches(y=y22, sr=22050, cap=args.cap), whole_track(y22, args.cap)
        per_4_min = 240 * 22050 / len(y22)
        rows.append(
            {
                "track": path.name,
                "seconds": len(y22) / 22050,
                "max |samples diff|": sample_diff,
                "max |log-mel diff|": float(np.abs(partial - whole).max()),
                "log-mel values differing": float((partial != whole).mean()),
                # The partial front end costs per patch, whatever the track's length.
                "partial s": cpu_seconds(
                    lambda y22=y22: musicnn_patches(y=y22, sr=22050, cap=args.cap)
                ),
                "whole s per 4 min": per_4_min
                * cpu_seconds(lambda y22=y22: whole_track(y22, args.cap)),
            }
        )
        print(rows[-1], flush=True)
    summary = {
        "tracks": len(rows),
        "max |samples diff|": max(r["max |samples diff|"] for r in rows),
        "max |log-mel diff|": max(r["max |log-mel diff|"] for r in rows),
        "log-mel values differing (mean share)": statistics.mean(
            r["log-mel values differing"] for r in rows
        ),
        "partial CPU s per track (median)": statistics.median(r["partial s"] for r in rows),
        "whole CPU s per 4 min (median)": statistics.median(r["whole s per 4 min"] for r in rows),
    }
    for key, value in summary.items():
        print(f"{key:40} {value:.3g}" if isinstance(value, float) else f"{key:40} {value}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "tracks": rows}, indent=2))


if __name__ == "__main__":
    main()
