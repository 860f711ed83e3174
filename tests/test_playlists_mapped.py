"""Playlists for another device: paths mapped to where it mounts the library, written
relative to its folder of playlists, and the tracks no mapping covers left out and named."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.test_cli import run_cli
from tests.test_playlists import rows

pytestmark = pytest.mark.slow


def device_lines(path: Path) -> list[str]:
    """The track lines of an M3U8 file, as a player on another device reads them."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U"
    return [line for line in lines[1:] if not line.startswith("#")]


def stored_paths(db: Path, playlist: str) -> list[str]:
    return [
        p
        for (p,) in rows(
            db, "SELECT path FROM playlist_tracks WHERE playlist = ? ORDER BY position", [playlist]
        )
    ]


def test_a_mapped_playlist_opens_under_the_mapped_root(analysed_corpus, corpus, tmp_path):
    # The device: the library mounted at another root (a link to it here), its playlists
    # in a folder beside it, as on a phone or in a media server's container.
    db = tmp_path / "library.duckdb"
    shutil.copy(analysed_corpus["db"], db)
    device = tmp_path / "device"
    device.mkdir()
    (device / "music").symlink_to(corpus)
    (device / "playlists").mkdir()
    mapping = f"{corpus}={device / 'music'}"
    common = ("--where", "bpm > 0", "--db", str(db), "--path-map", mapping)
    absolute = run_cli(
        "playlist", "rules", "abs", *common, "--out", str(tmp_path / "a"), home=tmp_path
    )
    assert absolute.returncode == 0, absolute.stderr[-3000:]
    relative = run_cli(
        "playlist", "rules", "rel", *common, "--out", str(tmp_path / "r"),
        "--base", str(device / "playlists"), home=tmp_path,
    )  # fmt: skip
    assert relative.returncode == 0, relative.stderr[-3000:]
    real = stored_paths(db, "abs")
    assert real and all(p.startswith(f"{corpus}/") for p in real)  # the database keeps them
    assert stored_paths(db, "rel") == real
    on_device = device_lines(tmp_path / "a" / "abs.m3u8")
    assert all(p.startswith(f"{device / 'music'}/") for p in on_device)
    relative_lines = device_lines(tmp_path / "r" / "rel.m3u8")
    assert all(p.startswith("../music/") for p in relative_lines)
    resolved = [os.path.normpath(device / "playlists" / p) for p in relative_lines]
    assert resolved == on_device
    for mapped, original in zip(on_device, real, strict=True):
        assert os.path.isfile(mapped)  # a player there opens it
        assert os.path.samefile(mapped, original)
        assert mapped == original.replace(str(corpus), str(device / "music"), 1)


def test_tracks_outside_every_mapping_are_left_out_and_named(analysed_corpus, corpus, tmp_path):
    db = tmp_path / "library.duckdb"
    shutil.copy(analysed_corpus["db"], db)
    fof = corpus / "good" / "fof"
    result = run_cli(
        "playlist", "rules", "phone", "--where", "bpm > 0", "--db", str(db),
        "--out", str(tmp_path / "out"), "--path-map", f"{fof}=/storage/emulated/0/Music",
        home=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    real = stored_paths(db, "phone")
    inside = [p for p in real if p.startswith(f"{fof}/")]
    outside = [p for p in real if not p.startswith(f"{fof}/")]
    assert inside and outside
    lines = device_lines(tmp_path / "out" / "phone.m3u8")
    assert lines == [p.replace(str(fof), "/storage/emulated/0/Music", 1) for p in inside]
    assert f"phone: {len(outside)} tracks under no --path-map FROM were left out" in result.stderr
    assert outside[0] in result.stderr


def test_the_files_path_map_and_the_flow_parameter_both_apply(analysed_corpus, corpus, tmp_path):
    from flows.generate_playlists import generate_playlists

    db = tmp_path / "library.duckdb"
    shutil.copy(analysed_corpus["db"], db)
    config = tmp_path / "playlists.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "path_map": {str(corpus): "/music"},
                "playlists": [{"name": "everything", "method": "rules", "where": "bpm > 0"}],
            }
        )
    )
    rendered = corpus / "good" / "rendered"
    result = generate_playlists(
        db=str(db),
        out_dir=str(tmp_path / "out"),
        config=str(config),
        path_map=[f"{rendered}=/classical"],  # as a deployment's parameter gives it
        report=False,
    )
    assert result["unmapped"] == {}
    lines = device_lines(tmp_path / "out" / "everything.m3u8")
    want = [
        p.replace(str(rendered), "/classical", 1)
        if p.startswith(f"{rendered}/")
        else p.replace(str(corpus), "/music", 1)
        for p in stored_paths(db, "everything")
    ]
    assert lines == want and any(p.startswith("/classical/") for p in lines)
    assert any(p.startswith("/music/good/") for p in lines)
