"""Read tags and stream information from an audio file with mutagen, read-only.

A tag problem never fails a file: the caller decodes the audio on its own and decides whether
the file is audio at all. So every mutagen error ends here as an empty or partial
:class:`~playlista.records.Tags` plus a human-readable warning. ``OSError`` is different: it says
the file could not be read at all, and the caller classifies it (vanished, unreadable, transient).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from typing import Any, BinaryIO

from mutagen import FileType, MutagenError
from mutagen.aac import AAC
from mutagen.ac3 import AC3
from mutagen.aiff import AIFF
from mutagen.apev2 import APEBinaryValue, APEv2File
from mutagen.asf import ASF, ASFByteArrayAttribute
from mutagen.dsdiff import DSDIFF
from mutagen.dsf import DSF
from mutagen.flac import FLAC
from mutagen.id3 import ID3, ID3FileType
from mutagen.monkeysaudio import MonkeysAudio
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Tags
from mutagen.musepack import Musepack
from mutagen.ogg import OggFileType
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggtheora import OggTheora
from mutagen.oggvorbis import OggVorbis
from mutagen.optimfrog import OptimFROG
from mutagen.smf import SMF
from mutagen.tak import TAK
from mutagen.trueaudio import TrueAudio
from mutagen.wave import WAVE
from mutagen.wavpack import WavPack

from playlista.records import Tags

logger = logging.getLogger(__name__)

Kind = type[FileType]

# The same classes mutagen.File considers by default, so scoring ranks them the same way.
_ALL_KINDS: tuple[Kind, ...] = (
    MP3, TrueAudio, OggTheora, OggSpeex, OggVorbis, OggFLAC, FLAC, AIFF, APEv2File, MP4,
    ID3FileType, WavPack, Musepack, MonkeysAudio, OptimFROG, ASF, OggOpus, AAC, AC3, SMF, TAK,
    DSF, DSDIFF, WAVE,
)  # fmt: skip
# These read a tag block only; their "stream info" describes nothing.
_TAG_ONLY_KINDS: tuple[Kind, ...] = (APEv2File, ID3FileType)

_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
# Signatures that name exactly one container. ID3 and MPEG/ADTS sync words are left out on
# purpose: an ID3 block may front MP3, AAC, FLAC or TTA, so those go to mutagen's scoring.
_MAGIC: tuple[tuple[int, bytes, Kind], ...] = (
    (0, b"fLaC", FLAC), (4, b"ftyp", MP4), (0, _ASF_GUID, ASF), (0, b"wvpk", WavPack),
    (0, b"MAC ", MonkeysAudio), (0, b"MPCK", Musepack), (0, b"MP+", Musepack),
    (0, b"OFR ", OptimFROG), (0, b"tBaK", TAK), (0, b"DSD ", DSF), (0, b"FRM8", DSDIFF),
    (0, b"MThd", SMF),
)  # fmt: skip
_OGG_CODEC_IDS: tuple[tuple[bytes, Kind], ...] = (
    (b"\x01vorbis", OggVorbis), (b"OpusHead", OggOpus), (b"\x7fFLAC", OggFLAC),
    (b"Speex   ", OggSpeex), (b"\x80theora", OggTheora),
)  # fmt: skip
_OGG_KINDS = tuple(kind for _, kind in _OGG_CODEC_IDS)

_BY_EXTENSION: dict[str, tuple[Kind, ...]] = {
    ".mp3": (MP3,), ".mp2": (MP3,), ".flac": (FLAC,), ".opus": (OggOpus,), ".spx": (OggSpeex,),
    ".ogg": _OGG_KINDS, ".oga": _OGG_KINDS, ".m4a": (MP4,), ".m4b": (MP4,), ".mp4": (MP4,),
    ".aac": (AAC, MP4), ".wav": (WAVE,), ".wave": (WAVE,), ".aif": (AIFF,), ".aiff": (AIFF,),
    ".aifc": (AIFF,), ".wma": (ASF,), ".asf": (ASF,), ".wv": (WavPack,), ".mpc": (Musepack,),
    ".ape": (MonkeysAudio,), ".tta": (TrueAudio,), ".ofr": (OptimFROG,), ".tak": (TAK,),
    ".dsf": (DSF,), ".dff": (DSDIFF,), ".ac3": (AC3,), ".mid": (SMF,), ".midi": (SMF,),
}  # fmt: skip

_CODEC_BY_KIND: dict[Kind, str] = {
    OggVorbis: "vorbis", OggOpus: "opus", OggFLAC: "flac", OggSpeex: "speex",
    OggTheora: "theora", FLAC: "flac", AIFF: "pcm", AAC: "aac", WavPack: "wavpack",
    Musepack: "musepack", MonkeysAudio: "ape", TrueAudio: "tta", OptimFROG: "optimfrog",
    TAK: "tak", DSF: "dsd", DSDIFF: "dsd", SMF: "midi",
}  # fmt: skip
# WAVE's format tag and ASF's codec id share Microsoft's registry. 0xFFFE (extensible) hides
# the real format in a GUID mutagen does not expose; in practice it is PCM.
_WAVE_FORMAT_TAGS: dict[int, str] = {
    0x0001: "pcm", 0x0003: "pcm", 0xFFFE: "pcm", 0x0002: "adpcm", 0x0011: "adpcm",
    0x0006: "alaw", 0x0007: "mulaw", 0x0050: "mp2", 0x0055: "mp3", 0x00FF: "aac",
    0x1610: "aac", 0x2000: "ac3", 0xF1AC: "flac", 0x000A: "wmavoice", 0x0160: "wma",
    0x0161: "wma", 0x0162: "wmapro", 0x0163: "wmalossless",
}  # fmt: skip
_MP4_CODECS: dict[str, str] = {
    "alac": "alac", "ac-3": "ac3", "ec-3": "eac3", "flac": "flac", "opus": "opus",
    "mp4a.6b": "mp3", "mp4a.69": "mp3",
}  # fmt: skip

# One vocabulary for every key/value tag family, lowercased: Vorbis comments, APEv2, ASF,
# ID3 TXXX descriptions and MP4 freeform names. Picard's "track id" is the recording id.
_KEY_ALIASES: dict[str, str] = {
    "title": "title", "artist": "artist", "author": "artist", "album": "album",
    "wm/albumtitle": "album", "albumartist": "albumartist", "album artist": "albumartist",
    "album_artist": "albumartist", "wm/albumartist": "albumartist", "genre": "genre",
    "wm/genre": "genre", "date": "date", "year": "date", "wm/year": "date",
    "tracknumber": "tracknumber", "track": "tracknumber", "wm/tracknumber": "tracknumber",
    "tracktotal": "tracktotal", "totaltracks": "tracktotal", "discnumber": "discnumber",
    "disc": "discnumber", "wm/partofset": "discnumber", "disctotal": "disctotal",
    "totaldiscs": "disctotal",
    "musicbrainz_trackid": "mb_track", "musicbrainz track id": "mb_track",
    "musicbrainz/track id": "mb_track",
    "musicbrainz_albumid": "mb_album", "musicbrainz album id": "mb_album",
    "musicbrainz/album id": "mb_album",
    "musicbrainz_artistid": "mb_artist", "musicbrainz artist id": "mb_artist",
    "musicbrainz/artist id": "mb_artist",
    "replaygain_track_gain": "rg_track_gain", "replaygain_track_peak": "rg_track_peak",
    "replaygain_album_gain": "rg_album_gain", "replaygain_album_peak": "rg_album_peak",
}  # fmt: skip
_ID3_FRAMES = {
    "TIT2": "title", "TPE1": "artist", "TALB": "album", "TPE2": "albumartist",
    "TCON": "genre", "TDRC": "date", "TRCK": "tracknumber", "TPOS": "discnumber",
}  # fmt: skip
_MP4_ATOMS = {
    "©nam": "title", "©ART": "artist", "©alb": "album", "aART": "albumartist",
    "©gen": "genre", "©day": "date",
}  # fmt: skip
_MUSICBRAINZ_UFID_OWNER = "http://musicbrainz.org"

_NUMBER_PAIR = re.compile(r"^\s*(\d+)\s*(?:/\s*(\d*)\s*)?$")
_YEAR = re.compile(r"^\s*(\d{4})(?:\D|$)")
_GAIN = re.compile(r"^\s*([+-]?\d+(?:[.,]\d+)?)\s*(?:db)?\s*$", re.IGNORECASE)

Fields = dict[str, list[str]]


def read_tags(path: str) -> tuple[Tags, tuple[str, ...]]:
    """Read the tags and stream information of the file at ``path``.

    Returns the record and warnings about what could not be read. A file mutagen cannot read
    gives an empty ``Tags()`` and a warning. Raises ``OSError`` when the file cannot be read.
    """
    warnings: list[str] = []
    with open(path, "rb") as fileobj:
        audio = _load(fileobj, path=path, warnings=warnings)
    if audio is None:
        logger.debug("no tags read from %s: %s", path, "; ".join(warnings))
        return Tags(), tuple(warnings)
    fields = _fields(audio.tags)
    # Exact type: MP3 and TrueAudio subclass ID3FileType but do carry stream info.
    stream = {} if type(audio) in _TAG_ONLY_KINDS else _stream_info(audio)
    if not stream:
        warnings.append(f"{type(audio).__name__} read tags only: no stream information")
    track_no, track_total = _numbers(fields, "track", warnings=warnings)
    disc_no, disc_total = _numbers(fields, "disc", warnings=warnings)
    tags = Tags(
        title=_text(fields.get("title")),
        artist=_text(fields.get("artist")),
        album=_text(fields.get("album")),
        albumartist=_text(fields.get("albumartist")),
        genre=_text(fields.get("genre")),
        year=_year(fields.get("date"), warnings=warnings),
        track_no=track_no,
        track_total=track_total,
        disc_no=disc_no,
        disc_total=disc_total,
        musicbrainz_trackid=_text(fields.get("mb_track")),
        musicbrainz_albumid=_text(fields.get("mb_album")),
        musicbrainz_artistid=_text(fields.get("mb_artist")),
        replaygain_track_gain_db=_float(fields, "rg_track_gain", warnings=warnings),
        replaygain_track_peak=_float(fields, "rg_track_peak", warnings=warnings),
        replaygain_album_gain_db=_float(fields, "rg_album_gain", warnings=warnings),
        replaygain_album_peak=_float(fields, "rg_album_peak", warnings=warnings),
        **stream,
    )
    if warnings:
        logger.debug("tags of %s: %s", path, "; ".join(warnings))
    return tags, tuple(warnings)


def _load(fileobj: BinaryIO, *, path: str, warnings: list[str]) -> FileType | None:
    """Open the file with the first mutagen class that reads it, content before extension.

    mutagen.File alone is not enough: it lets the extension outvote the content (a FLAC named
    .wav goes to WAVE and fails) and it tries only its top-scored class.
    """
    header = fileobj.read(128)
    extension = os.path.splitext(path)[1].lower()
    by_extension = _BY_EXTENSION.get(extension, ())
    by_content = _sniff(header)
    candidates = [by_content] if by_content else []
    # The ranking mutagen.File uses (score, then name), but every class that scores, in turn.
    scored = []
    for kind in _ALL_KINDS:
        fileobj.seek(0)  # some score() methods seek to read a footer
        scored.append((kind.score(path, fileobj, header), kind.__name__, kind))
    candidates += [kind for score, _, kind in sorted(scored, reverse=True) if score > 0]
    candidates += by_extension
    failures: list[str] = []
    for kind in dict.fromkeys(candidates):  # ordered and without repeats
        fileobj.seek(0)
        try:
            audio = kind(fileobj)
        except MutagenError as exc:
            _raise_io_cause(exc)
            failures.append(f"{kind.__name__}: {exc}")
            continue
        if failures:
            warnings.append(f"read as {kind.__name__} after {'; '.join(failures)}")
        if by_extension and not _same_container(kind, by_extension):
            warnings.append(f"content is {kind.__name__}, not what the {extension} name says")
        return audio
    reason = "; ".join(failures) or "it knows neither the content nor the extension"
    warnings.append(f"mutagen could not read the file: {reason}")
    return None


def _sniff(header: bytes) -> Kind | None:
    """The container class named by the file's magic bytes, if they name exactly one."""
    if header.startswith(b"OggS"):
        return next((kind for codec_id, kind in _OGG_CODEC_IDS if codec_id in header), None)
    if header.startswith(b"RIFF") and header[8:12] == b"WAVE":
        return WAVE
    if header.startswith(b"FORM") and header[8:12] in (b"AIFF", b"AIFC"):
        return AIFF
    return next(
        (kind for offset, magic, kind in _MAGIC if header[offset : offset + len(magic)] == magic),
        None,
    )


