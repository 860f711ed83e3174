"""read_tags against the real corpus, and against tagged copies of it in tmp_path."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import mutagen
import pytest
from mutagen.apev2 import APEv2
from mutagen.asf import ASFDWordAttribute, ASFTags
from mutagen.flac import FLAC
from mutagen.id3 import ID3, RVA2, TIT2, TPE2, TPOS, TXXX, UFID
from mutagen.mp4 import MP4, MP4FreeForm
from mutagen.wave import WAVE

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


def write_ids_mp3(path: str) -> None:
    id3 = ID3(path)
    id3.add(UFID(owner="http://musicbrainz.org", data=MB_TRACK.encode()))
    id3.add(TXXX(encoding=3, desc="MusicBrainz Album Id", text=[MB_ALBUM]))
    id3.add(TXXX(encoding=3, desc="MusicBrainz Artist Id", text=list(MB_ARTISTS)))
    id3.add(TXXX(encoding=3, desc="replaygain_track_gain", text=["-6.50 dB"]))
    id3.add(TXXX(encoding=3, desc="replaygain_track_peak", text=["0.988000"]))
    id3.add(TXXX(encoding=3, desc="REPLAYGAIN_ALBUM_GAIN", text=["+2.10 dB"]))
    id3.add(TXXX(encoding=3, desc="REPLAYGAIN_ALBUM_PEAK", text=["1.000000"]))
    id3.add(TPE2(encoding=3, text=["Various Artists"]))
    id3.add(TPOS(encoding=3, text=["1/2"]))
    id3.save()


def write_ids_flac(path: str) -> None:
    audio = FLAC(path)
    audio.update(
        {
            "musicbrainz_trackid": MB_TRACK,
            "musicbrainz_albumid": MB_ALBUM,
            "musicbrainz_artistid": list(MB_ARTISTS),
            "replaygain_track_gain": "-6.50 dB",
            "replaygain_track_peak": "0.988000",
            "REPLAYGAIN_ALBUM_GAIN": "+2.10 dB",
            "REPLAYGAIN_ALBUM_PEAK": "1.000000",
            "albumartist": "Various Artists",
            "discnumber": "1",
            "disctotal": "2",
        }
    )
    audio.save()


def write_ids_m4a(path: str) -> None:
    audio = MP4(path)
    assert audio.tags is not None

    def freeform(text: str) -> list[MP4FreeForm]:
        return [MP4FreeForm(text.encode())]

    itunes = "----:com.apple.iTunes:"
    audio.tags[itunes + "MusicBrainz Track Id"] = freeform(MB_TRACK)
    audio.tags[itunes + "MusicBrainz Album Id"] = freeform(MB_ALBUM)
    audio.tags[itunes + "MusicBrainz Artist Id"] = [MP4FreeForm(a.encode()) for a in MB_ARTISTS]
    audio.tags[itunes + "replaygain_track_gain"] = freeform("-6.50 dB")
    audio.tags[itunes + "replaygain_track_peak"] = freeform("0.988000")
    audio.tags[itunes + "REPLAYGAIN_ALBUM_GAIN"] = freeform("+2.10 dB")
    audio.tags[itunes + "REPLAYGAIN_ALBUM_PEAK"] = freeform("1.000000")
    audio.tags["aART"] = ["Various Artists"]
    audio.tags["disk"] = [(1, 2)]
    audio.save()


@pytest.mark.parametrize(
    ("suffix", "write"), [("mp3", write_ids_mp3), ("flac", write_ids_flac), ("m4a", write_ids_m4a)]
)
def test_musicbrainz_and_replaygain_written_to_a_copy_read_back(
    suffix: str, write: Callable[[str], None], tmp_path: Path
) -> None:
    path = writable_copy(f"good/formats/war_of_freedom_60s.{suffix}", tmp_path)
    write(path)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    tags, warnings = read_tags(path)
    assert tags.musicbrainz_trackid == MB_TRACK
    assert tags.musicbrainz_albumid == MB_ALBUM
    assert tags.musicbrainz_artistid == "; ".join(MB_ARTISTS)
    assert tags.replaygain_track_gain_db == pytest.approx(-6.5)
    assert tags.replaygain_track_peak == pytest.approx(0.988)
    assert tags.replaygain_album_gain_db == pytest.approx(2.1)
    assert tags.replaygain_album_peak == pytest.approx(1.0)
    assert (tags.albumartist, tags.disc_no, tags.disc_total) == ("Various Artists", 1, 2)
    assert (tags.title, tags.track_no) == ("War of freedom", 4)
    assert warnings == ()
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest  # read-only


def test_vorbis_separate_totals_multiple_values_and_blanks(tmp_path: Path) -> None:
    path = writable_copy("good/rendered/bach_bwv351.flac", tmp_path)
    audio = FLAC(path)
    if audio.tags is None:
        audio.add_tags()
    audio.update(
        {
            "tracknumber": "03",
            "totaltracks": "12",
            "discnumber": "2",
            "totaldiscs": "3",
            "artist": ["Anna", " Ben ", ""],
            "album": "   ",
            "year": "1999-05-01",
            "genre": ["Choral", "Choral"],
        }
    )
    audio.save()
    tags, warnings = read_tags(path)
    assert (tags.track_no, tags.track_total, tags.disc_no, tags.disc_total) == (3, 12, 2, 3)
    assert (tags.artist, tags.album, tags.year, tags.genre) == ("Anna; Ben", None, 1999, "Choral")
    assert warnings == ()


def test_unparseable_numbers_become_none_with_warnings(tmp_path: Path) -> None:
    path = writable_copy("good/samples/loop_amen_full.flac", tmp_path)
    audio = FLAC(path)
    if audio.tags is None:
        audio.add_tags()
    audio.update(
        {"tracknumber": "A1", "date": "unknown", "replaygain_track_gain": "loud", "title": "Amen"}
    )
    audio.save()
    tags, warnings = read_tags(path)
    assert (tags.track_no, tags.year, tags.replaygain_track_gain_db) == (None, None, None)
    assert tags.title == "Amen"
    assert len(warnings) == 3
    assert any("'A1'" in w for w in warnings) and any("'unknown'" in w for w in warnings)
    assert any("'loud'" in w for w in warnings)


def id3v1(*, title: str, artist: str, album: str, year: str, track: int, genre: int) -> bytes:
    def field(text: str, size: int) -> bytes:
        return text.encode("latin-1").ljust(size, b"\0")

    return (
        b"TAG" + field(title, 30) + field(artist, 30) + field(album, 30) + field(year, 4)
        + field("", 28) + b"\0" + bytes([track, genre])
    )  # fmt: skip


def test_an_id3v1_only_mp3(tmp_path: Path) -> None:
    path = writable_copy("good/games/asc_machine_wars.mp3", tmp_path)
    with open(path, "ab") as f:
        f.write(
            id3v1(title="Machine Wars", artist="ASC", album="OST", year="2003", track=7, genre=9)
        )
    tags, _ = read_tags(path)
    assert (tags.title, tags.artist, tags.album) == ("Machine Wars", "ASC", "OST")
    assert (tags.year, tags.track_no, tags.genre) == (2003, 7, "Metal")
    assert (tags.codec, tags.sample_rate) == ("mp3", 22050)


def test_rva2_frames_give_replaygain(tmp_path: Path) -> None:
    path = writable_copy("good/formats/war_of_freedom_60s.mp3", tmp_path)
    id3 = ID3(path)
    id3.add(RVA2(desc="track", channel=1, gain=-3.5, peak=0.5))
    id3.save()
    tags, _ = read_tags(path)
    assert tags.replaygain_track_gain_db == pytest.approx(-3.5)
    assert tags.replaygain_track_peak == pytest.approx(0.5, abs=1e-3)
    assert tags.replaygain_album_gain_db is None


def test_a_wav_id3_chunk(tmp_path: Path) -> None:
    path = writable_copy("good/rendered/trance1.wav", tmp_path)
    audio = WAVE(path)
    audio.add_tags()
    assert audio.tags is not None
    audio.tags.add(TIT2(encoding=3, text=["Trance 1"]))
    audio.save()
    tags, _ = read_tags(path)
    assert (tags.title, tags.codec, tags.channels) == ("Trance 1", "pcm", 2)
    assert tags.duration_s == pytest.approx(MANIFEST["good/rendered/trance1.wav"]["duration_s"])


def test_asf_and_apev2_keys_map_to_the_same_fields() -> None:
    # No WMA or APEv2 container is in the corpus and mutagen cannot create one, so the key
    # mapping is checked on the tag objects mutagen would hand over.
    asf = ASFTags()
    asf["Author"] = ["Anna", "Ben"]
    asf["WM/AlbumTitle"] = ["Live"]
    asf["WM/TrackNumber"] = [ASFDWordAttribute(3)]
    asf["MusicBrainz/Track Id"] = [MB_TRACK]
    ape = APEv2()
    ape["Artist"] = ["Anna", "Ben"]
    ape["Album"] = "Live"
    ape["Track"] = "3/9"
    ape["MUSICBRAINZ_TRACKID"] = MB_TRACK
    expected = {"artist": ["Anna", "Ben"], "album": ["Live"], "mb_track": [MB_TRACK]}
    asf_fields = tags_module._fields(asf)
    ape_fields = tags_module._fields(ape)
    assert {key: asf_fields[key] for key in expected} == expected
    assert {key: ape_fields[key] for key in expected} == expected
    assert (asf_fields["tracknumber"], ape_fields["tracknumber"]) == (["3"], ["3/9"])
