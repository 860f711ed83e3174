"""The checkout playlista runs from, whose ``flows`` and ``tasks`` folders are not installed.

Only the ``playlista`` package is installed. The flows and the tasks they send to Dask are
the checkout's own, found as Prefect finds a deployment's entrypoint: from the checkout
folder. :func:`on_path` puts that folder first on ``sys.path``, so that a ``flows`` or
``tasks`` module of another distribution cannot stand in for them.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def on_path() -> None:
    """Make ``flows`` and ``tasks`` the checkout's, in this process and those it spawns."""
    root = str(CHECKOUT)
    if not (CHECKOUT / "flows").is_dir() or sys.path[:1] == [root]:
        return
    sys.path[:] = [root, *(p for p in sys.path if p != root)]