def _same_container(kind: Kind, expected: tuple[Kind, ...]) -> bool:
    # An .ogg holding Opus or FLAC is still an Ogg file: not worth a warning.
    return kind in expected or (issubclass(kind, OggFileType) and expected == _OGG_KINDS)


def _raise_io_cause(exc: MutagenError) -> None:
    """Re-raise the OSError a mutagen error wraps: a failed read is not a tag problem."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError):
            raise cause
        cause = cause.__cause__ or cause.__context__


def _fields(tags: Any) -> Fields:
    """Every tag family's values under one set of keys (see ``_KEY_ALIASES``)."""
    if tags is None:
        return {}
    if isinstance(tags, ID3):
        return _id3_fields(tags)
    if isinstance(tags, MP4Tags):
        return _mp4_fields(tags)
    fields: Fields = {}
    for key, value in tags.items():  # Vorbis comments, APEv2, ASF
        _add(fields, _KEY_ALIASES.get(key.lower()), _texts(value))
    return fields


def _id3_fields(tags: ID3) -> Fields:
    fields: Fields = {}
    for frame_id, name in _ID3_FRAMES.items():
        for frame in tags.getall(frame_id):
            # TCON's genres turn ID3v1 numbers such as "(9)" into names.
            _add(fields, name, frame.genres if frame_id == "TCON" else _texts(frame.text))
    for frame in tags.getall("TXXX"):
        _add(fields, _KEY_ALIASES.get(frame.desc.lower()), _texts(frame.text))
    for frame in tags.getall("UFID"):
        if frame.owner == _MUSICBRAINZ_UFID_OWNER:
            _add(fields, "mb_track", _texts(frame.data))
    # RVA2 is ID3's own ReplayGain frame; TXXX values, when present, came first and win.
    for frame in tags.getall("RVA2"):
        scope = frame.desc.lower()
        if scope in ("track", "album") and f"rg_{scope}_gain" not in fields:
            _add(fields, f"rg_{scope}_gain", [str(frame.gain)])
            _add(fields, f"rg_{scope}_peak", [str(frame.peak)])
    return fields


