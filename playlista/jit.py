"""numba's on-disk cache of playlista's compiled loops, shared by a user's processes.

The loops (K-weighting, onset detection, the frame-wise spectral descriptors) compile in a few
seconds on first use and load from the cache afterwards. Two processes compiling into one cache
at once can leave an index that points at the other's code, and the next process to load it
crashes; so every process that warms them up holds :func:`cache_lock` meanwhile: the first
compiles and writes, the others load what it wrote.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

CACHE_ENV = "NUMBA_CACHE_DIR"


def cache_dir() -> str:
    """The cache folder: ``$NUMBA_CACHE_DIR``, set to ``$TMPDIR/playlista-numba-$UID`` if unset.

    numba reads the variable when it is first imported, so this runs before that (on import
    of :mod:`playlista`), and processes started from this one inherit it.
    """
    folder = os.environ.setdefault(
        CACHE_ENV, os.path.join(tempfile.gettempdir(), f"playlista-numba-{os.getuid()}")
    )
    os.makedirs(folder, exist_ok=True)
    return folder


@contextmanager
def cache_lock() -> Iterator[None]:
    """Hold a machine-wide lock on the cache while compiling into it or loading from it."""
    with open(os.path.join(cache_dir(), ".playlista-jit.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
