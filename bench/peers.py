"""The tools playlista is measured beside, each run per file in a pool of fresh processes.

- **bliss**: the PyPI ``bliss-audio`` wheel, ``Song(path)``;
- **essentia**: ``essentia.standard.MusicExtractor()``, default profile;
- **librosa**: a naive script: ``load``, ``beat_track``, ``chroma_cqt``, ``mfcc``, spectral
  centroid and RMS.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def bliss_setup() -> Any:
    from bliss_audio import Song

    return Song


def bliss_one(song: Any, path: str) -> None:
    song(path)


def essentia_setup() -> Any:
    import essentia

    essentia.log.infoActive = False
    essentia.log.warningActive = False
    import essentia.standard as es

    return es.MusicExtractor()


def essentia_one(extractor: Any, path: str) -> None:
    extractor(path)


def librosa_setup() -> Any:
    import librosa

    return librosa


def librosa_warm_up() -> None:
    """Fill librosa's numba cache once, before the pool's processes read it all at once.

    Processes compiling into one cache at the same time can leave it corrupt (seen here:
    a segmentation fault in ``beat_track`` in every later process).
    """
    import numpy as np

    librosa = librosa_setup()
    noise = np.random.default_rng(0).standard_normal(5 * 22050).astype(np.float32)
    librosa.beat.beat_track(y=noise, sr=22050)


def librosa_one(librosa: Any, path: str) -> None:
    y, sr = librosa.load(path)
    librosa.beat.beat_track(y=y, sr=sr)
    librosa.feature.chroma_cqt(y=y, sr=sr).mean(axis=1)
    librosa.feature.mfcc(y=y, sr=sr).mean(axis=1)
    librosa.feature.spectral_centroid(y=y, sr=sr).mean()
    librosa.feature.rms(y=y).mean()


PEERS: dict[str, tuple[Callable[[], Any], Callable[[Any, str], None]]] = {
    "bliss": (bliss_setup, bliss_one),
    "essentia": (essentia_setup, essentia_one),
    "librosa": (librosa_setup, librosa_one),
}
_state: dict[str, Any] = {}


def _pool_init(tool: str) -> None:
    os.environ.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    started = time.perf_counter()
    _state["handle"] = PEERS[tool][0]()
    _state["analyse"] = PEERS[tool][1]
    _state["setup_s"] = time.perf_counter() - started


def _pool_one(path: str) -> tuple[str, float, str | None, float]:
    started = time.perf_counter()
    try:
        _state["analyse"](_state["handle"], path)
        error = None
    except Exception as exc:  # a peer that cannot read a file: counted, not fatal
        error = f"{type(exc).__name__}: {exc}"[:200]
    return path, time.perf_counter() - started, error, _state["setup_s"]


def _pool_map(tool: str, paths: Sequence[str], processes: int, done: dict[str, Any]) -> list[str]:
    """Fill ``done`` with each file's outcome; return the files whose process died under them."""
    broken = []
    with ProcessPoolExecutor(
        processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_pool_init,
        initargs=(tool,),
    ) as pool:
        futures = {pool.submit(_pool_one, path): path for path in paths}
        for future in as_completed(futures):
            try:
                done[futures[future]] = future.result()
            except BrokenProcessPool:
                broken.append(futures[future])
    return broken


def run_pool(tool: str, paths: Sequence[str], *, processes: int) -> dict[str, Any]:
    """Analyse ``paths`` with ``PEERS[tool]`` in fresh processes, one file per call.

    Files whose process dies under them go round again; a file under two dead processes
    is tried alone, and counted as failed if its process dies once more.
    """
    os.environ["NUMBA_CACHE_DIR"] = str(REPO / "bench/results/numba-cache")
    if tool == "librosa":
        librosa_warm_up()
    started = time.perf_counter()
    done: dict[str, tuple[str, float, str | None, float]] = {}
    strikes: Counter[str] = Counter()
    pending = list(paths)
    while pending:
        alone = [p for p in pending if strikes[p] >= 2]
        broken = _pool_map(tool, alone[:1] or pending, 1 if alone else processes, done)
        strikes.update(broken)
        if alone and broken:
            done[alone[0]] = (alone[0], 0.0, "its process died on this file", 0.0)
        pending = [p for p in pending if p not in done]
    wall = time.perf_counter() - started
    failed = [(p, e) for p, _, e, _ in done.values() if e]
    return {
        "wall_s": wall,
        "steady_s": sum(s for _, s, _, _ in done.values()) / processes,
        "setup_s": max(s for *_, s in done.values()),
        "analysed": len(paths) - len(failed),
        "failed": len(failed),
        "failures": failed,
        "processes_died": sum(strikes.values()),
    }
