"""What MusiCNN costs on a worker: model load time, CPU per track, resident memory.

    python bench/musicnn.py [CORPUS] [--json FILE]

Loads the worker plugin in this process as a Dask worker would (one thread: TensorFlow's
pools sized to it), then runs both models on every good corpus file with the default patch
cap, from mono 22050 Hz samples as the pipeline hands them over: the CPU time (process time)
of ``musicnn_scores``, front end included, decoding and the 22050 Hz resampling done
beforehand. Prints a table; with ``--json`` also writes the figures.
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
from playlista.models.tagging import musicnn_scores
from playlista.settings import AUDIO_EXTENSIONS, Settings
from playlista.worker import AudioLibraries, rss_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=Path(__file__).parents[2] / "shared/corpus")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rss_before = rss_bytes()
    plugin = AudioLibraries()
    plugin.load()
    rss_loaded = rss_bytes()
    cap = Settings().musicnn_max_patches
    files = sorted(
        p for p in Path(args.corpus, "good").rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS
    )
    per_track = []
    for path in files:
        decoded = decode(str(path))
        mono = decoded.samples.mean(axis=0) if decoded.samples.ndim == 2 else decoded.samples
        y22 = soxr.resample(mono, decoded.sr, 22050, quality="HQ").astype(np.float32)
        started = time.process_time()
        musicnn_scores(y=y22, sr=22050, taggers=plugin.taggers, cap=cap)
        per_track.append(time.process_time() - started)
    figures = {
        "tracks": len(files),
        "patch_cap": cap,
        "plugin_load_s": plugin.load_seconds,
        "model_load_s": plugin.model_load_seconds,
        "cpu_per_track_median_s": statistics.median(per_track),
        "cpu_per_track_max_s": max(per_track),
        "rss_start_mb": rss_before / 2**20,
        "rss_loaded_mb": rss_loaded / 2**20,
        "rss_after_mb": rss_bytes() / 2**20,
    }
    width = max(map(len, figures))
    for name, value in figures.items():
        print(
            f"{name:<{width}}  {value:.3f}"
            if isinstance(value, float)
            else f"{name:<{width}}  {value}"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
