"""Decode in a child process that can be stopped: a hang or a crash costs one file, not a worker.

A native decoder can loop forever or kill its process (SIGSEGV, abort) on a broken file, and
neither Prefect's timeouts nor Dask can interrupt C code running on a worker thread. So each
worker keeps one :class:`DecoderProcess`: a long-lived child that imported the decoders once
and decodes one file per request. No answer within the timeout: the child is killed, the file
fails with :class:`~playlista.errors.DecodeTimeoutError`, and the next request starts a fresh
child. The child dies mid-request: :class:`~playlista.errors.DecoderCrashError`, likewise.

The child is a fresh interpreter (``subprocess`` with ``python -c``), never a fork: the worker
runs TensorFlow and numba threads whose locks a forked copy would inherit mid-use. It is not a
``multiprocessing.Process`` because Dask's worker processes are daemonic, and daemonic
processes may not start one. The two talk over a ``multiprocessing.Pipe`` (a socket pair):
small pickled messages, then the samples as raw float32 bytes read with ``os.readv`` straight
into the array the parent returns, the only copy on the parent's side (``recv_bytes_into``
buffers the whole message first: ~12x slower on an hour of audio). The samples' header carries
everything else the child measured (:class:`~playlista.audio.prepare.Decoded`).

Known errors cross back as what they are: an :class:`~playlista.errors.AnalysisError` as its
class name, path and message, rebuilt in the parent; an ``OSError`` as its errno, text and file
name, rebuilt as the same ``OSError`` for the caller to classify, as after an in-process
decode. Any other exception in the child is a bug and is raised in the parent as a
``RuntimeError`` carrying the child's traceback.

Fault injection (a test seam: decoders that hang or crash cannot be summoned from real files on
demand). The child reads ``PLAYLISTA_FAULTS`` once, at start-up: a JSON list of rules ::

    [{"match": "broken", "fault": "hang"},
     {"match": "flaky.flac", "fault": "eio", "times": 2, "state": "/tmp/faults"}]

Before decoding a path containing ``match``, the first matching rule's ``fault`` happens:
``hang`` sleeps forever, ``abort`` calls ``os.abort()``, ``eio`` raises
``OSError(errno.EIO)``, ``bug`` raises a ``ValueError`` as a bug in decoding would. With
``times``, only the first ``times`` attempts fail; attempts are counted in a file under the
folder ``state``, so the count survives a restarted child and is shared by every worker.
Unset, the hook costs one empty-list check per file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, Literal

import numpy as np

from playlista import errors
from playlista.audio.decode import decode
from playlista.audio.prepare import Decoded
from playlista.errors import AnalysisError, DecoderCrashError, DecodeTimeoutError

log = logging.getLogger(__name__)

FAULTS_ENV = "PLAYLISTA_FAULTS"
# Interpreter start and the decoders' imports take ~1 s; a loaded machine may take far more.
_START_TIMEOUT = 120.0
# How long a child that closed its end is given to finish dying before it is killed, so that
# the signal that did kill it is the one reported.
_EXIT_GRACE = 5.0
_NO_SAMPLES = np.empty(0, np.float32)
_CHILD_MAIN = "import sys; from playlista.audio.isolate import serve; serve(int(sys.argv[1]))"


class DecoderProcess:
    """One child process that decodes files on request; stopped and replaced when it fails.

    Requests are served one at a time (a lock serialises threads sharing it). Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self.starts = 0
        self.start_seconds: float | None = None

    @property
    def pid(self) -> int | None:
        """The running child's process id, if one is running."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the child now, if none is running, and wait until its decoders are loaded."""
        with self._lock:
            self._running()

    def decode(
        self, path: str, *, min_seconds: float = 0.0, max_seconds: float = 0.0, timeout: float
    ) -> Decoded:
        """Decode ``path`` in the child: what :func:`playlista.audio.decode.decode` returns.

        It raises what ``decode`` raises (its :class:`AnalysisError` subclasses, and
        ``OSError`` for the caller to classify), and:

        Raises
        ------
        DecodeTimeoutError
            No answer within ``timeout`` seconds; the child was killed.
        DecoderCrashError
            The child died while decoding ``path``.
        RuntimeError
            The child raised an unexpected exception (a bug), or could not start.
        """
        with self._lock:
            conn = self._running()
            deadline = time.monotonic() + timeout
            try:
                reply = _request(conn, path, (min_seconds, max_seconds), deadline)
            except TimeoutError:
                log.warning(
                    "%s: no answer in %g s; killing decoder pid %s", path, timeout, self.pid
                )
                self._stop(grace=0)
                raise DecodeTimeoutError(
                    path, f"decoding did not finish within {timeout:g} s; the decoder was stopped"
                ) from None
            except (EOFError, ConnectionError):
                how = _exit_reason(self._stop(grace=_EXIT_GRACE))
                log.warning("%s: the decoder died (%s)", path, how)
                raise DecoderCrashError(path, f"the decoder crashed ({how}) on this file") from None
            except BaseException:
                # Interrupted here mid-answer (out of memory, Ctrl-C): what is left unread on
                # the pipe would be taken for the next file's answer.
                self._stop(grace=0)
                raise
        if isinstance(reply, Decoded):
            return reply
        raise _rebuild(*reply)

    def close(self) -> None:
        """Stop the child: it leaves when its pipe closes, and is killed if it does not."""
        with self._lock:
            if self._proc is not None:
                self._stop(grace=_EXIT_GRACE)

    def __enter__(self) -> DecoderProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _running(self) -> Connection:
        """The pipe to a live child, starting one if there is none (or it died while idle)."""
        if self._proc is not None and self._conn is not None:
            if self._proc.poll() is None:
                return self._conn
            pid, how = self._proc.pid, _exit_reason(self._stop(grace=0))
            log.warning("decoder pid %d died while idle (%s); starting another", pid, how)
        started = time.perf_counter()
        ours, theirs = Pipe()
        with theirs:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD_MAIN, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        self._conn = ours
        try:
            if not ours.poll(_START_TIMEOUT):
                raise TimeoutError
            ours.recv()  # "ready": the decoders are imported
        except (EOFError, TimeoutError):
            how = _exit_reason(self._stop(grace=0))
            raise RuntimeError(
                f"the decoder process did not start ({how}); see its stderr"
            ) from None
        self.starts += 1
        self.start_seconds = time.perf_counter() - started
        log.info("decoder pid %d started in %.2f s", self._proc.pid, self.start_seconds)
        return ours

    def _stop(self, *, grace: float) -> int:
        """Close the pipe, give the child ``grace`` seconds to exit, then kill it; its exit code."""
        proc, conn = self._proc, self._conn
        assert proc is not None and conn is not None
        self._proc = self._conn = None
        conn.close()
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


