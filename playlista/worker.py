"""Load the audio libraries once per Dask worker process, and reach them from tasks.

:class:`AudioLibraries` is a ``distributed.WorkerPlugin``: registered on a client (or given to
``dask worker --preload playlista.preload``), its ``setup`` imports essentia (before anything
that may import TensorFlow: essentia's wheels bundle their own and the process dies if the
order is reversed), librosa, mutagen, soundfile and soxr, runs the whole feature extraction
once on a synthetic signal so that numba's JIT and essentia's algorithm set-up are paid
there and not on the first file, then imports TensorFlow with its thread pools sized to the
worker, loads both MusiCNN models and runs them once, and records the libraries' versions.
It also starts the worker's :class:`~playlista.audio.isolate.DecoderProcess`, the child
process that files are decoded in, and stops it in ``teardown``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from distributed import WorkerPlugin, get_worker

from playlista.checkout import on_path
from playlista.errors import WorkerSetupError
from playlista.jit import cache_lock

if TYPE_CHECKING:
    from playlista.audio.isolate import DecoderProcess

log = logging.getLogger(__name__)

PLUGIN_NAME = "playlista-audio"

# Read once, when TensorFlow is imported. oneDNN's kernels (which TensorFlow leaves off on CPUs
# without AVX-512) run MusiCNN's XLA function 2x faster here (bench/musicnn_runtimes.py).
TENSORFLOW_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "1"}


class AudioLibraries(WorkerPlugin):
    """Imports and warms the audio libraries and the MusiCNN models once per worker process."""

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self) -> None:
        self.ready = False
        self.versions: dict[str, str] = {}
        self.pid: int | None = None
        self.load_seconds: float | None = None
        self.warmup_seconds: float | None = None
        self.worker_name = "local"
        self.loads = 0
        self.threads = 1
        self.taggers: Any = None  # playlista.models.fused.MusicnnModels, once loaded
        self.model_load_seconds: float | None = None
        self.decoder: DecoderProcess | None = None

    async def setup(self, worker: Any) -> None:
        on_path()  # tasks arrive as references to the checkout's ``tasks`` modules
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}"
        self.threads = max(1, int(getattr(worker.state, "nthreads", 1)))
        # The imports and the warm-up take seconds: keep the worker's event loop (and its
        # heartbeats to the scheduler) running meanwhile.
        await asyncio.get_running_loop().run_in_executor(None, self.load)

    def load(self) -> None:
        """Import and warm the libraries in this process; safe to call again."""
        if self.ready:
            return
        started = time.perf_counter()
        self._import_and_warm()
        from playlista.audio.isolate import DecoderProcess

        self.decoder = DecoderProcess()
        self.decoder.start()  # now, so that the first file does not wait for it
        self.pid = os.getpid()
        self.loads += 1
        self.load_seconds = time.perf_counter() - started
        self.ready = True
        log.info(
            "audio libraries loaded in %.1f s (warm-up %.1f s) on pid %d: %s",
            self.load_seconds,
            self.warmup_seconds,
            self.pid,
            self.versions,
        )

    def teardown(self, worker: Any) -> None:
        if self.decoder is not None:
            self.decoder.close()

    def _import_and_warm(self) -> None:
        import essentia  # first: see the module docstring

        essentia.log.infoActive = False
        essentia.log.warningActive = False
        import av  # noqa: F401
        import essentia.standard
        import librosa  # noqa: F401
        import mutagen  # noqa: F401
        import numpy  # noqa: F401
        import soundfile
        import soxr  # noqa: F401

        from playlista.audio import features

        with cache_lock():  # the compiled loops: see playlista.jit
            self.warmup_seconds = features.warm_up()
        self._load_models()
        self.versions = {
            name: importlib.metadata.version(name)
            for name in (
                "av",
                "essentia",
                "librosa",
                "mutagen",
                "numpy",
                "soundfile",
                "soxr",
                "tensorflow-cpu",
            )
        }
        self.versions["libsndfile"] = soundfile.__libsndfile_version__

    def _load_models(self) -> None:
        """TensorFlow, with its pools sized to this worker's threads, and the MusiCNN models."""
        started = time.perf_counter()
        for key, value in TENSORFLOW_ENVIRONMENT.items():
            os.environ.setdefault(key, value)
        with _native_stderr_silenced():  # TensorFlow's start-up banner ignores the level
            import tensorflow as tf

        # Called before TensorFlow starts its runtime; a worker with one thread must not
        # run one TensorFlow thread per core beside the other workers.
        tf.config.threading.set_intra_op_parallelism_threads(self.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from playlista.models.fused import MusicnnModels
        from playlista.models.tagging import warm_up

        self.taggers = MusicnnModels.load(jit_compile=True)  # both models, one XLA function
        warm_up(self.taggers)
        self.model_load_seconds = time.perf_counter() - started

    def status(self) -> dict[str, Any]:
        """What a test or a person may ask of a worker: is it loaded, what, and how fast."""
        import sys

        return {
            "ready": self.ready,
            "pid": self.pid,
            "loads": self.loads,
            "worker": self.worker_name,
            "versions": dict(self.versions),
            "load_seconds": self.load_seconds,
            "warmup_seconds": self.warmup_seconds,
            "model_load_seconds": self.model_load_seconds,
            "models": sorted(self.taggers.names) if self.taggers is not None else [],
            "decoder_pid": self.decoder.pid if self.decoder else None,
            "decoder_start_seconds": self.decoder.start_seconds if self.decoder else None,
            "rss_bytes": rss_bytes(),
            "modules": sorted(
                m
                for m in (
                    "av",
                    "essentia",
                    "essentia.standard",
                    "librosa",
                    "mutagen",
                    "numpy",
                    "soundfile",
                    "soxr",
                    "tensorflow",
                )
                if m in sys.modules
            ),
        }


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send what C++ code writes to file descriptor 2 to /dev/null meanwhile."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def rss_bytes() -> int:
    """This process's resident set size."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def audio_libraries() -> AudioLibraries:
    """The plugin of the worker this task runs on.

    Raises
    ------
    WorkerSetupError
        Not on a Dask worker, or the worker was started without the plugin.
    """
    try:
        worker = get_worker()
    except ValueError as exc:
        raise WorkerSetupError(
            "playlista's analysis tasks run on Dask workers; this is not one"
        ) from exc
    plugin = worker.plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, AudioLibraries) or not plugin.ready:
        raise WorkerSetupError(
            f"worker {worker.address} has no loaded {PLUGIN_NAME!r} plugin: register it with "
            "client.register_plugin(playlista.worker.AudioLibraries()) or start the worker "
            "with `dask worker SCHEDULER --preload playlista.preload`"
        )
    return plugin


def worker_status(dask_worker: Any = None) -> dict[str, Any]:
    """Run on each worker with ``client.run(worker_status)``: the plugin's status."""
    plugin = (dask_worker or get_worker()).plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, AudioLibraries):
        return {"ready": False, "pid": os.getpid()}
    return plugin.status()
