"""Playlist files written from a stored library for another device: the path map, the files'
permissions, and the tracks no mapping covers.

The library is stored from records for real files (see ``helpers``); the device is a folder
whose links point into the library, so that a path in a file either opens or it does not.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from playlista.playlists.generate import generate
from playlista.playlists.model import PlaylistSpec
from playlista.playlists.pathmap import PathMap
from playlista.store import Store
from tests.store.helpers import audio_file, track

SPEC = PlaylistSpec.from_dict({"name": "all", "method": "rules", "where": "bpm > 0"})


def library(store: Store, lib: Path, elsewhere: Path) -> list[str]:
    """Two tracks under ``lib`` (one a folder deeper), one outside it; their real paths."""
    files = [
        audio_file(lib / "rock" / "a.flac"),
        audio_file(lib / "rock" / "live" / "b.mp3"),
        audio_file(elsewhere / "c.ogg"),
    ]
    assert store.write_outcomes([track(f) for f in files]) == (3, 0)
    return [str(f) for f in files]


def track_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U"
    return [line for line in lines[1:] if not line.startswith("#")]


def stored(store: Store) -> list[str]:
    sql = "SELECT path FROM playlist_tracks WHERE playlist = 'all' ORDER BY path"
    return [p for (p,) in store.con.execute(sql).fetchall()]


def test_every_path_of_a_mapped_file_opens_under_the_mapped_root(store, lib, tmp_path):
    real = library(store, lib, tmp_path / "elsewhere")
    device = tmp_path / "device"  # the library as a phone or a container mounts it
    (device / "Music").mkdir(parents=True)
    (device / "Music" / "rock").symlink_to(lib / "rock")
    (device / "Live").symlink_to(lib / "rock" / "live")
    mapping = PathMap.parse(
        [f"{lib}={device / 'Music'}", f"{lib / 'rock' / 'live'}={device / 'Live'}"]
    )
    for base, out in ((None, tmp_path / "absolute"), (device / "Playlists", tmp_path / "rel")):
        (made,) = generate(store, SPEC, out_dir=out, base=base, path_map=mapping)
        lines = track_lines(out / "all.m3u8")
        assert len(lines) == 2
        opened = [os.path.normpath(os.path.join(base or "/", line)) for line in lines]
        for path in opened:
            assert os.path.commonpath([path, device]) == str(device)
            assert os.path.isfile(path)  # a player on the device opens it
        assert sorted(opened) == [str(device / "Live" / "b.mp3"), str(device / "Music/rock/a.flac")]
        assert sorted(os.path.realpath(p) for p in opened) == sorted(
            os.path.realpath(p) for p in real[:2]
        )
        if base is not None:
            assert all(line.startswith("../") for line in lines)
        assert made.unmapped == (real[2],)
        assert stored(store) == sorted(real)  # the database keeps the real paths, all three


def test_a_track_under_no_mapping_is_named_and_not_written(store, lib, tmp_path, caplog):
    real = library(store, lib, tmp_path / "elsewhere")
    mapping = PathMap.parse([f"{lib}=/storage/emulated/0/Music"])
    out = tmp_path / "out"
    with caplog.at_level("WARNING", logger="playlista.playlists.generate"):
        (made,) = generate(store, SPEC, out_dir=out, path_map=mapping)
    text = (out / "all.m3u8").read_text(encoding="utf-8")
    assert real[2] not in text and "c.ogg" not in text  # not written with a path it can't open
    assert sorted(track_lines(out / "all.m3u8")) == [
        "/storage/emulated/0/Music/rock/a.flac",
        "/storage/emulated/0/Music/rock/live/b.mp3",
    ]
    assert made.unmapped == (real[2],) and sorted(made.paths) == sorted(real)
    assert "1 tracks under no --path-map prefix" in caplog.text and real[2] in caplog.text


def test_playlist_files_get_the_permissions_of_any_other_file(store, lib, tmp_path):
    library(store, lib, tmp_path / "elsewhere")
    previous = os.umask(0o027)
    try:
        (tmp_path / "ordinary").write_text("x")
        generate(store, SPEC, out_dir=tmp_path / "out")
        generate(store, SPEC, out_dir=tmp_path / "out")  # a file replaced keeps them
    finally:
        os.umask(previous)
    ordinary = stat.S_IMODE((tmp_path / "ordinary").stat().st_mode)
    assert stat.S_IMODE((tmp_path / "out" / "all.m3u8").stat().st_mode) == ordinary == 0o640
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["all.m3u8"]
