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
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import numpy as np

from playlista.audio.prepare import Decoded, Preparer
from playlista.errors import DecodeError, NoAudioError, UnsupportedFormatError

log = logging.getLogger(__name__)

BLOCK_FRAMES = 1 << 17  # ~3 s at 44.1 kHz: large enough to amortise per-block work
# Undecodable packets tolerated in a damaged file before it counts as undecodable.
MAX_BAD_PACKETS = 1000

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


@dataclass(frozen=True, slots=True)
class Stream:
    """What a decoder says of a file before its samples: rate, channels, codec, length."""

    sr: int
    channels: int
    codec: str | None
    frames: int | None  # the container's claim, if any; the decoded length is what counts
    decoder: str


def decode(path: str, *, min_seconds: float = 1.0, max_seconds: float = 0.0) -> Decoded:
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
    errors: list[str] = []
    decoded = None
    for name, reader in (("ffmpeg", _ffmpeg_blocks), ("soundfile", _soundfile_blocks)):
        try:
            with reader(path) as (stream, blocks):
                decoded = _prepare(stream, blocks, max_seconds=max_seconds)
        except _Unreadable as exc:
            errors.append(f"{name}: {exc}")
            continue
        if decoded.seconds > 0:
            break
        errors.append(f"{name}: no audio in the stream")  # another decoder may find some
    if decoded is None:
        if not os.access(path, os.R_OK):
            raise PermissionError(13, "Permission denied", path)
        reason = "; ".join(errors)
        if all(any(word in e.lower() for word in _UNRECOGNISED) for e in errors):
            raise UnsupportedFormatError(path, f"not a recognised audio file ({reason})")
        raise DecodeError(path, f"audio could not be decoded ({reason})")
    if decoded.seconds < min_seconds:
        raise NoAudioError(
            path, f"decodes to {decoded.seconds:.2f} s of audio, less than {min_seconds:g} s"
        )
    if not (np.isfinite(decoded.samples).all() and np.isfinite(decoded.energy)):
        raise DecodeError(path, "decoder returned non-finite samples")
    return decoded


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


def _ffmpeg_decode(path: str, container, stream, info: Stream) -> Iterator[np.ndarray]:  # type: ignore[no-untyped-def]
    import av

    block = _BlockWriter(info.channels)
    bad = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError as exc:
                # A damaged packet: FFmpeg's own tools skip it and go on, and so do we.
                bad += 1
                if bad > MAX_BAD_PACKETS:
                    raise _Unreadable(f"too many undecodable packets ({_ffmpeg_message(exc)})")
                continue
            for frame in frames:
                if frame.sample_rate != info.sr:
                    raise _Unreadable(
                        f"sample rate changes mid-stream ({info.sr} to {frame.sample_rate} Hz)"
                    )
                yield from block.add(
                    _frame_planes(frame, info.channels), frame.samples, frame.format.name
                )
    except av.error.FFmpegError as exc:
        if block.total == 0:
            raise _Unreadable(_ffmpeg_message(exc)) from exc
        # Damage past the first samples (a truncated file): keep what was decoded.
        log.info("%s: decoding stopped early: %s", path, _ffmpeg_message(exc))
    yield from block.flush()


def _frame_planes(frame, channels: int) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """One decoded frame's samples, one array [shape=(k,)] per channel, as decoded.

    Planar frames (FFmpeg's usual output) are viewed without a copy.
    """
    dtype, _ = _FORMATS[frame.format.name.removesuffix("p")]
    k = frame.samples
    planes = frame.planes
    if frame.format.is_planar:
        rows = [np.frombuffer(p, dtype, k) for p in planes]
    else:
        packed = np.frombuffer(planes[0], dtype, k * len(frame.layout.channels))
        rows = list(packed.reshape(k, -1).T)
    if len(rows) != channels:  # a chained stream with another layout: keep the mix
        mix = np.mean(rows, axis=0, dtype=np.float32)
        rows = [mix] * channels
    return rows


def _ffmpeg_message(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return re.sub(r"^\[Errno -?\d+\] ", "", str(text)).split(": '")[0]


class _BlockWriter:
    """Gathers decoded frames into float32 blocks of :data:`BLOCK_FRAMES` frames, full scale 1."""

    def __init__(self, channels: int) -> None:
        self._buffer = np.empty((channels, BLOCK_FRAMES), np.float32)
        self._filled = 0
        self._offset, self._scale = 0.0, 1.0
        self.total = 0

    def add(self, rows: list[np.ndarray], k: int, sample_format: str) -> Iterator[np.ndarray]:
        """Copy ``k`` frames, given per channel in FFmpeg's ``sample_format``; yield full blocks."""
        _, self._scale = _FORMATS[sample_format.removesuffix("p")]
        self._offset = 128.0 if sample_format.startswith("u8") else 0.0
        self.total += k
        done = 0
        while done < k:
            take = min(k - done, BLOCK_FRAMES - self._filled)
            at = slice(self._filled, self._filled + take)
            for out, row in zip(self._buffer, rows, strict=True):
                out[at] = row[done : done + take]
            self._filled += take
            done += take
            if self._filled == BLOCK_FRAMES:
                yield self._scaled(self._buffer)
                self._filled = 0

    def flush(self) -> Iterator[np.ndarray]:
        if self._filled:
            yield self._scaled(self._buffer[:, : self._filled])
            self._filled = 0

    def _scaled(self, block: np.ndarray) -> np.ndarray:
        if self._offset:
            block -= np.float32(self._offset)
        if self._scale != 1.0:
            block *= np.float32(self._scale)
        return block


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
