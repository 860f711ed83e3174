"""One writing run per database file, across every process on the machine.

A run holds an exclusive ``flock`` on ``<db>.lock`` from its plan to its last write; a second
run on the same file waits for it. The lock sits beside the file the path resolves to, so a
database named through a symbolic link has the one lock all the same. The kernel drops the
lock when its holder exits, however it exits, so a killed run never leaves the file locked
(a lease kept by a server would: a Prefect server restarted while a run held a global
concurrency slot loses the lease and keeps the slot taken).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from playlista.errors import DatabaseBusyError

log = logging.getLogger(__name__)

_POLL_SECONDS = 1.0


@contextmanager
def sole_writer(db_path: str | os.PathLike[str], *, wait_seconds: float) -> Iterator[float]:
    """Hold ``<db>.lock`` meanwhile; yield how long it took to get it.

    Raises
    ------
    DatabaseBusyError
        Another run held it for more than ``wait_seconds``.
    """
    path = lock_path(db_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a+") as lock:
        asked = time.monotonic()
        while not _try_lock(lock.fileno()):
            if time.monotonic() - asked > wait_seconds:
                raise DatabaseBusyError(os.fspath(db_path), TimeoutError(_holder(lock)))
            if time.monotonic() - asked < _POLL_SECONDS:
                log.info("waiting for the run writing %s (%s) to finish", db_path, _holder(lock))
            time.sleep(_POLL_SECONDS)  # waiting for a holder, not retrying a failure
        lock.truncate(0)
        lock.write(f"pid {os.getpid()}\n")
        lock.flush()
        try:
            yield time.monotonic() - asked
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


@contextmanager
def probe(db_path: str | os.PathLike[str]) -> Iterator[bool]:
    """Try the writer lock without waiting: yield whether no run holds it (then hold it meanwhile).

    For a check made before a run starts: two runs starting at once must not both open the
    database to check it, or one sees the other's check as a foreign holder.
    """
    path = lock_path(db_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a+") as lock:
        free = _try_lock(lock.fileno())
        try:
            yield free
        finally:
            if free:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def run_writing(db_path: str | os.PathLike[str]) -> bool:
    """Whether a run holds the writer lock of ``db_path`` now; creates no file."""
    try:
        fd = os.open(lock_path(db_path), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # and with it a shared lock it took
    return False


def lock_path(db_path: str | os.PathLike[str]) -> str:
    """``<db>.lock`` beside the real file ``db_path`` names."""
    return f"{os.path.realpath(db_path)}.lock"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(lock: object) -> str:
    lock.seek(0)  # type: ignore[attr-defined]
    return lock.read().strip() or "another process"  # type: ignore[attr-defined]
