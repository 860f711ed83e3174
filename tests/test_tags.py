"""read_tags against the real corpus, and against tagged copies of it in tmp_path."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import stat
from pathlib import Path

import mutagen
import pytest

from playlista.audio import tags as tags_module
from playlista.audio.tags import read_tags
from playlista.records import Tags

CORPUS = Path(os.environ.get("PLAYLISTA_CORPUS", Path(__file__).parents[2] / "shared" / "corpus"))
if not (CORPUS / "manifest.json").is_file():
    pytest.skip(f"no test corpus at {CORPUS}", allow_module_level=True)
MANIFEST = {entry["file"]: entry for entry in json.loads((CORPUS / "manifest.json").read_text())}
GOOD = sorted(name for name in MANIFEST if name.startswith("good/"))
BAD = sorted(name for name in MANIFEST if name.startswith("bad/"))

# What the manifest's ffprobe-style format names are called in Tags.codec.
CODEC_OF_FORMAT = {
    "vorbis": "vorbis",
    "opus": "opus",
    "flac": "flac",
    "mp3": "mp3",
    "aac": "aac",
    "pcm_s16le": "pcm",
    "pcm_s16be": "pcm",
}
# mutagen.File gives these objects that are falsy (they have no tags), not None.
UNTAGGED = [
    "good/games/asc_machine_wars.mp3",
    "good/blupi/music004.ogg",
    "good/rendered/trance1.wav",
    "good/samples/loop_amen_full.flac",
]
MB_TRACK = "3c1b2a3e-6f0b-4b8e-9a9f-0f4f6b9d2c11"
MB_ALBUM = "8a7d0c52-1c0e-4d1f-8f66-2b9d7c7e5a01"
MB_ARTISTS = ("5b11f4ce-a62d-471e-81fc-a69a8278c7da", "0383dadf-2a4e-4d10-a46a-e9e041da8eb3")


def corpus(name: str) -> str:
    return str(CORPUS / name)


def writable_copy(name: str, tmp_path: Path, *, as_name: str | None = None) -> str:
    """A copy the test may change: the corpus itself is read-only (no write bits in CI)."""
    target = tmp_path / (as_name or Path(name).name)
    shutil.copyfile(CORPUS / name, target)
    target.chmod(target.stat().st_mode | stat.S_IWUSR)
    return str(target)


def test_the_manifest_lists_what_these_tests_rely_on() -> None:
    # Guards the parametrisations below against an edited manifest silently shrinking them.
    assert len(GOOD) == 24
    assert len(BAD) == 12
    assert all(name in MANIFEST for name in UNTAGGED)
    assert len(TAGGED) == 12


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [("mp3", "mp3"), ("ogg", "vorbis"), ("opus", "opus"), ("flac", "flac"), ("m4a", "aac"),
     ("aiff", "pcm")],
)  # fmt: skip
def test_the_six_containers_agree(suffix: str, codec: str) -> None:
    tags, warnings = read_tags(corpus(f"good/formats/war_of_freedom_60s.{suffix}"))
    assert (tags.title, tags.artist, tags.album, tags.genre) == (
        "War of freedom",
        "Sectoid",
        "Frets on Fire song pack (Sectoid)",
        "Metal",
    )
    assert (tags.year, tags.track_no, tags.track_total) == (2007, 4, 4)
    assert (tags.disc_no, tags.albumartist, tags.musicbrainz_trackid) == (None, None, None)
    assert tags.codec == codec
    assert warnings == ()


@pytest.mark.parametrize("name", GOOD)
def test_stream_info_matches_the_manifest(name: str) -> None:
    entry = MANIFEST[name]
    tags, _ = read_tags(corpus(name))
    assert tags.codec == CODEC_OF_FORMAT[entry["format"]]
    assert tags.sample_rate is not None and tags.channels is not None
    assert tags.bitrate is not None and tags.bitrate > 0
    if entry.get("sample_rate") is None:
        # hyperrogue_caribbean.ogg: the manifest only gives a round "60"; libsndfile decodes
        # 62.31 s, which is what its last Ogg granule says too.
        assert tags.duration_s == pytest.approx(62.31, abs=0.1)
        return
    assert tags.sample_rate == entry["sample_rate"]
    assert tags.channels == entry["channels"]
    assert tags.duration_s == pytest.approx(entry["duration_s"], abs=0.1)


def expected_from_manifest(tags: dict[str, str]) -> dict[str, object]:
    """The Tags fields the manifest's raw tag values imply (BPM has no field, so it is left)."""
    expected: dict[str, object] = {}
    for key, value in tags.items():
        if key in ("title", "artist", "album", "genre"):
            expected[key] = value
        elif key == "date":
            expected["year"] = int(value[:4])
        elif key == "tracknumber":
            number, _, total = value.partition("/")
            expected["track_no"] = int(number)
            expected["track_total"] = int(total) if total else None
        elif key == "replaygain_track_gain":
            expected["replaygain_track_gain_db"] = float(value.removesuffix(" dB"))
    return expected


TAGGED = [name for name in GOOD if expected_from_manifest(MANIFEST[name].get("tags") or {})]


