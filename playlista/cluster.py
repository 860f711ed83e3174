"""Start or join the Dask cluster that runs the analysis, with the worker plugin registered."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from distributed import Client, LocalCluster

from playlista.settings import PREFECT_ENVIRONMENT
from playlista.worker import AudioLibraries

log = logging.getLogger(__name__)

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
    """Where the cluster is: its scheduler, its dashboard, and how many workers it has."""

    address: str
    dashboard: str | None
    workers: int
    local: bool


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
    host: str = "127.0.0.1",
    api_url: str | None = None,
) -> Iterator[ClusterInfo]:
    """Join the cluster at ``address``, or start a local one with ``workers`` processes.

    Either way the :class:`AudioLibraries` plugin is registered before this yields, so each
    worker has imported and warmed the audio libraries before it receives a task.
    """
    if address:
        with Client(address) as client:
            client.register_plugin(AudioLibraries())
            info = ClusterInfo(
                address, client.dashboard_link, len(client.scheduler_info()["workers"]), local=False
            )
            yield info
        return
    n = workers or os.cpu_count() or 1
    with (
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host=host,
            dashboard_address=f"{host}:0",
            env=worker_environment(api_url),
        ) as cluster,
        Client(cluster) as client,
    ):
        client.register_plugin(AudioLibraries())
        yield ClusterInfo(cluster.scheduler_address, cluster.dashboard_link, n, local=True)
