"""What the loudness stage costs per 4-minute track: BS.1770 loudness, and with the true peak.

    .venv/bin/python bench/loudness.py [CORPUS] [--tracks N] [--runs R] [--json FILE]

Decodes ``N`` tracks spread over the bench corpus (as ``make bench`` picks them) and times, in
CPU seconds of this process (``time.process_time``, one BLAS thread, as a worker runs), the
median of ``R`` runs of each way of measuring, scaled to 240 s of audio:

- ``sosfilt`` : integrated loudness and range with scipy's ``sosfilt`` in float64, the
  K-weighting as it was computed before the block filter;
- ``loudness``: :class:`~playlista.audio.bs1770.LoudnessMeter` (compiled filter), with the
  album histogram;
- ``true peak``: :func:`~playlista.audio.bs1770.true_peak`, 10-s blocks;
- ``true peak 4 s``: the meter fed the 4-s blocks the long-file reader gives it;
- ``every point``: the true peak with every point oversampled (what the skipping saves);
- ``stage``: :func:`~playlista.audio.prepare.prepare_samples`, the pass that decoding runs
  on every block: loudness, histogram, true peak, energy, envelope, mono mix, resampling.

A last row does the same on 4 minutes of stereo pink noise peaking at 0 dBFS, where every
stretch lies near the peak: the true peak's worst case. Writes bench/results/loudness.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.signal

sys.path.insert(0, str(Path(__file__).parent))
from throughput import machine, pick_tracks

from playlista.audio import bs1770, interpolation
from playlista.audio.decode import read_native
from playlista.audio.prepare import loudness_channels, prepare_samples

TRACK_SECONDS = 240.0
STREAM_SECONDS = 4.0


def sosfilt_loudness(channels: np.ndarray, sr: int) -> tuple[float | None, float | None]:
    """Loudness with the K-weighting through float64 ``sosfilt``, 10 s at a time."""
    sos, step = bs1770.k_weighting(sr), round(0.1 * sr)
    state = np.zeros((sos.shape[0], channels.shape[0], 2))
    chunk, steps = 100 * step, []
    for start in range(0, channels.shape[1], chunk):
        block = channels[:, start : start + chunk].astype(np.float64)
        weighted, state = scipy.signal.sosfilt(sos, block, axis=-1, zi=state)
        power = np.einsum("cn,cn->n", weighted, weighted)
        steps.append(power[: power.size // step * step].reshape(-1, step).sum(axis=1))
    momentary = bs1770._block_means(np.concatenate(steps), step, bs1770.MOMENTARY_SECONDS)
    return bs1770._gated_loudness(momentary, bs1770.RELATIVE_GATE_LU), None


def streamed_peak(y: np.ndarray, sr: int) -> float | None:
    meter = bs1770.TruePeakMeter(channels=y.shape[0])
    size = int(STREAM_SECONDS * sr)
    for start in range(0, y.shape[1], size):
        meter.feed(y[:, start : start + size])
    return meter.dbtp


def every_point(y: np.ndarray, sr: int) -> float:
    """The true peak with every point oversampled, 10 s at a time."""
    size = 10 * sr
    chunks = (y[:, i : i + size] for i in range(0, y.shape[1], size))
    return max(interpolation.every_point_peak(chunk) for chunk in chunks)


def ways(y: np.ndarray, sr: int) -> dict[str, Callable[[], object]]:
    channels = loudness_channels(y)
    return {
        "sosfilt": lambda: sosfilt_loudness(channels, sr),
        "loudness": lambda: bs1770.LoudnessMeter.of(channels, sr=sr).histogram(),
        "true peak": lambda: bs1770.true_peak(y, sr),
        "true peak 4 s": lambda: streamed_peak(y, sr),
        "every point": lambda: every_point(y, sr),
        "stage": lambda: prepare_samples(y, sr=sr),
    }


def cpu_seconds(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times)


def pink_noise(seconds: float, sr: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    n = int(seconds * sr)
    spectrum = np.fft.rfft(rng.standard_normal((2, n)), axis=1)
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.shape[1]), 1))
    y = np.fft.irfft(spectrum, n, axis=1)
    return (y / np.abs(y).max()).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, nargs="?", default=Path(".bench-corpus"))
    parser.add_argument("--tracks", type=int, default=24)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "loudness.json"
    )
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    tracks = pick_tracks(args.corpus, args.tracks)
    signals = [(str(p), lambda p=p: read_native(str(p))) for p, _ in tracks]
    for name, load in [*signals, ("pink noise, 0 dBFS peak", None)]:
        if load is None:
            y, sr = pink_noise(TRACK_SECONDS, 44100), 44100
        else:
            y, sr = load()
        scale = TRACK_SECONDS / (y.shape[1] / sr)
        costs = {way: cpu_seconds(fn, args.runs) * scale for way, fn in ways(y, sr).items()}
        rows.append({"track": name, "seconds": y.shape[1] / sr, "sr": sr, "per_240s": costs})
        print(
            f"{Path(name).name[:34]:34} {y.shape[1] / sr:6.0f}s "
            + " ".join(f"{way} {c:.3f}" for way, c in costs.items()),
            flush=True,
        )
    music = [r["per_240s"] for r in rows[:-1]]
    print(f"\nCPU seconds per 240 s of audio, median over {len(music)} tracks (max), one core:")
    for way in rows[0]["per_240s"]:  # type: ignore[union-attr]
        values = [m[way] for m in music]  # type: ignore[index]
        worst = rows[-1]["per_240s"][way]  # type: ignore[index]
        print(
            f"  {way:14} {statistics.median(values):.3f} ({max(values):.3f})"
            f"   pink noise {worst:.3f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