# Replies: a Decoded, or (kind, *details) of what the child raised.
_Raised = tuple[Any, ...]


def _request(
    conn: Connection, path: str, limits: tuple[float, float], deadline: float
) -> Decoded | _Raised:
    """Send one request and wait for its answer until ``deadline`` (``time.monotonic``).

    ``limits`` are ``decode``'s ``min_seconds`` and ``max_seconds``.
    """
    conn.send((path, *limits))
    if not conn.poll(max(0.0, deadline - time.monotonic())):
        raise TimeoutError
    kind, *details = conn.recv()
    if kind != "samples":
        return (kind, *details)
    shape, fields = details
    samples = np.empty(shape, dtype=np.float32)
    _read_into(conn, samples.data.cast("B"), deadline)
    return dataclasses.replace(fields, samples=samples)


def _read_into(conn: Connection, buf: memoryview, deadline: float) -> None:
    """Fill ``buf`` with the raw bytes the child writes after its ``samples`` header."""
    fd = conn.fileno()
    ready = select.poll()
    ready.register(fd, select.POLLIN)
    done = 0
    while done < len(buf):
        if not ready.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            raise TimeoutError
        n = os.readv(fd, [buf[done:]])
        if n == 0:
            raise EOFError
        done += n


def _rebuild(kind: str, *details: Any) -> Exception:
    """The parent's copy of what the child raised."""
    if kind == "analysis_error":
        name, path, message = details
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, AnalysisError):
            return cls(path, message)
        return RuntimeError(f"the decoder raised an unknown error class {name}: {message}")
    if kind == "os_error":
        code, text, filename = details
        return OSError(code, text, filename) if code is not None else OSError(text)
    name, message, trace = details
    exc = RuntimeError(f"{name} in the decoder process: {message}")
    exc.add_note(f"the decoder process's traceback:\n{trace}")
    return exc


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
        return f"signal {-code}"
    return f"exit status {code}"


