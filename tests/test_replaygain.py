"""ReplayGain figures of the really analysed corpus: track gain and peak, album loudness.

Album loudness from the stored histograms is checked against BS.1770's gating run on the
blocks of all the album's tracks, decoded again here by the same decoder.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from playlista.audio import bs1770
from playlista.audio.decode import read_native
from playlista.audio.prepare import loudness_channels

pytestmark = pytest.mark.slow


def query(db, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def gate_bin_bound(blocks: np.ndarray) -> float:
    """How far including the relative gate's bin whole moves the loudness from leaving it out."""
    levels = bs1770._lufs(blocks)
    gated = blocks[levels > -70]
    gate = bs1770._lufs(gated.mean()) - 10
    low = -70 + np.floor((gate + 70) / bs1770.HISTOGRAM_BIN_LU) * bs1770.HISTOGRAM_BIN_LU
    levels = bs1770._lufs(gated)
    above = gated[levels >= low + bs1770.HISTOGRAM_BIN_LU]
    with_bin = gated[levels >= low]
    return float(bs1770._lufs(above.mean()) - bs1770._lufs(with_bin.mean()))


def test_every_track_has_a_gain_and_a_true_peak_over_its_samples(analysed_corpus):
    rows = query(
        analysed_corpus["db"],
        "SELECT path, loudness_lufs, replaygain_track_gain_db, true_peak_dbtp, "
        "replaygain_track_peak FROM library",
    )
    assert len(rows) > 20
    for path, lufs, gain, dbtp, peak in rows[::4]:
        assert gain == pytest.approx(-18 - lufs, abs=1e-9)
        assert peak == pytest.approx(10 ** (dbtp / 20), rel=1e-9)
        y, sr = read_native(path)
        sample_peak = np.abs(y).max()
        assert sample_peak <= peak <= 2 * sample_peak
        assert dbtp == pytest.approx(bs1770.true_peak(y, sr), abs=1e-6)


def test_album_loudness_is_the_gating_of_all_its_blocks_within_its_bound(analysed_corpus):
    db = analysed_corpus["db"]
    albums = query(
        db,
        "SELECT a.folder, list(a.path ORDER BY a.path), any_value(b.loudness_lufs), "
        "any_value(b.replaygain_album_gain_db), any_value(b.replaygain_album_peak), "
        "max(l.replaygain_track_peak) "
        "FROM album_tracks AS a JOIN library AS l USING (path) "
        "JOIN albums AS b ON b.folder IS NOT DISTINCT FROM a.folder "
        "AND b.album IS NOT DISTINCT FROM a.album "
        "AND b.albumartist IS NOT DISTINCT FROM a.albumartist "
        "GROUP BY a.albumartist, a.album, a.folder",
    )
    assert len(albums) >= 3 and any(len(paths) >= 4 for _, paths, *_ in albums)
    for _folder, paths, lufs, gain, peak, highest in albums:
        blocks = []
        for path in paths:
            y, sr = read_native(path)
            meter = bs1770.LoudnessMeter.of(loudness_channels(y), sr=sr)
            blocks.append(meter.blocks())
        exact = bs1770._gated_loudness(np.concatenate(blocks), -10.0)
        # Only the blocks in the 0.1-LU bin of the relative gate are counted by share, so the
        # error is at most the difference between counting that bin whole and not at all.
        assert abs(lufs - exact) <= gate_bin_bound(np.concatenate(blocks)) + 1e-9, paths
        assert lufs == pytest.approx(exact, abs=0.02), paths
        assert gain == pytest.approx(-18 - lufs, abs=1e-9)
        assert peak == highest
