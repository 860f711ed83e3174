"""The playlist methods and the filter parser on inputs whose answer is known (no database)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from playlista import camelot
from playlista.errors import FilterError, PlaylistError
from playlista.playlists import methods
from playlista.playlists.clusters import kmeans, tempo_band
from playlista.playlists.m3u import Entry, render, target, write_after
from playlista.playlists.model import PlaylistSpec
from playlista.playlists.pathmap import PathMap
from playlista.store.where import order_clause, parse_filter


def test_camelot_neighbours_and_distances():
    assert camelot.compatible("8A", "8A") and camelot.compatible("8A", "9A")
    assert camelot.compatible("12B", "1B") and camelot.compatible("8A", "8B")
    assert not camelot.compatible("8A", "9B") and not camelot.compatible("8A", "10A")
    assert camelot.distance("1A", "7A") == 6 and camelot.distance("1A", "7B") == 7
    assert camelot.parse("13A") is None and camelot.distance(None, "1A") is None
    assert camelot.WHEEL[:4] == ("1A", "1B", "2A", "2B") and len(camelot.WHEEL) == 24


def test_similar_ranks_by_similarity_and_spaces_artists():
    # Row i is 10*i degrees from the seed (row 0): similarity cos(10*i deg) falls with i.
    angles = np.deg2rad(10.0 * np.arange(8))
    emb = np.column_stack([np.cos(angles), np.sin(angles), np.zeros(8)])
    assert np.allclose(methods.similarity_to(emb, [0]), np.cos(angles))
    artists = [None, "a", "a", "a", "b", "c", None, "d"]
    albums = [None] * 8
    got = methods.similar(
        embedding=emb, seeds=[0], artists=artists, albums=albums, n=7, artist_gap=2
    )
    # Without spacing 1,2,3,...; "a" may come back only after two other tracks.
    assert got == [1, 4, 5, 2, 6, 7, 3]
    no_gap = methods.similar(
        embedding=emb, seeds=[0], artists=artists, albums=albums, n=7, artist_gap=0, album_gap=0
    )
    assert no_gap == [1, 2, 3, 4, 5, 6, 7]


def test_path_walks_a_line_in_order_from_start_to_end():
    # Unit vectors at angles 0..90 degrees in a plane, shuffled: the path must sort them.
    angles = np.deg2rad([0, 50, 10, 90, 30, 70, 20, 80, 40, 60])
    emb = np.column_stack([np.cos(angles), np.sin(angles), np.zeros(10)])
    chain = methods.path(embedding=emb, start=0, end=3, n=10)
    assert chain[0] == 0 and chain[-1] == 3
    assert list(np.rad2deg(angles[chain]).round()) == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert len(methods.path(embedding=emb, start=0, end=3, n=4)) == 4
    with pytest.raises(PlaylistError):
        methods.path(embedding=emb, start=2, end=2)


def test_harmonic_prefers_neighbours_then_closest_bpm():
    codes = ["8A", "3B", "9A", "8B", "9A", None]
    bpm = np.array([120.0, 121.0, 140.0, 126.0, 124.0, 90.0])
    order = methods.harmonic(camelot_codes=codes, bpm=bpm)
    # Slowest usable first (120, 8A); 3B at 121 is closer in BPM but not a neighbour.
    assert order == [0, 4, 2, 3, 1]
    assert 5 not in order  # no key: left out


def test_kmeans_finds_separated_groups_and_names_them():
    rng = np.random.default_rng(3)
    centres = np.eye(3, 12) * 5
    emb = np.vstack([c + 0.1 * rng.normal(size=(10, 12)) for c in centres])
    bpm = np.r_[np.full(10, 80.0), np.full(10, 120.0), np.full(10, 170.0)]
    features = np.column_stack([bpm, np.full(30, -10.0), np.full(30, 0.2), np.full(30, 1.0)])
    tags = [["piano"]] * 10 + [["rock"]] * 10 + [["techno"]] * 10
    clusters = kmeans(embedding=emb, features=features, top_tags=tags, k=3)
    assert sorted(sorted(c.rows) for c in clusters) == [
        list(range(0, 10)),
        list(range(10, 20)),
        list(range(20, 30)),
    ]
    titles = {c.rows[0] // 10: c.title for c in clusters}
    assert titles == {
        0: "piano · slow (under 90 BPM)",
        1: "rock · mid-tempo (110-128 BPM)",
        2: "techno · fast (145+ BPM)",
    }
    assert tempo_band(float("nan")) == "tempo unknown"


@pytest.mark.parametrize(
    ("text", "sql_fragment", "params"),
    [
        (
            "bpm BETWEEN 120 AND 130 AND mode = 'minor'",
            '"bpm" BETWEEN $p0 AND $p1',
            [120, 130, "minor"],
        ),
        (
            "camelot IN ('8A', '9A') OR NOT energy < 0.1",
            '"camelot" IN ($p0, $p1)',
            ["8A", "9A", 0.1],
        ),
        ("tag = 'rock' AND year >= 1990", "list_contains(top_tags, $p0)", ["rock", 1990]),
        ("title LIKE '%it''s%'", '"title" LIKE $p0', ["%it's%"]),
        ("artist IS NOT NULL", '"artist" IS NOT NULL', []),
    ],
)
def test_filters_parse_into_sql_with_bound_values(text, sql_fragment, params):
    parsed = parse_filter(text)
    assert sql_fragment in parsed.sql
    assert list(parsed.params.values()) == params
    assert "'" not in parsed.sql  # every literal is a parameter


@pytest.mark.parametrize(
    "text",
    [
        "1=1; DROP TABLE files",
        "bpm > 0; DROP TABLE files",
        "bpm > 0) OR (1=1",
        "bpm > 0 -- comment",
        "bpm > 0 /* x */",
        "bpm IN (SELECT bpm FROM library)",
        "path = (SELECT path FROM files)",
        "read_csv('/etc/passwd') IS NOT NULL",
        "lower(title) = 'x'",
        '"bpm" > 0',
        "size > 0 UNION SELECT * FROM files",
        "bpm > 0 OR 1 = 1",
        "nonexistent > 3",
        "embedding IS NULL",
        "bpm >",
        "",
    ],
)
def test_filters_that_are_not_plain_predicates_are_rejected(text):
    with pytest.raises(FilterError):
        parse_filter(text)


def test_order_by_is_one_whitelisted_column():
    assert order_clause("energy desc", table="c") == 'ORDER BY c."energy" DESC NULLS LAST, c.path'
    for bad in ("energy; DROP TABLE files", "random()", "bpm asc, path", "nope"):
        with pytest.raises(FilterError):
            order_clause(bad)


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/b", "..", ".hidden", "x" * 200])
def test_names_that_leave_the_output_folder_are_refused(tmp_path, name):
    with pytest.raises(PlaylistError):
        target(tmp_path, name)
    with pytest.raises(PlaylistError):
        PlaylistSpec(name=name, method="rules", where="bpm > 1")


def test_m3u8_lines_absolute_and_relative(tmp_path):
    entries = [
        Entry(str(tmp_path / "m/a.ogg"), 61.6, "Band", "Song\nTwo"),
        Entry(str(tmp_path / "m/b.ogg"), 3.0, None, None),
    ]
    assert render(entries).splitlines() == [
        "#EXTM3U",
        "#EXTINF:62,Band - Song Two",
        str(tmp_path / "m/a.ogg"),
        "#EXTINF:3,b.ogg",
        str(tmp_path / "m/b.ogg"),
    ]
    assert render(entries, base=str(tmp_path / "lists")).splitlines()[2] == "../m/a.ogg"


def test_specs_reject_unknown_keys_and_incomplete_methods():
    with pytest.raises(PlaylistError, match="unknown keys"):
        PlaylistSpec.from_dict({"name": "x", "method": "rules", "wher": "bpm > 1"})
    with pytest.raises(PlaylistError, match="needs seeds"):
        PlaylistSpec.from_dict({"name": "x", "method": "similar"})
    with pytest.raises(PlaylistError, match="needs start and end"):
        PlaylistSpec.from_dict({"name": "x", "method": "path", "start": "a.ogg"})
    spec = PlaylistSpec.from_dict({"name": "x", "method": "similar", "seeds": "a.ogg"})
    assert spec.seeds == ("a.ogg",) and spec.parameters() == {"seeds": ["a.ogg"]}


def test_a_path_map_takes_the_longest_whole_folder_prefix(tmp_path):
    mapping = PathMap.parse(
        ["/srv/music=/music", "/srv/music/classical/=/storage/emulated/0/Classical", "/mnt=D:/"]
    )
    assert mapping.apply("/srv/music/a/b.flac") == "/music/a/b.flac"
    assert (
        mapping.apply("/srv/music/classical/bach.flac") == "/storage/emulated/0/Classical/bach.flac"
    )
    assert mapping.apply("/srv/music") == "/music"
    assert mapping.apply("/srv/musical/x.flac") is None  # a folder name, not a string prefix
    assert mapping.apply("/home/x.flac") is None
    assert mapping.apply("/mnt/more/y.ogg") == "D:/more/y.ogg"
    assert PathMap.parse({"/srv/music/": "/music"}).apply("/srv/music/x.ogg") == "/music/x.ogg"
    later = PathMap.parse(["/srv=/a", "/srv=/b"])
    assert later.pairs == (("/srv", "/b"),) and later.entries() == ["/srv=/b"]
    assert PathMap.parse(["music=/music"]).pairs == ((os.path.abspath("music"), "/music"),)
    for bad in (["/srv/music"], ["=/music"], ["/srv/music="], "/srv=/x"):
        with pytest.raises(PlaylistError):
            PathMap.parse(bad)  # type: ignore[arg-type]
    assert not PathMap.parse(None) and not PathMap.parse([])


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_m3u8_files_get_the_permissions_the_umask_gives(tmp_path, umask):
    previous = os.umask(umask)
    try:
        ordinary = tmp_path / "other"  # what any other file the user writes gets
        ordinary.write_text("x")
        playlist = tmp_path / "out" / "mix.m3u8"
        write_after([playlist], ["#EXTM3U\n"], lambda: None)
        first = stat.S_IMODE(playlist.stat().st_mode)
        write_after([playlist], ["#EXTM3U\n#EXTINF:1,a\n/a.ogg\n"], lambda: None)  # replaced
        second = stat.S_IMODE(playlist.stat().st_mode)
    finally:
        os.umask(previous)
    assert first == second == stat.S_IMODE(ordinary.stat().st_mode) == 0o666 & ~umask
    assert playlist.read_text().endswith("/a.ogg\n")
    assert [p.name for p in playlist.parent.iterdir()] == ["mix.m3u8"]  # no temporary left
