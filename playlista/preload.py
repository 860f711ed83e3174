"""``dask worker SCHEDULER --preload playlista.preload``: the worker plugin for long-lived workers.

A worker started this way loads and warms the audio libraries before it takes any task,
exactly as one of playlista's local workers does.
"""

from __future__ import annotations

from typing import Any

from playlista.checkout import on_path
from playlista.worker import AudioLibraries

on_path()  # tasks arrive as references to the checkout's ``tasks`` modules


async def dask_setup(worker: Any) -> None:
    await worker.plugin_add(AudioLibraries(), name=AudioLibraries.name)
