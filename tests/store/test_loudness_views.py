"""ReplayGain in the views: track gain and peak in ``library``, album figures in ``albums``.

The loudness values stored come from the real BS.1770 meters run on synthetic signals; the
album loudness the view computes from the stored histograms is checked against BS.1770's
gating run on the blocks of all the album's tracks together.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from playlista.audio import bs1770
from playlista.records import TrackResult
from playlista.store import Store
from tests.store.helpers import audio_file, track

SR = 44100


def signal(seed: int, *, seconds: float, levels_db: tuple[float, float]) -> np.ndarray:
    """Stereo noise whose level steps every second between two bounds: gating has work."""
    rng = np.random.default_rng(seed)
    level = np.repeat(10 ** (rng.uniform(*levels_db, int(seconds)) / 20), SR)
    return (rng.standard_normal((2, level.size)) * level).astype(np.float32)


def measured(path: Path, y: np.ndarray, **tags: Any) -> tuple[TrackResult, np.ndarray]:
    """A stored-to-be result for ``path`` with ``y``'s real measures, and ``y``'s blocks."""
    meter = bs1770.LoudnessMeter.of(y, sr=SR)
    lufs, lra = meter.result()
    result = track(audio_file(path))
    features = dataclasses.replace(
        result.features,
        loudness_lufs=lufs,
        loudness_range_lu=lra,
        true_peak_dbtp=bs1770.true_peak(y, SR),
        loudness_histogram=meter.histogram(),
    )
    tagged = dataclasses.replace(result.tags, **{"album": None, "albumartist": None, **tags})
    return dataclasses.replace(result, features=features, tags=tagged), meter.blocks()


def rows(store: Store, sql: str) -> list[dict[str, Any]]:
    cursor = store.con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_track_gain_is_minus_18_less_the_loudness_and_peak_the_linear_true_peak(store, lib):
    y = signal(1, seconds=12, levels_db=(-30, -10))
    result, _ = measured(lib / "a.flac", y)
    store.write_outcomes([result])
    (row,) = rows(store, "SELECT * FROM library")
    assert row["loudness_lufs"] == result.features.loudness_lufs
    assert row["replaygain_track_gain_db"] == pytest.approx(-18 - row["loudness_lufs"], abs=1e-12)
    assert row["true_peak_dbtp"] == result.features.true_peak_dbtp
    assert row["replaygain_track_peak"] == pytest.approx(10 ** (row["true_peak_dbtp"] / 20))
    assert row["replaygain_track_peak"] >= np.abs(y).max()


def test_album_gain_is_the_gated_loudness_of_the_whole_album(store: Store, lib: Path) -> None:
    # A loud track and a quiet one: the album's loudness is that of all their blocks gated
    # together, which an average of the two tracks' figures is not.
    loud, loud_blocks = measured(
        lib / "x" / "1.flac",
        signal(2, seconds=30, levels_db=(-12, -6)),
        album="Duo",
        albumartist="X",
    )
    quiet, quiet_blocks = measured(
        lib / "y" / "2.flac",
        signal(3, seconds=60, levels_db=(-40, -20)),
        album="Duo",
        albumartist="X",
    )
    store.write_outcomes([loud, quiet])
    (album,) = rows(store, "SELECT * FROM albums")
    exact = bs1770._gated_loudness(np.concatenate([loud_blocks, quiet_blocks]), -10.0)
    assert (album["albumartist"], album["album"], album["folder"], album["tracks"]) == (
        "X",
        "Duo",
        None,
        2,
    )
    assert album["loudness_lufs"] == pytest.approx(exact, abs=0.01)
    assert album["replaygain_album_gain_db"] == pytest.approx(-18 - album["loudness_lufs"])
    gains = [-18 - r.features.loudness_lufs for r in (loud, quiet)]  # type: ignore[operator]
    assert abs(album["replaygain_album_gain_db"] - np.mean(gains)) > 3
    peaks = [r.features.true_peak_dbtp for r in (loud, quiet)]
    assert album["true_peak_dbtp"] == max(peaks)  # type: ignore[type-var]
    assert album["replaygain_album_peak"] == pytest.approx(10 ** (max(peaks) / 20))  # type: ignore[type-var,operator]
    assert album["duration_s"] == 2 * 180.25


@pytest.mark.parametrize("seed", range(6))
def test_album_loudness_from_histograms_is_close_to_exact_even_on_stepped_levels(store, lib, seed):
    # Whole seconds at one level put clusters of blocks at one loudness; a cluster in the bin
    # of the album's relative gate is counted in proportion, the one inexact step: here
    # within 0.05 LU (on real albums, ~0.001 LU: tests/test_replaygain.py).
    rng = np.random.default_rng(seed)
    blocks = []
    results = []
    for i in range(3):
        low = rng.uniform(-50, -20)
        y = signal(10 * seed + i, seconds=int(rng.integers(5, 40)), levels_db=(low, low + 20))
        result, b = measured(lib / f"{i}.flac", y, album="One", albumartist="Z")
        results.append(result)
        blocks.append(b)
    store.write_outcomes(results)
    (album,) = rows(store, "SELECT loudness_lufs FROM albums")
    exact = bs1770._gated_loudness(np.concatenate(blocks), -10.0)
    assert album["loudness_lufs"] == pytest.approx(exact, abs=0.05)


def test_albums_are_tags_when_tagged_and_folders_otherwise(store: Store, lib: Path) -> None:
    y = signal(4, seconds=5, levels_db=(-20, -10))
    results = [
        # albumartist and album: one album across two folders
        measured(lib / "a" / "1.flac", y, album="Tagged", albumartist="Band")[0],
        measured(lib / "b" / "2.flac", y, album="Tagged", albumartist="Band")[0],
        # an album tag without albumartist: one album per folder
        measured(lib / "a" / "3.flac", y, album="Live")[0],
        measured(lib / "b" / "4.flac", y, album="Live")[0],
        # no album tag: the folder
        measured(lib / "c" / "5.flac", y)[0],
        measured(lib / "c" / "6.flac", y, albumartist="Band")[0],
    ]
    store.write_outcomes(results)
    albums = rows(
        store,
        "SELECT albumartist, album, folder, tracks FROM albums ORDER BY album NULLS LAST, folder",
    )
    assert albums == [
        {"albumartist": None, "album": "Live", "folder": str(lib / "a"), "tracks": 1},
        {"albumartist": None, "album": "Live", "folder": str(lib / "b"), "tracks": 1},
        {"albumartist": "Band", "album": "Tagged", "folder": None, "tracks": 2},
        {"albumartist": None, "album": None, "folder": str(lib / "c"), "tracks": 2},
    ]
    per_track = rows(store, "SELECT * FROM replaygain ORDER BY path")
    assert len(per_track) == 6
    assert all(r["replaygain_album_gain_db"] is not None for r in per_track)
    by_album: dict[tuple[Any, ...], set[float]] = {}
    for r in per_track:
        key = (r["albumartist"], r["album"], r["folder"])
        by_album.setdefault(key, set()).add(r["replaygain_album_gain_db"])
    assert len(by_album) == 4 and all(len(gains) == 1 for gains in by_album.values())