def _mp4_fields(tags: MP4Tags) -> Fields:
    fields: Fields = {}
    for key, value in tags.items():
        if key in _MP4_ATOMS:
            _add(fields, _MP4_ATOMS[key], _texts(value))
        elif key in ("trkn", "disk"):
            prefix = "track" if key == "trkn" else "disc"
            for number, total in value:
                # iTunes writes 0 for "not set".
                _add(fields, f"{prefix}number", [str(number)] if number else [])
                _add(fields, f"{prefix}total", [str(total)] if total else [])
        elif key.startswith("----:"):
            _add(fields, _KEY_ALIASES.get(key.split(":", 2)[2].lower()), _texts(value))
    return fields


def _add(fields: Fields, name: str | None, values: Iterable[str]) -> None:
    if name is not None:
        fields.setdefault(name, []).extend(values)


def _texts(value: Any) -> list[str]:
    """The text values in whatever a tag library holds: lists, bytes, APE and ASF values."""
    if isinstance(value, APEBinaryValue | ASFByteArrayAttribute):
        return []  # cover art and other blobs
    if isinstance(value, bytes):
        return [value.decode("utf-8", errors="replace")]
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):  # lists of values, APE text values
        return [text for item in value for text in _texts(item)]
    return [str(value)]


def _text(values: list[str] | None) -> str | None:
    """Stripped, non-empty values joined with '; ' (a repeated value once), else None."""
    texts = dict.fromkeys(text.strip() for text in values or ())
    texts.pop("", None)
    return "; ".join(texts) or None


