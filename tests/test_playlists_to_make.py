"""What a playlists run makes: the YAML file's playlists, then the given ones, the library in
clusters when there are none, and the file's path map with the given entries after it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from playlista.errors import PlaylistError
from playlista.playlists.generate import DEFAULT_SPECS, playlists_to_make


def write(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_nothing_given_makes_the_library_in_clusters():
    made = playlists_to_make()
    assert [(s.name, s.method) for s in made.specs] == [("cluster", "clusters")]
    assert len(DEFAULT_SPECS) == 1 and not made.path_map


def test_the_files_playlists_come_first_then_the_given_ones(tmp_path):
    config = write(
        tmp_path / "lists.yaml",
        {"playlists": [{"name": "fast", "method": "rules", "where": "bpm > 140"}]},
    )
    made = playlists_to_make(config, [{"name": "mix", "method": "harmonic"}])
    assert [(s.name, s.method) for s in made.specs] == [("fast", "rules"), ("mix", "harmonic")]


def test_a_name_in_both_the_file_and_the_given_ones_is_refused(tmp_path):
    config = write(tmp_path / "lists.yaml", {"playlists": [{"name": "mix", "method": "harmonic"}]})
    with pytest.raises(PlaylistError, match="names repeat"):
        playlists_to_make(config, [{"name": "mix", "method": "clusters"}])


def test_the_given_path_map_adds_to_the_files_and_wins_for_the_same_folder(tmp_path):
    config = write(
        tmp_path / "lists.yaml",
        {
            "path_map": {"/music": "/sdcard/Music", "/music/classical": "/sdcard/Classical"},
            "playlists": [{"name": "all", "method": "rules", "where": "bpm > 0"}],
        },
    )
    made = playlists_to_make(config, path_map=["/music=/mnt/Music", "/podcasts=/mnt/Podcasts"])
    assert made.path_map.apply("/music/a/b.ogg") == "/mnt/Music/a/b.ogg"
    assert made.path_map.apply("/music/classical/c.flac") == "/sdcard/Classical/c.flac"
    assert made.path_map.apply("/podcasts/p.mp3") == "/mnt/Podcasts/p.mp3"
    assert made.path_map.apply("/elsewhere/x.ogg") is None