@pytest.mark.parametrize("name", TAGGED)
def test_tag_values_match_the_manifest(name: str) -> None:
    expected = expected_from_manifest(MANIFEST[name]["tags"])
    tags, _ = read_tags(corpus(name))
    assert {field: getattr(tags, field) for field in expected} == expected


def test_replaygain_is_parsed_from_db_strings() -> None:
    tags, warnings = read_tags(corpus("good/games/nexuiz_thunder.ogg"))
    assert tags.replaygain_track_gain_db == pytest.approx(-1.40)
    assert tags.replaygain_track_peak == pytest.approx(1.01615322)
    assert tags.replaygain_album_gain_db is None
    assert warnings == ()


def test_wesnoth_reads_albumartist_and_disc() -> None:
    tags, _ = read_tags(corpus("good/games/wesnoth_elvish_theme.ogg"))
    assert (tags.albumartist, tags.track_no, tags.track_total) == ("Wesnoth Project", 6, None)
    assert (tags.disc_no, tags.disc_total, tags.genre) == (1, None, "Romantic Classical")


@pytest.mark.parametrize(
    ("name", "codec", "source"),
    [
        ("damaged/m4a_named.ogg", "aac", "good/formats/war_of_freedom_60s.m4a"),
        ("damaged/ogg_vorbis_named.mp3", "vorbis", "good/games/wesnoth_elvish_theme.ogg"),
        ("damaged/flac_named.wav", "flac", "good/rendered/boogi_marabi.flac"),
    ],
)
def test_misnamed_files_are_read_by_their_content(name: str, codec: str, source: str) -> None:
    tags, warnings = read_tags(corpus(name))
    assert tags.codec == codec
    assert tags.sample_rate == MANIFEST[source]["sample_rate"]
    assert tags.duration_s == pytest.approx(MANIFEST[source]["duration_s"], abs=0.1)
    assert len(warnings) == 1 and Path(name).suffix in warnings[0]


def test_mutagen_file_lets_the_wav_name_beat_flac_content() -> None:
    # Why read_tags sniffs magic bytes first: mutagen.File's extension point for .wav ties
    # with FLAC's magic-bytes point, the tie goes to WAVE by name, and WAVE fails.
    with pytest.raises(mutagen.MutagenError, match="RIFF"):
        mutagen.File(corpus("damaged/flac_named.wav"))


@pytest.mark.parametrize("name", UNTAGGED)
def test_untagged_files_are_falsy_but_not_none_in_mutagen(name: str) -> None:
    # FileType.__len__ counts tag keys: "if not mutagen.File(path)" takes these for None.
    audio = mutagen.File(corpus(name))
    assert audio is not None and len(audio) == 0 and not audio


@pytest.mark.parametrize("name", UNTAGGED)
def test_untagged_files_still_get_stream_info(name: str) -> None:
    entry = MANIFEST[name]
    tags, warnings = read_tags(corpus(name))
    assert tags.codec == CODEC_OF_FORMAT[entry["format"]]
    assert (tags.sample_rate, tags.channels) == (entry["sample_rate"], entry["channels"])
    assert tags.duration_s == pytest.approx(entry["duration_s"], abs=0.1)
    assert tags.title is None and warnings == ()


@pytest.mark.parametrize("name", [name for name in BAD if name != "bad/header_only_0_frames.wav"])
def test_bad_files_give_empty_tags_and_a_warning(name: str) -> None:
    tags, warnings = read_tags(corpus(name))
    assert tags == Tags()
    assert len(warnings) == 1 and warnings[0].startswith("mutagen")


def test_an_unknown_format_gives_empty_tags_and_says_so(tmp_path: Path) -> None:
    path = writable_copy("bad/text_file.flac", tmp_path, as_name="notes.xyz")
    tags, warnings = read_tags(path)
    assert tags == Tags()
    assert warnings == (
        "mutagen could not read the file: it knows neither the content nor the extension",
    )


def test_a_wav_header_without_frames_reads_as_zero_seconds() -> None:
    # A valid header: mutagen reads it; deciding that 0 s is no audio is the decoder's job.
    tags, warnings = read_tags(corpus("bad/header_only_0_frames.wav"))
    assert (tags.codec, tags.sample_rate, tags.duration_s) == ("pcm", 44100, 0.0)
    assert warnings == ()


def test_a_missing_path_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_tags(str(tmp_path / "gone.mp3"))


def test_a_directory_raises_os_error(tmp_path: Path) -> None:
    folder = tmp_path / "album.flac"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        read_tags(str(folder))


class FailingDisk(io.BytesIO):
    """Serves the header, then fails like a dying disk: EIO cannot be produced on demand."""

    name = "failing.flac"

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= 128:
            raise OSError(errno.EIO, "Input/output error")
        return super().read(size)


def test_an_io_error_inside_mutagen_reaches_the_caller_unwrapped() -> None:
    data = (CORPUS / "good/formats/war_of_freedom_60s.flac").read_bytes()
    with pytest.raises(OSError) as caught:
        tags_module._load(FailingDisk(data), path="failing.flac", warnings=[])
    assert caught.value.errno == errno.EIO
    assert not isinstance(caught.value, mutagen.MutagenError)
