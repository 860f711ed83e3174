"""Decode a file once to float32 samples, trying each decoder that may know its format.

libsndfile (through soundfile) reads FLAC, WAV, AIFF, Ogg Vorbis, Opus and MP3 and has no
AAC; essentia's bundled ffmpeg reads AAC/M4A and WMA and has no Opus. Neither covers
every format here, so a file goes to soundfile first and to essentia when soundfile
cannot read it. They also disagree on some damaged files (a FLAC whose stream stops early
loses sync in libsndfile and decodes in ffmpeg), which the same order handles.

A file longer than ``max_seconds`` that soundfile reads is read block by block and kept only
as excerpts (:mod:`playlista.audio.longtrack`), so memory stays flat however long it is.
Files only essentia reads (AAC/M4A, WMA) are always decoded whole: its ``AudioLoader`` has no
way to read part of a file.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

import numpy as np

from playlista.audio.longtrack import BLOCK_SECONDS, WholeFile, measure_and_excerpt
from playlista.errors import DecodeError, NoAudioError, UnsupportedFormatError

log = logging.getLogger(__name__)

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
    "no audio stream found",
)


@dataclass(frozen=True, slots=True)
class Decoded:
    """Samples of one file: ``samples`` has shape ``(channels, n)``, float32 in [-1, 1].

    ``whole`` is None when ``samples`` is the whole file; otherwise ``samples`` holds excerpts
    and ``whole`` what was measured on the whole file.
    """

    samples: np.ndarray
    sr: int
    decoder: str
    codec: str | None
    whole: WholeFile | None = None

    @property
    def seconds(self) -> float:
        """The whole file's length, excerpted or not."""
        return self.whole.seconds if self.whole else self.samples.shape[1] / self.sr


def decode(path: str, *, min_seconds: float = 1.0, max_seconds: float = 0.0) -> Decoded:
    """Decode ``path`` at its native sample rate and channel count.

    A file longer than ``max_seconds`` (0: no limit) that soundfile reads is returned as
    excerpts of ``max_seconds`` in all, with its loudness, energy and length measured whole;
    an AAC/M4A or WMA file, which only essentia reads, is always decoded whole.

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
    for decoder in (_decode_soundfile, _decode_essentia):
        try:
            decoded = decoder(path, max_seconds)
            break
        except RuntimeError as exc:  # both libraries raise RuntimeError subclasses
            errors.append(f"{decoder.__name__.removeprefix('_decode_')}: {_first_line(exc)}")
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
    if not np.isfinite(decoded.samples).all() or (
        decoded.whole and not np.isfinite(decoded.whole.energy)
    ):
        raise DecodeError(path, "decoder returned non-finite samples")
    return decoded


def _decode_soundfile(path: str, max_seconds: float) -> Decoded:
    import soundfile as sf

    with sf.SoundFile(path) as f:
        codec = f"{f.format.lower()}/{f.subtype.lower()}"
        sr = int(f.samplerate)
        if max_seconds and f.frames > max_seconds * sr:
            blocks = (
                np.ascontiguousarray(block.T)
                for block in f.blocks(int(BLOCK_SECONDS * sr), dtype="float32", always_2d=True)
            )
            samples, whole = measure_and_excerpt(
                blocks, frames=f.frames, channels=f.channels, sr=sr, max_seconds=max_seconds
            )
            return Decoded(samples, sr, "soundfile", codec, whole)
        samples = f.read(dtype="float32", always_2d=True)
    return Decoded(np.ascontiguousarray(samples.T), sr, "soundfile", codec)


def _decode_essentia(path: str, max_seconds: float) -> Decoded:
    del max_seconds  # AudioLoader reads whole files only
    import essentia.standard as es

    audio, sr, channels, _md5, _bitrate, codec = es.AudioLoader(filename=path)()
    # AudioLoader always returns two columns; a mono source has them identical.
    samples = audio[:, :1] if int(channels) == 1 else audio
    return Decoded(np.ascontiguousarray(samples.T), int(sr), "essentia", str(codec))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    line = line.replace("Error while configuring AudioLoader: AudioLoader: ", "")
    line = re.sub(r"^Error opening '.*?': ", "", line)
    # libsndfile's words when its MP3 reader finds no frame in a file that does exist.
    return line.replace(
        "File does not exist or is not a regular file (possibly a pipe?).", "no audio stream found"
    )
