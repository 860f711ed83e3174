"""What decoding in a child process costs: its start-up, and the time added per file.

    python bench/decoder_process.py [CORPUS]

Prints the child's start-up (interpreter, numpy, soundfile and essentia imports) and, per
file, the median time to decode in this process and through the child, side by side.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from playlista.audio.decode import decode
from playlista.audio.isolate import DecoderProcess

CORPUS = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[2] / "shared/corpus")
FILES = [
    "good/fof/war_of_freedom_backing.ogg",
    "good/games/0ad_red_dawn.ogg",
    "good/games/warzone2100_menu.opus",
    "good/games/asc_machine_wars.mp3",
    "good/formats/war_of_freedom_60s.m4a",
    "good/rendered/boogi_marabi.flac",
]
RUNS = 5


def median_seconds(fn: Callable[[], object], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    starts = []
    for _ in range(RUNS):
        with DecoderProcess() as child:
            child.start()
            assert child.start_seconds is not None
            starts.append(child.start_seconds)
    print(
        f"child start-up: median {statistics.median(starts):.2f} s, "
        f"min {min(starts):.2f} s, max {max(starts):.2f} s over {RUNS}"
    )
    print(f"{'file':40} {'audio s':>8} {'MB':>6} {'in-process':>11} {'child':>8} {'added':>8}")
    with DecoderProcess() as child:
        child.start()
        for part in FILES:
            path = str(CORPUS / part)
            decoded = decode(path)  # also warms the OS page cache and the decoders
            child.decode(path, timeout=600)
            here = median_seconds(lambda path=path: decode(path))
            there = median_seconds(lambda path=path: child.decode(path, timeout=600))
            print(
                f"{part:40} {decoded.seconds:8.1f} {decoded.samples.nbytes / 1e6:6.1f} "
                f"{here * 1000:9.0f}ms {there * 1000:6.0f}ms {(there - here) * 1000:+6.0f}ms "
                f"({(there - here) / here:+.0%})"
            )


if __name__ == "__main__":
    main()
