"""Start or join the Dask cluster that runs the analysis, with the worker plugin registered."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from distributed import Client, KilledWorker, LocalCluster
from distributed.client import FutureCancelledError
from distributed.comm import CommClosedError, connect

from playlista.errors import WorkerSetupError
from playlista.settings import PREFECT_ENVIRONMENT, Settings
from playlista.worker import AudioLibraries

PRELOAD_MODULE = "playlista.preload"

log = logging.getLogger(__name__)

# What a task's future raises when the worker under it died or the connection to it was lost:
# the task did not fail, its worker did, and it may pass elsewhere. Anything else a task
# raises is a bug (known per-file errors come back as records, never raised).
WORKER_LOST: tuple[type[Exception], ...] = (KilledWorker, CommClosedError, FutureCancelledError)

# One thread per worker process, and every native pool inside it sized to match: two
# workers on two cores must not each start two BLAS or numba threads.
_THREAD_LIMITS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class ClusterInfo:
    """Where the cluster is: its scheduler, its dashboard, how many workers it may have, how
    many it had when the run began (fewer, for a local cluster that scales), and the seconds
    it took to start or join."""

    address: str
    dashboard: str | None
    workers: int
    started: int
    start_seconds: float


def worker_environment(api_url: str | None) -> dict[str, str]:
    """Environment for spawned workers: the flow's Prefect API, quiet logging, thread limits."""
    env = {**_THREAD_LIMITS, **PREFECT_ENVIRONMENT}
    if api_url:
        # Without it every worker process would start a temporary Prefect server of its own.
        env["PREFECT_API_URL"] = api_url
    return env


@contextmanager
def analysis_cluster(
    *,
    address: str | None,
    workers: int | None,
    min_workers: int | None = None,
    max_workers: int | None = None,
    host: str = "127.0.0.1",
    api_url: str | None = None,
    roots: Sequence[str] = (),
) -> Iterator[ClusterInfo]:
    """Join the cluster at ``address``, or start a local one.

    The local cluster has ``workers`` processes, or, when ``max_workers`` is given, scales
    between ``min_workers`` and ``max_workers`` with the load (Dask's adaptive scaling).
    Every worker has the :class:`AudioLibraries` plugin loaded before it takes a task: local
    workers, including those adaptive scaling starts later, preload ``playlista.preload``
    (registering the plugin from the client instead races with workers that are still
    joining); on an existing cluster the plugin is registered, which workers started with
    the preload module already have and so do not load again. Workers of an existing
    cluster must see ``roots`` at the same paths as this process: one that does not is
    reported here, before any work is sent.
    """
    clock = time.perf_counter()
    if address:
        with Client(address) as client:
            client.register_plugin(AudioLibraries())
            _check_roots_visible(client, roots)
            n = len(client.scheduler_info()["workers"])
            yield ClusterInfo(address, client.dashboard_link, n, n, time.perf_counter() - clock)
        return
    if max_workers is not None:
        start, most = min(min_workers or 1, max_workers), max_workers
    else:
        start = most = workers or os.cpu_count() or 1
    with (
        LocalCluster(
            n_workers=start,
            threads_per_worker=1,
            processes=True,
            host=host,
            dashboard_address=f"{host}:0",
            env=worker_environment(api_url),
            preload=[PRELOAD_MODULE],
        ) as cluster,
        Client(cluster) as client,
    ):
        if max_workers is not None:
            cluster.adapt(minimum=start, maximum=most)
        client.wait_for_workers(start)
        yield ClusterInfo(
            cluster.scheduler_address,
            cluster.dashboard_link,
            most,
            started=len(client.scheduler_info()["workers"]),
            start_seconds=time.perf_counter() - clock,
        )


def cluster_for(
    settings: Settings, *, api_url: str | None, roots: Sequence[str]
) -> AbstractContextManager[ClusterInfo]:
    """:func:`analysis_cluster` as ``settings`` ask for it."""
    return analysis_cluster(
        address=settings.dask_address,
        workers=settings.workers,
        min_workers=settings.min_workers,
        max_workers=settings.max_workers,
        host=settings.host,
        api_url=api_url,
        roots=roots,
    )


def check_cluster(address: str, roots: Sequence[str], *, timeout: float = 10.0) -> None:
    """Raise :class:`WorkerSetupError` unless the scheduler at ``address`` answers within
    ``timeout`` seconds and each of its workers sees ``roots``; before a run starts."""
    try:  # a bare connection first: a Client that fails to connect complains as it goes
        asyncio.run(_reach(address, timeout))
    except (OSError, TimeoutError, ValueError) as exc:
        raise WorkerSetupError(
            f"cannot reach the Dask scheduler at {address} ({exc}); start it, or leave out "
            "--dask-address to use a local cluster"
        ) from exc
    with Client(address, timeout=timeout) as client:
        _check_roots_visible(client, roots)


async def _reach(address: str, timeout: float) -> None:
    comm = await connect(address, timeout=timeout)
    await comm.close()


def _check_roots_visible(client: Client, roots: Sequence[str]) -> None:
    seen = client.run(lambda: [os.path.isdir(r) for r in roots])
    blind = {w: [r for r, ok in zip(roots, v, strict=True) if not ok] for w, v in seen.items()}
    blind = {w: missing for w, missing in blind.items() if missing}
    if blind:
        raise WorkerSetupError(
            "the music must be at the same path on every worker; "
            + "; ".join(f"{w} cannot see {', '.join(m)}" for w, m in sorted(blind.items()))
        )