def _first(values: list[str] | None) -> str | None:
    return next((text.strip() for text in values or () if text.strip()), None)


def _year(values: list[str] | None, *, warnings: list[str]) -> int | None:
    text = _first(values)
    if text is None:
        return None
    match = _YEAR.match(text)
    if match is None or int(match.group(1)) == 0:
        warnings.append(f"date {text!r} has no year")
        return None
    return int(match.group(1))


def _numbers(fields: Fields, prefix: str, *, warnings: list[str]) -> tuple[int | None, int | None]:
    """Number and total of a track or disc, from '4/4', '4' and a separate total key."""
    number: int | None = None
    total: int | None = None
    text = _first(fields.get(f"{prefix}number"))
    if text is not None:
        match = _NUMBER_PAIR.match(text)
        if match is None:
            warnings.append(f"{prefix} number {text!r} is not a number")
        else:
            number = int(match.group(1)) or None
            total = int(match.group(2)) if match.group(2) else None
    total_text = _first(fields.get(f"{prefix}total"))
    if total is None and total_text is not None:
        if total_text.isdecimal():
            total = int(total_text)
        else:
            warnings.append(f"{prefix} total {total_text!r} is not a number")
    return number, total or None


def _float(fields: Fields, name: str, *, warnings: list[str]) -> float | None:
    """A ReplayGain value: gains read as '-1.40 dB' (decibels), peaks as plain numbers."""
    text = _first(fields.get(name))
    if text is None:
        return None
    match = _GAIN.match(text)
    if match is None:
        warnings.append(f"{name.replace('rg_', 'replaygain_')} {text!r} is not a number")
        return None
    return float(match.group(1).replace(",", "."))


