"""Discovery and fingerprints, on real folders, links and files in tmp_path."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from playlista.records import FileStat
from playlista.scan import FINGERPRINT_BYTES, discover, fingerprint


def write(path: Path, data: bytes = b"audio") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def stat_of(path: Path | str) -> FileStat:
    st = os.stat(path)
    return FileStat(os.fspath(path), st.st_size, st.st_mtime_ns)


def paths(stats: list[FileStat]) -> list[str]:
    return [s.path for s in stats]


# -- discover -------------------------------------------------------------------------


def test_nested_folders_yield_every_audio_file_with_its_stat(tmp_path: Path) -> None:
    files = [
        write(tmp_path / "top.mp3", b"a" * 10),
        write(tmp_path / "Artist" / "Album" / "01.flac", b"b" * 20),
        write(tmp_path / "Artist" / "Album" / "CD2" / "01.ogg", b"c" * 30),
        write(tmp_path / "Other" / "x.m4a", b"d" * 40),
    ]
    found = list(discover([tmp_path]))
    assert sorted(found, key=lambda s: s.path) == sorted(
        (stat_of(f) for f in files), key=lambda s: s.path
    )
    assert all(os.path.isabs(s.path) for s in found)
    assert {s.size for s in found} == {10, 20, 30, 40}


def test_the_order_is_deterministic_files_before_subfolders_by_name(tmp_path: Path) -> None:
    for name in ["b/2.mp3", "a/1.mp3", "z.mp3", "c.mp3", "a/sub/0.mp3"]:
        write(tmp_path / name)
    found = paths(list(discover([tmp_path])))
    expected = ["c.mp3", "z.mp3", "a/1.mp3", "a/sub/0.mp3", "b/2.mp3"]
    assert found == [str(tmp_path / p) for p in expected]


def test_extensions_match_case_insensitively(tmp_path: Path) -> None:
    upper = write(tmp_path / "LOUD.MP3")
    mixed = write(tmp_path / "Mixed.FlAc")
    lower = write(tmp_path / "quiet.wav")
    assert set(paths(list(discover([tmp_path])))) == {str(upper), str(mixed), str(lower)}


def test_non_audio_files_are_skipped(tmp_path: Path) -> None:
    song = write(tmp_path / "song.opus")
    for name in ["cover.jpg", "notes.txt", "README", "song_mp3", "playlist.m3u", "mp3"]:
        write(tmp_path / name)
    assert paths(list(discover([tmp_path]))) == [str(song)]


def test_a_custom_extension_set_is_honoured(tmp_path: Path) -> None:
    write(tmp_path / "song.mp3")
    notes = write(tmp_path / "notes.TXT")
    assert paths(list(discover([tmp_path], extensions=frozenset({".txt"})))) == [str(notes)]


def test_hidden_files_and_hidden_folders_are_skipped(tmp_path: Path) -> None:
    visible = write(tmp_path / "visible.mp3")
    write(tmp_path / ".hidden.mp3")
    write(tmp_path / ".cache" / "inside.mp3")
    write(tmp_path / "album" / ".AppleDouble" / "._track.mp3")
    shown = write(tmp_path / "album" / "track.mp3")
    assert set(paths(list(discover([tmp_path])))) == {str(visible), str(shown)}


def test_a_hidden_root_itself_is_walked(tmp_path: Path) -> None:
    # Only entries below a root are judged by their name; the user chose the root.
    root = tmp_path / ".music"
    song = write(root / "song.mp3")
    assert paths(list(discover([root]))) == [str(song)]


@pytest.fixture
def linked_library(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A root holding a real file, a link to a file outside it and a link to a folder outside."""
    outside = tmp_path / "outside"
    lone = write(outside / "lone.flac", b"x" * 123)
    write(outside / "folder" / "deep.mp3", b"y" * 45)
    root = tmp_path / "root"
    write(root / "real.mp3", b"z" * 7)
    (root / "linked.flac").symlink_to(lone)
    (root / "linked_folder").symlink_to(outside / "folder", target_is_directory=True)
    return root, outside, lone


def test_symlinks_are_skipped_by_default(linked_library: tuple[Path, Path, Path]) -> None:
    root, _, _ = linked_library
    assert paths(list(discover([root]))) == [str(root / "real.mp3")]


