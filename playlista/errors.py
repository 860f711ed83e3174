"""The exceptions playlista raises, each carrying the path it concerns and its cause.

Per-file errors are subclasses of :class:`AnalysisError`. Each class says, through
``error_class`` and ``retryable``, how a failure is recorded: a permanent one is not
tried again until the file changes; a transient one is retried.
"""

from __future__ import annotations

from playlista.records import AnalysisOutcome, Failure


class PlaylistaError(Exception):
    """Base class of every error playlista raises on purpose."""


class AnalysisError(PlaylistaError):
    """A file could not be analysed."""

    error_class = "analysis_error"
    retryable = False

    def __init__(self, path: str, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
        self.cause = cause


class FileVanishedError(AnalysisError):
    """The file was listed but no longer exists when it is read."""

    error_class = "file_vanished"


class UnreadableFileError(AnalysisError):
    """The file exists but cannot be opened (permissions, a directory, a dangling link)."""

    error_class = "unreadable"


class EmptyFileError(AnalysisError):
    """The file has zero bytes."""

    error_class = "empty_file"


class UnsupportedFormatError(AnalysisError):
    """No decoder recognises the file as audio."""

    error_class = "unsupported_format"


class DecodeError(AnalysisError):
    """A decoder recognised the file but could not decode its audio."""

    error_class = "decode_error"


class NoAudioError(AnalysisError):
    """The file decodes to too little audio to analyse."""

    error_class = "no_audio"


class DecodeTimeoutError(AnalysisError):
    """Decoding did not finish in the time allowed, and the decoder process was stopped."""

    error_class = "timeout"


class DecoderCrashError(AnalysisError):
    """The decoder process died (a crash in native code) while decoding the file."""

    error_class = "crash"


class TransientIOError(AnalysisError):
    """Reading the file failed in a way that may pass (an I/O error, a stale handle)."""

    error_class = "io_error"
    retryable = True


class TransientFailures(PlaylistaError):
    """Files of a retry batch failed transiently again; carries every outcome of the batch."""

    def __init__(self, outcomes: list[AnalysisOutcome]) -> None:
        failing = [o.path for o in outcomes if isinstance(o, Failure) and o.retryable]
        super().__init__(f"{len(failing)} file(s) still failing transiently: {failing[:3]}")
        self.outcomes = outcomes


class InvalidInputError(PlaylistaError, ValueError):
    """An analysis function was given samples it cannot work on."""


class WorkerSetupError(PlaylistaError, RuntimeError):
    """The Dask cluster cannot run the analysis: unreachable, blind to the music, or a worker
    without playlista's worker plugin."""


class DatabaseBusyError(PlaylistaError, RuntimeError):
    """The DuckDB file is held by another process."""

    def __init__(self, path: str, cause: BaseException | None = None) -> None:
        super().__init__(
            f"{path} is open in another process (a running analysis or an SQL session); "
            "close it and run again"
        )
        self.path = path
        self.cause = cause


class DatabaseFileError(PlaylistaError):
    """The path given for the database is missing, or is not a DuckDB file that can be opened."""

    def __init__(self, path: str, message: str, cause: BaseException | None = None) -> None:
        super().__init__(f"{path} {message}")
        self.path = path
        self.cause = cause


class FilterError(PlaylistaError, ValueError):
    """A playlist filter (``--where``, ``order_by``) is not one playlista accepts."""

    def __init__(self, text: str, message: str) -> None:
        super().__init__(f"filter {text!r}: {message}")
        self.text = text
        self.message = message


class PlaylistError(PlaylistaError, ValueError):
    """A playlist cannot be made as asked: a bad name or spec, an unknown track."""


class QueryError(PlaylistaError):
    """DuckDB refused a query a user gave; the message is DuckDB's first line."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause
