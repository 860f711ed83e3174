"""The per-file pipeline: fingerprint, tags, decode once, features; failures classified.

Known errors end as a :class:`~playlista.records.Failure` for that file alone, as beets does
per item; anything else is a bug and propagates.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import stat
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from playlista.audio.decode import decode
from playlista.audio.features import extract_features
from playlista.audio.isolate import DecoderProcess
from playlista.audio.tags import read_tags
from playlista.errors import (
    AnalysisError,
    EmptyFileError,
    FileVanishedError,
    TransientIOError,
    UnreadableFileError,
)
from playlista.models.tagging import Taggers, musicnn_scores
from playlista.records import (
    ALL_PARTS,
    AnalysisOutcome,
    Failure,
    Features,
    FileStat,
    MusicnnResult,
    Part,
    Tags,
    TrackResult,
)
from playlista.scan import fingerprint
from playlista.settings import AnalysisParams

log = logging.getLogger(__name__)

# Bump when a change to decoding or to the descriptors makes stored features stale:
# tracks analysed under an older version are analysed again, all of them.
ANALYZER_VERSION = 3
# Bump when a change to MusiCNN (weights, front end, patch choice) makes its stored tags and
# embeddings stale: only MusiCNN runs again on tracks analysed under an older version.
MUSICNN_VERSION = 1

# errno values that say "try again later", not "this file is broken".
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.EIO,
        errno.EAGAIN,
        errno.EINTR,
        errno.ETIMEDOUT,
        errno.ESTALE,
        errno.EBUSY,
        errno.ENOMEM,
        errno.ENFILE,
        errno.EMFILE,
    }
)


def analyze_file(
    path: str,
    *,
    worker: str,
    params: AnalysisParams | None = None,
    seen: FileStat | None = None,
    taggers: Taggers | None = None,
    parts: Sequence[Part] = ALL_PARTS,
    decoder: DecoderProcess | None = None,
) -> AnalysisOutcome:
    """Analyse one file; return a :class:`TrackResult`, or a :class:`Failure` saying why not.

    ``seen`` is what discovery saw; a failure that happens before the file can be stat-ed
    again is recorded with it, so that planning knows when the file has changed. ``parts``
    without ``core`` runs only the MusiCNN ``taggers`` (at most ``params.musicnn_max_patches``
    patches per track, 0 for all) and returns a :class:`MusicnnResult`. With a ``decoder``
    the file is decoded in its child process, stopped after ``params.decode_timeout``
    seconds; without one, in this process. A file longer than ``params.max_seconds`` (0: no
    limit) is analysed from excerpts of that much audio in all, its loudness, energy,
    danceability and duration measured on the whole file (see
    :func:`playlista.audio.decode.decode`).
    """
    params = params or AnalysisParams()
    started = time.perf_counter()
    size, mtime_ns = (seen.size, seen.mtime_ns) if seen else (None, None)
    core = "core" in parts
    stages: dict[str, float] = {}
    try:
        size, mtime_ns = _stat_regular_file(path)
        digest, (tags, tag_warnings) = (
            (fingerprint(path, size=size), read_tags(path)) if core else ("", (Tags(), ()))
        )
        stages["tags"] = _since(started)
        clock = time.perf_counter()
        limits = {"min_seconds": params.min_seconds, "max_seconds": params.max_seconds}
        decoded = (
            decoder.decode(path, **limits, timeout=params.decode_timeout)
            if decoder is not None
            else decode(path, **limits)
        )
        stages["decode"] = _since(clock)
        features, spent = extract_features(decoded) if core else (Features(), {})
        stages.update(spent)
        clock = time.perf_counter()
        musicnn = (
            musicnn_scores(
                y=decoded.samples, sr=decoded.sr, taggers=taggers, cap=params.musicnn_max_patches
            )
            if taggers is not None and "musicnn" in parts
            else ()
        )
        stages["musicnn"] = _since(clock)
    except AnalysisError as exc:
        return _failure(path, size, mtime_ns, exc, worker)
    except OSError as exc:
        return _failure(path, size, mtime_ns, classify_os_error(path, exc), worker)
    musicnn_version = MUSICNN_VERSION if musicnn else None
    if not core:
        return MusicnnResult(
            path,
            musicnn,
            MUSICNN_VERSION,
            worker,
            datetime.now(UTC),
            _since(started),
            stage_seconds=tuple(stages.items()),
        )
    return TrackResult(
        path=path,
        size=size,
        mtime_ns=mtime_ns,
        fingerprint=digest,
        tags=_fill_stream_info(
            tags, sr=decoded.native_sr, channels=decoded.channels, codec=decoded.codec
        ),
        features=features,
        decoder=decoded.decoder,
        decoded_seconds=decoded.seconds,
        analyzer_version=ANALYZER_VERSION,
        worker=worker,
        analyzed_at=datetime.now(UTC),
        elapsed_s=_since(started),
        warnings=tag_warnings + features.warnings,
        musicnn=musicnn,
        musicnn_version=musicnn_version,
        stage_seconds=tuple(stages.items()),
    )


def _since(started: float) -> float:
    return time.perf_counter() - started


def classify_os_error(path: str, exc: OSError) -> AnalysisError:
    """Turn an ``OSError`` met while reading ``path`` into the project's error for it."""
    detail = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return UnreadableFileError(path, "symbolic link points to a missing file", cause=exc)
        return FileVanishedError(path, "file disappeared before it could be read", cause=exc)
    if isinstance(exc, PermissionError):
        return UnreadableFileError(path, f"permission denied ({detail})", cause=exc)
    if isinstance(exc, IsADirectoryError):
        return UnreadableFileError(path, "is a folder, not a file", cause=exc)
    if exc.errno in _TRANSIENT_ERRNOS:
        return TransientIOError(path, f"read failed, may pass: {detail}", cause=exc)
    return UnreadableFileError(path, f"cannot be read ({detail})", cause=exc)


def _stat_regular_file(path: str) -> tuple[int, int]:
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableFileError(path, "not a regular file")
    if st.st_size == 0:
        raise EmptyFileError(path, "file is empty (0 bytes)")
    return st.st_size, st.st_mtime_ns


def _failure(
    path: str, size: int | None, mtime_ns: int | None, exc: AnalysisError, worker: str
) -> Failure:
    log.warning("%s failed: %s: %s", path, exc.error_class, exc.message)
    return Failure(
        path=path,
        size=size,
        mtime_ns=mtime_ns,
        error_class=exc.error_class,
        message=exc.message,
        retryable=exc.retryable,
        worker=worker,
        failed_at=datetime.now(UTC),
    )


def _fill_stream_info(tags: Tags, *, sr: int, channels: int, codec: str | None) -> Tags:
    """Stream fields mutagen could not give come from the decoder, which did read the file."""
    return dataclasses.replace(
        tags,
        sample_rate=tags.sample_rate or sr,
        channels=tags.channels or channels,
        codec=tags.codec or codec,
    )
