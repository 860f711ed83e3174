"""The command line as a user runs it: a subprocess, its own temporary Prefect API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import copy_corpus, database_held_by_another_process

PLAYLISTA = str(Path(sys.executable).with_name("playlista"))


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)  # embedded defaults: the CLI starts its own API
    return subprocess.run(
        [PLAYLISTA, *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


def test_help_lists_the_commands(tmp_path):
    result = run_cli("--help", home=tmp_path)
    assert result.returncode == 0
    for command in ("analyze", "failures", "sql"):
        assert command in result.stdout


@pytest.mark.slow
def test_analyze_prints_a_summary_and_fills_the_database(corpus, tmp_path):
    library = copy_corpus(
        corpus, tmp_path / "music", ["good/samples/loop_amen_full.flac", "bad/text_file.flac"]
    )
    db = tmp_path / "library.duckdb"
    result = run_cli(
        "analyze", str(library), "--db", str(db), "--workers", "1", home=tmp_path / "prefect"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "analyzed" in result.stdout and "throughput" in result.stdout
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM library").fetchone() == (1,)
        assert con.execute("SELECT error_class FROM failures").fetchall() == [
            ("unsupported_format",)
        ]
    failures = run_cli("failures", "--db", str(db), home=tmp_path / "prefect")
    assert "unsupported_format\tpermanent" in failures.stdout
    query = run_cli(
        "sql", "SELECT count(*) AS n FROM runs", "--db", str(db), home=tmp_path / "prefect"
    )
    assert query.returncode == 0 and "1" in query.stdout


def test_a_busy_database_is_refused_with_a_clear_message(tmp_path):
    db = tmp_path / "busy.duckdb"
    with database_held_by_another_process(db):
        result = run_cli("failures", "--db", str(db), home=tmp_path)
    assert result.returncode == 1
    assert "is open in another process" in result.stderr and str(db) in result.stderr


@pytest.mark.slow
def test_similar_prints_the_nearest_tracks_most_similar_first(analysed_corpus, tmp_path):
    library, db = analysed_corpus["library"], analysed_corpus["db"]
    seed = library / "good/fof/war_of_freedom_full.ogg"
    result = run_cli("similar", str(seed), "-n", "4", "--db", str(db), home=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(lines) == 4
    scores = [float(s) for s, _, _ in lines]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    assert str(seed) not in {p for _, _, p in lines}
    assert all(Path(p).is_file() for _, _, p in lines)
    missing = run_cli("similar", str(tmp_path / "nope.ogg"), "--db", str(db), home=tmp_path)
    assert missing.returncode == 1 and "has no MSD_musicnn embedding" in missing.stderr
