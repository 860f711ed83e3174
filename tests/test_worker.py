"""The worker plugin on a real LocalCluster with processes: every worker loaded, once, and warm."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from distributed import Client, LocalCluster

from playlista.errors import WorkerSetupError
from playlista.worker import AudioLibraries, audio_libraries, worker_status

pytestmark = pytest.mark.slow

REQUIRED = {"essentia", "essentia.standard", "librosa", "mutagen", "numpy", "soundfile", "soxr"}


@contextmanager
def local_client(workers: int, env: dict[str, str] | None = None) -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            env=env or {},
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with local_client(2) as client:
        yield client


def test_every_worker_process_has_the_libraries_imported_and_warm(client):
    client.register_plugin(AudioLibraries())
    status = client.run(worker_status)
    assert len(status) == 2
    pids = {s["pid"] for s in status.values()}
    assert len(pids) == 2 and os.getpid() not in pids  # processes, not threads of this one
    for s in status.values():
        assert s["ready"] is True
        assert set(s["modules"]) >= REQUIRED
        assert s["versions"]["essentia"].startswith("2.1b6")
        assert s["versions"]["librosa"] and s["versions"]["libsndfile"]
        assert s["warmup_seconds"] > 0 and s["load_seconds"] >= s["warmup_seconds"]


def test_registering_again_does_not_reload(client):
    client.register_plugin(AudioLibraries())
    first = client.run(worker_status)
    client.register_plugin(AudioLibraries())
    again = client.run(worker_status)
    assert {w: s["load_seconds"] for w, s in first.items()} == {
        w: s["load_seconds"] for w, s in again.items()
    }


def test_warm_worker_analyses_without_paying_the_warm_up(client, corpus):
    from playlista.analysis import analyze_file

    path = str(corpus / "good/rendered/bach_bwv351.flac")

    def analyse_twice() -> tuple[float, float]:
        plugin = audio_libraries()
        first = analyze_file(path, worker=plugin.worker_name)
        second = analyze_file(path, worker=plugin.worker_name)
        return first.elapsed_s, second.elapsed_s

    first, second = client.submit(analyse_twice, pure=False).result()
    # A cold process pays ~3 s of JIT and set-up on its first file; a warm one does not.
    assert first < 1.5 * second + 0.5


def test_task_on_a_worker_without_the_plugin_gets_an_actionable_error():
    with local_client(1) as bare:
        with pytest.raises(WorkerSetupError, match=r"--preload playlista\.preload"):
            bare.submit(audio_libraries, pure=False).result()
        # and the worker did not import the audio libraries by itself
        assert bare.run(lambda: "essentia" in sys.modules) == dict.fromkeys(
            bare.scheduler_info()["workers"], False
        )


def test_outside_a_worker_the_helper_says_so():
    with pytest.raises(WorkerSetupError, match="not one"):
        audio_libraries()


def test_workers_warming_up_together_leave_a_numba_cache_a_new_process_can_load(tmp_path):
    """Two cold workers share one numba cache; the next process must load it, not crash."""
    cache = tmp_path / "numba"
    with local_client(2, env={"NUMBA_CACHE_DIR": str(cache)}) as client:
        client.register_plugin(AudioLibraries())
        assert all(s["ready"] for s in client.run(worker_status).values())
    assert list(cache.rglob("*.nbi")), "the workers wrote no numba cache"
    fresh = subprocess.run(
        [sys.executable, "-c", "from playlista.audio.features import warm_up; warm_up()"],
        env={**os.environ, "NUMBA_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert fresh.returncode == 0, fresh.stderr[-2000:]