# ---- the child ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One ``PLAYLISTA_FAULTS`` rule; see the module docstring."""

    match: str
    fault: Literal["hang", "abort", "eio", "bug"]
    times: int | None = None
    state: str | None = None

    def __post_init__(self) -> None:
        if self.fault not in ("hang", "abort", "eio", "bug"):
            raise ValueError(f"{FAULTS_ENV}: unknown fault {self.fault!r}")
        if self.times is not None and not self.state:
            raise ValueError(f"{FAULTS_ENV}: a rule with 'times' needs a 'state' folder")


def read_faults() -> tuple[Fault, ...]:
    """The rules in ``PLAYLISTA_FAULTS``; none when it is unset."""
    text = os.environ.get(FAULTS_ENV)
    return tuple(Fault(**rule) for rule in json.loads(text)) if text else ()


def serve(fd: int) -> None:
    """The child's main loop: answer decode requests on the pipe ``fd`` until it closes."""
    conn = Connection(fd)
    faults = read_faults()
    _import_decoders()
    _exit_with_parent()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            path, min_seconds, max_seconds = conn.recv()
        except EOFError:
            return
        _answer(conn, path, (min_seconds, max_seconds), faults)


def _answer(
    conn: Connection, path: str, limits: tuple[float, float], faults: tuple[Fault, ...]
) -> None:
    try:
        if faults:
            _inject(faults, path)
        decoded = decode(path, min_seconds=limits[0], max_seconds=limits[1])
    except AnalysisError as exc:
        conn.send(("analysis_error", type(exc).__name__, exc.path, exc.message))
    except OSError as exc:
        conn.send(("os_error", exc.errno, exc.strerror or str(exc), exc.filename))
    except Exception as exc:
        conn.send(("bug", type(exc).__name__, str(exc), traceback.format_exc()))
    else:
        samples = np.ascontiguousarray(decoded.samples, dtype=np.float32)
        # Everything but the samples goes pickled in the header; they follow as raw bytes.
        conn.send(("samples", samples.shape, dataclasses.replace(decoded, samples=_NO_SAMPLES)))
        data = samples.data.cast("B")
        while data:
            data = data[os.write(conn.fileno(), data) :]


def _inject(faults: tuple[Fault, ...], path: str) -> None:
    rule = next((f for f in faults if f.match in path), None)
    if rule is None or (rule.times is not None and _attempt(rule) > rule.times):
        return
    if rule.fault == "hang":
        while True:
            time.sleep(3600)
    if rule.fault == "abort":
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file per injected crash
        os.abort()
    if rule.fault == "bug":
        raise ValueError(f"an injected bug while decoding {path}")
    raise OSError(errno.EIO, os.strerror(errno.EIO), path)


def _attempt(rule: Fault) -> int:
    """Count one more attempt at ``rule``, across processes; the count including this one."""
    assert rule.state is not None
    name = hashlib.blake2b(rule.match.encode(), digest_size=8).hexdigest()
    os.makedirs(rule.state, exist_ok=True)
    fd = os.open(os.path.join(rule.state, f"{name}.attempts"), os.O_RDWR | os.O_CREAT | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b".")
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _import_decoders() -> None:
    import av  # noqa: F401
    import soundfile  # noqa: F401

    from playlista.audio import bs1770

    bs1770.warm_up()


def _exit_with_parent() -> None:
    """Exit if the worker dies, even while a decode hangs (one that releases the GIL).

    An idle child sees its pipe close and leaves by itself; a hanging one would be orphaned.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