def test_symlinks_are_followed_on_request(linked_library: tuple[Path, Path, Path]) -> None:
    root, outside, _ = linked_library
    found = {s.path: s for s in discover([root], follow_symlinks=True)}
    # Paths stay under the root (the link's path), sizes are the targets'.
    assert found == {
        str(root / "real.mp3"): stat_of(root / "real.mp3"),
        str(root / "linked.flac"): FileStat(
            str(root / "linked.flac"), 123, os.stat(outside / "lone.flac").st_mtime_ns
        ),
        str(root / "linked_folder" / "deep.mp3"): FileStat(
            str(root / "linked_folder" / "deep.mp3"),
            45,
            os.stat(outside / "folder" / "deep.mp3").st_mtime_ns,
        ),
    }


@pytest.mark.timeout(20)
def test_a_symlink_loop_does_not_hang_and_yields_each_file_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    a = write(root / "a.mp3")
    b = write(root / "sub" / "b.mp3")
    (root / "sub" / "back_to_root").symlink_to(root, target_is_directory=True)
    (root / "sub" / "self").symlink_to(root / "sub", target_is_directory=True)
    found = paths(list(discover([root], follow_symlinks=True)))
    assert found == [str(a), str(b)]


def test_a_folder_linked_twice_is_entered_once_when_following(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "real" / "c.mp3")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    found = paths(list(discover([root], follow_symlinks=True)))
    assert len(found) == 1
    assert os.path.basename(found[0]) == "c.mp3"


def test_a_folder_named_like_audio_is_yielded_with_size_minus_one(tmp_path: Path) -> None:
    inner = write(tmp_path / "x.mp3" / "inner.flac", b"q" * 9)
    found = list(discover([tmp_path]))
    # Yielded so that analysis records it as a failure; its contents are still walked.
    assert found == [FileStat(str(tmp_path / "x.mp3"), -1, 0), stat_of(inner)]


def test_a_dangling_link_named_like_audio_is_yielded_with_size_minus_one(tmp_path: Path) -> None:
    song = write(tmp_path / "song.mp3")
    (tmp_path / "y.flac").symlink_to(tmp_path / "gone.flac")
    (tmp_path / "notes.txt").symlink_to(tmp_path / "gone.txt")  # not audio: ignored
    assert list(discover([tmp_path], follow_symlinks=True)) == [
        stat_of(song),
        FileStat(str(tmp_path / "y.flac"), -1, 0),
    ]
    # Without following, a dangling link named like audio is still reported: it is broken
    # whether followed or not.
    assert list(discover([tmp_path])) == [stat_of(song), FileStat(str(tmp_path / "y.flac"), -1, 0)]


def test_a_non_utf8_file_name_is_yielded(tmp_path: Path) -> None:
    name = b"caf\xe9 \xff.mp3"  # Latin-1 bytes: not valid UTF-8
    raw = os.path.join(os.fsencode(tmp_path), name)
    with open(raw, "wb") as f:
        f.write(b"m" * 33)
    found = list(discover([tmp_path]))
    assert len(found) == 1
    assert found[0].path == os.fsdecode(raw)
    assert os.fsencode(found[0].path) == raw  # surrogateescape round-trips to the real name
    assert found[0].size == 33


def test_several_roots_are_walked_in_turn(tmp_path: Path) -> None:
    one = write(tmp_path / "one" / "a.mp3")
    two = write(tmp_path / "two" / "b.mp3")
    write(tmp_path / "three" / "c.mp3")  # not asked for
    assert paths(list(discover([tmp_path / "two", str(tmp_path / "one")]))) == [
        str(two),
        str(one),
    ]


def test_a_root_inside_another_root_yields_its_files_once(tmp_path: Path) -> None:
    inner = write(tmp_path / "outer" / "inner" / "a.mp3")
    outer = write(tmp_path / "outer" / "b.mp3")
    found = paths(list(discover([tmp_path / "outer", tmp_path / "outer" / "inner"])))
    assert sorted(found) == sorted([str(inner), str(outer)])


def test_a_relative_root_gives_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    song = write(tmp_path / "music" / "song.mp3")
    monkeypatch.chdir(tmp_path)
    assert paths(list(discover(["music"]))) == [str(song)]


def test_a_root_that_is_a_file_raises_not_a_directory(tmp_path: Path) -> None:
    song = write(tmp_path / "song.mp3")
    with pytest.raises(NotADirectoryError, match="not a folder") as info:
        list(discover([song]))
    assert str(song) in str(info.value)


def test_a_missing_root_raises_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError) as info:
        list(discover([tmp_path / "nowhere"]))
    assert str(tmp_path / "nowhere") in str(info.value)


