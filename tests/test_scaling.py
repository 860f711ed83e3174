"""Dask's adaptive scaling on the embedded cluster: workers start with the load, each loaded."""

from __future__ import annotations

import duckdb
import pytest

from tests.conftest import copy_corpus

pytestmark = pytest.mark.slow

# Enough audio that the first worker is still busy when the second has loaded its libraries.
CLIPS = [
    "good/blupi/music004.ogg",
    "good/fof/war_of_freedom_full.ogg",
    "good/fof/war_of_freedom_backing.ogg",
    "good/games/0ad_red_dawn.ogg",
    "good/games/nexuiz_thunder.ogg",
    "good/games/wesnoth_elvish_theme.ogg",
    "good/fof/armygeddon.ogg",
    "good/fof/feelings.ogg",
    "good/rendered/boogi_marabi.flac",
    "good/rendered/bach_bwv269.flac",
    "good/rendered/bach_bwv351.flac",
    "good/rendered/mozart_k545.flac",
    "good/rendered/trance1.wav",
    "good/games/hyperrogue_caribbean.ogg",
]


def test_adaptive_cluster_grows_from_one_worker_to_the_maximum(corpus, prefect_api, tmp_path):
    from flows.analyze_library import analyze_library

    music = copy_corpus(corpus, tmp_path / "music", CLIPS)
    db = tmp_path / "library.duckdb"
    summary = analyze_library(
        roots=[str(music)], db=str(db), min_workers=1, max_workers=2, batch_size=1
    )
    assert summary["analyzed"] == len(CLIPS)
    assert (summary["timings"]["flow.workers_started"], summary["timings"]["flow.workers"]) == (
        1,
        2,
    )
    # Where the workers' time went adds up: each stage of each file, the gaps around them.
    timings = summary["timings"]
    assert {"decode", "features.tempo", "musicnn", "flow.cluster_start"} <= timings.keys()
    accounted = sum(v for k, v in timings.items() if not k.startswith("flow.")) + sum(
        timings[k] for k in ("flow.worker_head", "flow.worker_between", "flow.worker_tail")
    )
    assert 0 < accounted <= timings["flow.workers"] * timings["flow.analysis"] + 1.0
    with duckdb.connect(str(db), read_only=True) as con:
        workers = con.execute("SELECT DISTINCT worker FROM track_features").fetchall()
    # One worker at the start (above); the second exists only because adaptive scaling
    # started it, and it analysed files only after the preload had loaded its libraries.
    assert len(workers) == 2


def test_worker_idle_time_is_split_into_head_gaps_and_tail():
    from playlista.runs.account import worker_idle

    spans = {"a": [(104.0, 106.0), (101.0, 103.0)], "b": [(100.5, 109.0)]}
    assert worker_idle(spans, start=100.0, seconds=10.0, workers=3) == {
        "flow.worker_head": 1.0 + 0.5,
        "flow.worker_between": 1.0,
        "flow.worker_tail": 10.0 + 4.0 + 1.0,  # the third worker got nothing
    }
    assert worker_idle({}, start=100.0, seconds=10.0, workers=3) == {}
