"""Tags written into copies of corpus files with mutagen, then read back: MusicBrainz IDs,
ReplayGain, totals and several values, numbers that do not parse, ID3v1, RVA2, a WAV ID3
chunk, and the ASF and APEv2 keys."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from mutagen.apev2 import APEv2
from mutagen.asf import ASFDWordAttribute, ASFTags
from mutagen.flac import FLAC
from mutagen.id3 import ID3, RVA2, TIT2, TPE2, TPOS, TXXX, UFID
from mutagen.mp4 import MP4, MP4FreeForm
from mutagen.wave import WAVE

from playlista.audio import tags as tags_module
from playlista.audio.tags import read_tags
from tests.test_tags import MANIFEST, MB_ALBUM, MB_ARTISTS, MB_TRACK, writable_copy


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


def flac_tagged(name: str, tmp_path: Path, comments: dict[str, str | list[str]]) -> str:
    """A copy of the corpus FLAC ``name`` with these Vorbis comments written into it."""
    path = writable_copy(name, tmp_path)
    audio = FLAC(path)
    if audio.tags is None:
        audio.add_tags()
    audio.update(comments)
    audio.save()
    return path


def test_vorbis_separate_totals_multiple_values_and_blanks(tmp_path: Path) -> None:
    path = flac_tagged(
        "good/rendered/bach_bwv351.flac",
        tmp_path,
        {
            "tracknumber": "03",
            "totaltracks": "12",
            "discnumber": "2",
            "totaldiscs": "3",
            "artist": ["Anna", " Ben ", ""],
            "album": "   ",
            "year": "1999-05-01",
            "genre": ["Choral", "Choral"],
        },
    )
    tags, warnings = read_tags(path)
    assert (tags.track_no, tags.track_total, tags.disc_no, tags.disc_total) == (3, 12, 2, 3)
    assert (tags.artist, tags.album, tags.year, tags.genre) == ("Anna; Ben", None, 1999, "Choral")
    assert warnings == ()


def test_unparseable_numbers_become_none_with_warnings(tmp_path: Path) -> None:
    path = flac_tagged(
        "good/samples/loop_amen_full.flac",
        tmp_path,
        {"tracknumber": "A1", "date": "unknown", "replaygain_track_gain": "loud", "title": "Amen"},
    )
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
