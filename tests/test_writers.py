"""One writer per database: overlapping runs take turns or are refused, and lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import copy_corpus, database_held_by_another_process

pytestmark = pytest.mark.slow

PLAYLISTA = str(Path(sys.executable).with_name("playlista"))
CLIPS = [
    "good/rendered/bach_bwv351.flac",
    "good/rendered/mozart_k545.flac",
    "good/samples/loop_amen_full.flac",
]


def analyze(music: Path, db: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PLAYLISTA, "analyze", str(music), "--db", str(db), "--workers", "1"],
        env={**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_overlapping_runs_take_turns_and_lose_nothing(corpus, tmp_path):
    music = copy_corpus(corpus, tmp_path / "music", CLIPS)
    db = tmp_path / "library.duckdb"
    first = analyze(music, db, {"PREFECT_HOME": str(tmp_path / "one")})
    second = analyze(music, db, {"PREFECT_HOME": str(tmp_path / "two")})
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    for proc, (_, err) in zip((first, second), outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute(
            "SELECT started_at, finished_at, analyzed, unchanged FROM runs ORDER BY started_at"
        ).fetchall()
        assert con.execute("SELECT count(*) FROM library").fetchone() == (len(CLIPS),)
    assert len(runs) == 2
    (_, end1, analyzed1, _), (start2, _, analyzed2, unchanged2) = runs
    assert end1 <= start2  # the second waited for the first's writer slot
    assert (analyzed1, analyzed2, unchanged2) == (len(CLIPS), 0, len(CLIPS))


def test_analyze_refuses_a_database_an_sql_session_holds_and_loses_nothing(corpus, tmp_path):
    music = copy_corpus(corpus, tmp_path / "music", CLIPS[:1])
    db = tmp_path / "library.duckdb"
    env = {"PREFECT_HOME": str(tmp_path / "prefect")}
    with database_held_by_another_process(db):
        refused = analyze(music, db, env)
        _, err = refused.communicate(timeout=600)
    assert refused.returncode == 1
    assert f"{db} is open in another process" in err
    later = analyze(music, db, env)
    _, err = later.communicate(timeout=600)
    assert later.returncode == 0, err[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM library").fetchone() == (1,)