def _stream_info(audio: FileType) -> dict[str, Any]:
    info = audio.info
    sample_rate = getattr(info, "sample_rate", 0)
    if isinstance(audio, OggOpus):
        # Opus always decodes at 48 kHz; the header's input rate is informational only.
        sample_rate = 48000
    length = getattr(info, "length", None)
    return {
        "codec": _codec(audio),
        "bitrate": int(getattr(info, "bitrate", 0) or 0) or None,  # 0 means unknown
        "sample_rate": int(sample_rate or 0) or None,
        "channels": int(getattr(info, "channels", 0) or 0) or None,
        "duration_s": float(length) if length is not None else None,
    }


def _codec(audio: FileType) -> str | None:
    info: Any = audio.info
    if isinstance(audio, MP3):
        return f"mp{info.layer}"
    if isinstance(audio, MP4):
        codec = info.codec.lower()
        return "aac" if codec.startswith("mp4a.40") else _MP4_CODECS.get(codec, codec or None)
    if isinstance(audio, WAVE):
        return _WAVE_FORMAT_TAGS.get(info.audio_format, f"wav_0x{info.audio_format:04x}")
    if isinstance(audio, ASF):
        return _WAVE_FORMAT_TAGS.get(info.codec_type, "wma")
    if isinstance(audio, AC3):
        return "eac3" if info.codec == "ec-3" else "ac3"
    return _CODEC_BY_KIND.get(type(audio))
