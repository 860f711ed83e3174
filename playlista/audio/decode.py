"""Read a file once, block by block, and keep what the analysis needs of it.

Decoding goes through FFmpeg (PyAV), which reads MP3, AAC/M4A, Ogg Vorbis, Opus, FLAC, ALAC,
WAV, AIFF and WMA, and falls back to libsndfile (soundfile) for the files FFmpeg refuses (some
Ogg streams with unusual headers). Either way the file arrives as consecutive float32 blocks of
its native channels at its native rate, and each block is consumed at once
(:mod:`playlista.audio.prepare`): loudness, true peak, energy and the 10-ms envelope are
measured on the original signal, which is then mixed to mono and resampled to the analysis rate.
Nothing holds the whole file at its native rate.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from playlista.audio.prepare import Decoded, Preparer
from playlista.errors import DecodeError, NoAudioError, UnsupportedFormatError

log = logging.getLogger(__name__)

BLOCK_FRAMES = 1 << 17  # ~3 s at 44.1 kHz: large enough to amortise per-block work
# Undecodable packets tolerated in a damaged file before it counts as undecodable.
MAX_BAD_PACKETS = 1000
# A true peak above this (1000 times full scale) is a damaged file (a float WAV of garbage),
# not audio: no descriptor of it means anything.
MAX_PEAK_DBTP = 60.0
# A decoding that ends before this share of the container's stated length is tried again
# with the other decoder.
SHORT_OF_CLAIM = 0.9

# Words in the decoders' messages that mean "this is not audio I know", as opposed to
# "I know this format but the stream is broken".
_UNRECOGNISED = (
    "format not recognised",
    "unknown format",
    "could not find stream information",
    "invalid data found",
    "unsupported codec",
    "could not open",
    "file contains data in an unknown format",
    "unspecified internal error",
    "no audio stream",
    "decoder not found",
)


class _Reading(Protocol):
    @property
    def seconds(self) -> float: ...


_R = TypeVar("_R", bound=_Reading)


@dataclass(frozen=True, slots=True)
class Stream:
    """What a decoder says of a file before its samples: rate, channels, codec, length."""

    sr: int
    channels: int
    codec: str | None
    frames: int | None  # the container's claim, if any; the decoded length is what counts
    decoder: str


def decode(path: str, *, min_seconds: float = 0.0, max_seconds: float = 0.0) -> Decoded:
    """Decode ``path`` once and prepare it for analysis (see :class:`Decoded`).

    A file longer than ``max_seconds`` (0: no limit) is kept as evenly spaced excerpts of that
    much audio in all, its loudness, peak, energy and length measured on the whole of it.

    Raises
    ------
    UnsupportedFormatError
        No decoder recognises the file.
    DecodeError
        A decoder recognised it but its audio could not be decoded.
    NoAudioError
        It decodes to less than ``min_seconds`` of audio.
    OSError
        The file cannot be opened; the caller classifies it.
    """
    decoded, errors = _read(
        path, lambda stream, blocks: _prepare(stream, blocks, max_seconds=max_seconds)
    )
    if decoded is None:
        if not os.access(path, os.R_OK):
            raise PermissionError(13, "Permission denied", path)
        reason = "; ".join(errors)
        if all(any(word in e.lower() for word in _UNRECOGNISED) for e in errors):
            raise UnsupportedFormatError(path, f"not a recognised audio file ({reason})")
        raise DecodeError(path, f"audio could not be decoded ({reason})")
    if decoded.seconds <= 0:
        raise NoAudioError(path, "decodes to no audio")
    if decoded.seconds < min_seconds:
        raise NoAudioError(
            path, f"decodes to {decoded.seconds:.2f} s of audio, less than {min_seconds:g} s"
        )
    peak = decoded.true_peak_dbtp
    if peak is not None and not peak <= MAX_PEAK_DBTP:  # inf and NaN included
        raise DecodeError(
            path, f"the decoded samples are far beyond full scale (true peak {peak:.0f} dBTP)"
        )
    if not (np.isfinite(decoded.samples).all() and np.isfinite(decoded.energy)):
        raise DecodeError(path, "decoder returned non-finite samples")
    return decoded


def read_native(path: str) -> tuple[np.ndarray, int]:
    """The whole of ``path`` at its own rate [shape=(channels, n)], float32, and that rate.

    The same decoders as :func:`decode`, without the preparation: for benchmarks and tests
    that need the original signal. Raises what :func:`decode` raises.
    """
    native, errors = _read(path, _Native.of)
    if native is None or native.seconds <= 0:
        raise DecodeError(path, f"audio could not be decoded ({'; '.join(errors)})")
    return native.samples, native.sr


@dataclass(frozen=True, slots=True)
class _Native:
    samples: np.ndarray
    sr: int

    @property
    def seconds(self) -> float:
        return self.samples.shape[1] / self.sr

    @classmethod
    def of(cls, stream: Stream, blocks: Iterator[np.ndarray]) -> _Native:
        parts = [block.copy() for block in blocks]
        if not parts:
            return cls(np.zeros((stream.channels, 0), np.float32), stream.sr)
        return cls(np.concatenate(parts, axis=1), stream.sr)


def _read(
    path: str, consume: Callable[[Stream, Iterator[np.ndarray]], _R]
) -> tuple[_R | None, list[str]]:
    """``consume`` the blocks of ``path`` from FFmpeg, then libsndfile if it needs to be tried.

    libsndfile is tried when FFmpeg cannot read the file, finds no audio, or stops far short of
    the container's stated length (damage it could not resynchronise past); the longer reading
    is kept. Returns that reading (None if no decoder could read the file) and each decoder's
    reason for not reading it.
    """
    errors: list[str] = []
    best = None
    for name, reader in (("ffmpeg", _ffmpeg_blocks), ("soundfile", _soundfile_blocks)):
        try:
            with reader(path) as (stream, blocks):
                attempt = consume(stream, blocks)
        except _Unreadable as exc:
            errors.append(f"{name}: {exc}")
            continue
        if best is None or attempt.seconds > best.seconds:
            best = attempt
        if attempt.seconds <= 0:
            errors.append(f"{name}: no audio in the stream")  # another decoder may find some
        elif stream.frames is None or attempt.seconds * stream.sr >= SHORT_OF_CLAIM * stream.frames:
            break
    return best, errors


class _Unreadable(Exception):
    """This decoder cannot read the file; another may."""


_Blocks = AbstractContextManager[tuple[Stream, Iterator[np.ndarray]]]


def _prepare(stream: Stream, blocks: Iterator[np.ndarray], *, max_seconds: float) -> Decoded:
    preparer = Preparer(
        sr=stream.sr,
        channels=stream.channels,
        frames=stream.frames,
        max_seconds=max_seconds,
    )
    for block in blocks:
        preparer.feed(block)
    return preparer.result(decoder=stream.decoder, codec=stream.codec)


# ---- FFmpeg -----------------------------------------------------------------------------------

# FFmpeg sample formats: numpy type and the scale that maps them to [-1, 1].
_FORMATS = {
    "flt": (np.float32, 1.0),
    "dbl": (np.float64, 1.0),
    "s16": (np.int16, 1 / 32768),
    "s32": (np.int32, 1 / 2147483648),
    "s64": (np.int64, 1 / 9223372036854775808),
    "u8": (np.uint8, 1 / 128),
}


@contextmanager
def _ffmpeg_blocks(path: str) -> Iterator[tuple[Stream, Iterator[np.ndarray]]]:
    import av

    try:
        container = av.open(path, metadata_errors="ignore")
    except OSError as exc:  # PyAV's own subclasses: give the caller the plain OSError
        raise OSError(exc.errno, exc.strerror, path) from None
    except av.error.FFmpegError as exc:
        raise _Unreadable(_ffmpeg_message(exc)) from exc
    with container:
        if not container.streams.audio:
            raise _Unreadable("no audio stream")
        stream = container.streams.audio[0]
        context = stream.codec_context
        if context.sample_rate <= 0 or context.channels <= 0:
            raise _Unreadable("no audio stream with a known rate and channel count")
        frames = None
        if stream.duration is not None and stream.time_base is not None:
            frames = int(stream.duration * stream.time_base * context.sample_rate)
        info = Stream(
            sr=int(context.sample_rate),
            channels=int(context.channels),
            codec=context.name,
            frames=frames,
            decoder="ffmpeg",
        )
        yield info, _ffmpeg_decode(path, container, stream, info)


def _ffmpeg_decode(path: str, container: Any, stream: Any, info: Stream) -> Iterator[np.ndarray]:
    import av

    blocks: _Frames | None = None
    bad = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError as exc:
                # A damaged packet: FFmpeg's own tools skip it and go on, and so do we.
                bad += 1
                if bad > MAX_BAD_PACKETS:
                    message = f"too many undecodable packets ({_ffmpeg_message(exc)})"
                    raise _Unreadable(message) from exc
                continue
            for frame in frames:
                if blocks is None:  # a decoder's sample format is set by its first frame
                    blocks = _Frames(frame, info)
                if blocks.add(frame):
                    yield blocks.take()
    except av.error.FFmpegError as exc:
        if blocks is None or blocks.total == 0:
            raise _Unreadable(_ffmpeg_message(exc)) from exc
        # Damage past the first samples (a truncated file): keep what was decoded.
        log.info("%s: decoding stopped early: %s", path, _ffmpeg_message(exc))
    if blocks is not None and blocks.pending:
        yield blocks.take()


def _ffmpeg_message(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return re.sub(r"^\[Errno -?\d+\] ", "", str(text)).split(": '")[0]


class _Frames:
    """Decoded frames copied into blocks of at least :data:`BLOCK_FRAMES` frames.

    Each frame's planes are copied at once into the block being filled, so FFmpeg gets its
    frame buffers back for the next frames (holding on to them costs more than the copy); a
    full block is handed over whole and a new one started. This is the one place per frame
    that Python touches the samples, so it reads as little of the frame as it can: its sample
    format, planarity and layout are those of the stream's first frame (a decoder's output
    format is fixed when it opens).
    """

    def __init__(self, first: Any, info: Stream) -> None:
        name = first.format.name
        self._dtype, self._scale = _FORMATS[name.removesuffix("p")]
        self._offset = 128.0 if name.startswith("u8") else 0.0
        self._planar = first.format.is_planar
        self._width = 1 if self._planar else len(first.layout.channels)
        self._planes = len(first.planes) if self._planar else 1
        self._channels = info.channels
        self._buffer = self._new(BLOCK_FRAMES + max(first.samples, 1) * self._width)
        self.pending = 0
        self.total = 0

    def _new(self, size: int) -> np.ndarray:
        return np.empty((self._planes, size), self._dtype)

    def add(self, frame: Any) -> bool:
        """Copy one frame into the block; True when the block is full."""
        k = frame.samples
        count = k * self._width
        at = self.pending * self._width
        if at + count > self._buffer.shape[1]:  # a frame longer than the first: grow
            grown = self._new(2 * (at + count))
            grown[:, :at] = self._buffer[:, :at]
            self._buffer = grown
        for row, plane in zip(self._buffer, frame.planes, strict=False):
            row[at : at + count] = np.frombuffer(plane, self._dtype, count)
        self.pending += k
        self.total += k
        return self.pending >= BLOCK_FRAMES

    def take(self) -> np.ndarray:
        """The frames kept so far as one block [shape=(channels, k)], float32; start the next."""
        filled = self._buffer[:, : self.pending * self._width]
        self._buffer = self._new(self._buffer.shape[1])
        self.pending = 0
        if self._planar:
            block = filled.astype(np.float32, copy=False)
        else:
            block = filled[0].reshape(-1, self._width).T.astype(np.float32)
        if self._offset:
            block = block - np.float32(self._offset)
        if self._scale != 1.0:
            block = block * np.float32(self._scale)
        if block.shape[0] != self._channels:  # a chained stream of another layout: its mix
            block = np.broadcast_to(block.mean(axis=0), (self._channels, block.shape[1]))
        return np.ascontiguousarray(block)


# ---- libsndfile -------------------------------------------------------------------------------


@contextmanager
def _soundfile_blocks(path: str) -> Iterator[tuple[Stream, Iterator[np.ndarray]]]:
    import soundfile as sf

    try:
        f = sf.SoundFile(path)
    except sf.LibsndfileError as exc:
        raise _Unreadable(_soundfile_message(exc)) from exc
    except RuntimeError as exc:
        raise _Unreadable(_soundfile_message(exc)) from exc
    with f:
        info = Stream(
            sr=int(f.samplerate),
            channels=int(f.channels),
            codec=f"{f.format.lower()}/{f.subtype.lower()}",
            frames=int(f.frames) if f.frames > 0 else None,
            decoder="soundfile",
        )

        def blocks() -> Iterator[np.ndarray]:
            try:
                for block in f.blocks(BLOCK_FRAMES, dtype="float32", always_2d=True):
                    yield np.ascontiguousarray(block.T)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise _Unreadable(_soundfile_message(exc)) from exc

        yield info, blocks()


def _soundfile_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    line = re.sub(r"^Error opening '.*?': ", "", line)
    # libsndfile's words when its MP3 reader finds no frame in a file that does exist.
    return line.replace(
        "File does not exist or is not a regular file (possibly a pipe?).", "no audio stream found"
    )