# -- fingerprint ----------------------------------------------------------------------

KIB = 1024


def pattern(n: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating bytes: every 64 KiB window differs from every other."""
    return b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(n // 32 + 1))[:n]


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def test_a_copy_has_the_same_fingerprint(tmp_path: Path) -> None:
    original = write(tmp_path / "a.flac", pattern(300 * KIB))
    copy = tmp_path / "elsewhere" / "b.flac"
    copy.parent.mkdir()
    shutil.copyfile(original, copy)
    os.utime(copy, ns=(1, 1))  # mtime plays no part
    assert fingerprint(str(copy)) == fingerprint(str(original))


@pytest.mark.parametrize("at", [0, FINGERPRINT_BYTES - 1])
def test_a_change_in_the_first_64_kib_changes_it(tmp_path: Path, at: int) -> None:
    data = pattern(300 * KIB)
    a = write(tmp_path / "a.mp3", data)
    b = write(tmp_path / "b.mp3", flip(data, at))
    assert fingerprint(str(a)) != fingerprint(str(b))


@pytest.mark.parametrize("from_end", [1, FINGERPRINT_BYTES])
def test_a_change_in_the_last_64_kib_changes_it(tmp_path: Path, from_end: int) -> None:
    data = pattern(300 * KIB)
    a = write(tmp_path / "a.mp3", data)
    b = write(tmp_path / "b.mp3", flip(data, len(data) - from_end))
    assert fingerprint(str(a)) != fingerprint(str(b))


def test_a_change_only_in_the_middle_keeps_it_by_design(tmp_path: Path) -> None:
    # By design: at most 128 KiB are read, so that a move is recognised without reading
    # whole files. Two files differing only between the head and the tail collide; the
    # size, mtime and path still have to line up for planning to call it a move.
    data = pattern(300 * KIB)
    a = write(tmp_path / "a.mp3", data)
    b = write(tmp_path / "b.mp3", flip(data, 150 * KIB))
    assert fingerprint(str(a)) == fingerprint(str(b))


def test_the_size_is_part_of_it(tmp_path: Path) -> None:
    head, tail = pattern(FINGERPRINT_BYTES, 1), pattern(FINGERPRINT_BYTES, 2)
    a = write(tmp_path / "a.mp3", head + pattern(100 * KIB, 3) + tail)
    b = write(tmp_path / "b.mp3", head + pattern(101 * KIB, 3) + tail)
    assert fingerprint(str(a)) != fingerprint(str(b))


def expected(data: bytes) -> str:
    h = hashlib.blake2b(str(len(data)).encode(), digest_size=16)
    h.update(data[:FINGERPRINT_BYTES])
    if len(data) > FINGERPRINT_BYTES:
        h.update(data[max(FINGERPRINT_BYTES, len(data) - FINGERPRINT_BYTES) :])
    return h.hexdigest()


@pytest.mark.parametrize(
    "size",
    [0, 1, 1000, FINGERPRINT_BYTES - 1, FINGERPRINT_BYTES, FINGERPRINT_BYTES + 1, 100 * KIB,
     2 * FINGERPRINT_BYTES, 300 * KIB],
)  # fmt: skip
def test_known_answer_for_small_medium_and_large_files(tmp_path: Path, size: int) -> None:
    data = pattern(size, seed=size)
    f = write(tmp_path / "f.mp3", data)
    assert fingerprint(str(f)) == expected(data)
    assert fingerprint(str(f), size=size) == expected(data)


def test_every_byte_of_a_file_under_128_kib_counts(tmp_path: Path) -> None:
    # Between 64 and 128 KiB the tail read starts at 64 KiB: no byte is skipped.
    data = pattern(100 * KIB)
    a = write(tmp_path / "a.mp3", data)
    for at in (0, FINGERPRINT_BYTES - 1, FINGERPRINT_BYTES, 80 * KIB, len(data) - 1):
        b = write(tmp_path / "b.mp3", flip(data, at))
        assert fingerprint(str(b)) != fingerprint(str(a)), at


def test_a_small_file_is_read_whole(tmp_path: Path) -> None:
    a = write(tmp_path / "a.mp3", b"0123456789")
    b = write(tmp_path / "b.mp3", b"0123456780")
    assert fingerprint(str(a)) == expected(b"0123456789")
    assert fingerprint(str(a)) != fingerprint(str(b))
    assert len(fingerprint(str(a))) == 32
