"""A playlist's M3U8 file changes only once its rows have committed."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from playlista.playlists.generate import generate
from playlista.playlists.model import PlaylistSpec
from playlista.store import Store
from tests.store.helpers import audio_file, track


@pytest.mark.fault("a playlist whose rows cannot be written")
def test_a_playlist_whose_rows_roll_back_keeps_its_old_file(tmp_path: Path) -> None:
    db, out = tmp_path / "library.duckdb", tmp_path / "playlists"
    songs = [audio_file(tmp_path / "music" / f"{n}.flac") for n in "abc"]
    with Store.open(db) as store:
        store.write_outcomes([track(s, title=s.stem) for s in songs])
        generate(store, PlaylistSpec(name="mix", method="rules", where="bpm > 0"), out_dir=out)
    m3u8 = out / "mix.m3u8"
    before = m3u8.read_text()
    assert before.count("#EXTINF") == 3
    # A read-only connection: the replacement's DELETE fails and its transaction rolls back.
    with duckdb.connect(str(db), read_only=True) as con:
        store = Store(con, str(db))
        smaller = PlaylistSpec(name="mix", method="rules", where="bpm > 0", limit=1)
        with pytest.raises(duckdb.Error, match="read-only"):
            generate(store, smaller, out_dir=out)
        assert con.execute("SELECT tracks FROM playlists WHERE name = 'mix'").fetchall() == [(3,)]
    assert m3u8.read_text() == before
    assert sorted(p.name for p in out.iterdir()) == ["mix.m3u8"]  # no temporary file left
