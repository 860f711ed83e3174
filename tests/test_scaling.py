"""Dask's adaptive scaling on the embedded cluster: workers start with the load, each loaded."""

from __future__ import annotations

import duckdb
import pytest

from tests.conftest import copy_corpus

pytestmark = pytest.mark.slow

CLIPS = [
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
    with duckdb.connect(str(db), read_only=True) as con:
        workers = con.execute("SELECT DISTINCT worker FROM track_features").fetchall()
    # One worker at the start; the second exists only if adaptive scaling started it,
    # and it analysed files only after the preload had loaded its libraries.
    assert len(workers) == 2
