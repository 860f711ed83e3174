"""The soak: three full runs over a copy of part of the corpus, each with a worker killed, the
database held by another process for a while and a decoder hung. Afterwards the library holds
every good file once, with a clean run's values, and the failures are exactly the bad files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from playlista.store.staging import staging_dir
from tests.cli_runs import (
    analysed_paths,
    api_url,
    finish,
    hold,
    kill_a_busy_worker,
    release,
    rows,
    start_cli,
    task_run_states,
    wait_for,
    wait_for_plan,
)
from tests.conftest import copy_corpus

pytestmark = pytest.mark.slow

# Short files, so that three runs stay a few minutes: every format the decoders split.
GOOD = [
    "good/samples/loop_amen_full.flac",
    "good/rendered/mozart_k545.flac",
    "good/rendered/bach_bwv351.flac",
    "good/formats/war_of_freedom_60s.mp3",
    "good/formats/war_of_freedom_60s.m4a",
    "good/formats/war_of_freedom_60s.opus",
    "good/games/nexuiz_thunder.ogg",
    "damaged/truncated_30pct.flac",
]
BAD = ["bad/text_file.flac", "bad/zero_byte.mp3", "bad/html_error_page.mp3"]
# Compared with the clean run; the rest (times, worker names) differ by nature.
VALUES = (
    "path, title, artist, album, genre, year, duration_s, codec, sample_rate, channels, bpm, "
    "bpm_confidence, key, mode, key_strength, camelot, loudness_lufs, loudness_range_lu, energy, "
    "danceability, spectral_centroid_hz, spectral_rolloff_hz, spectral_flatness, "
    "spectral_bandwidth_hz, zero_crossing_rate, onset_rate, mfcc_mean, mfcc_std, chroma_mean, "
    "top_tags, size, mtime_ns, decoder, warnings, analyzer_version"
)


def library_values(db: Path) -> dict[str, tuple[Any, ...]]:
    return {r[0]: r for r in rows(db, f"SELECT {VALUES} FROM library ORDER BY path")}


def same(a: Any, b: Any) -> bool:
    """Equal, floats within 1e-6 relative: the same analysis run twice."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def faulty_run(tmp_path: Path, lib: Path, db: Path, n: int, hang: str) -> str:
    """One full run (a full rescan after the first) with a worker killed mid-run, the database
    held until a batch has been kept aside, and the decoder of ``hang`` hung."""
    args = ["analyze", str(lib), "--db", str(db), "--workers", "2", "--batch-size", "1"]
    env = {
        "PLAYLISTA_FAULTS": json.dumps([{"match": hang, "fault": "hang"}]),
        "PLAYLISTA_DECODE_TIMEOUT_SECONDS": "5",
        "PREFECT_API_URL": api_url(),
    }
    extra = ["--full-rescan"] if n else []
    cli, log = start_cli(tmp_path, *args, *extra, "--verbose", env=env, log=f"run{n}")
    wait_for_plan(log)
    stored = wait_for(lambda: analysed_paths(db) or {}, timeout=600, what="a first stored batch")
    kill_a_busy_worker(log)
    holder = hold(db)
    try:
        wait_for(
            lambda: list(staging_dir(db).glob("*.batch")) or cli.poll() is not None,
            timeout=600,
            what="a batch kept aside while the database is held",
        )
    finally:
        release(holder)
    output = finish(cli, log)
    assert cli.returncode == 0, output[-3000:]
    assert stored  # the kill came after a batch was in the database, mid-run
    return output


@pytest.mark.fault("soak: three runs, each with every fault")
def test_three_runs_with_every_fault_end_as_one_clean_run(corpus, prefect_api, tmp_path):
    clean_lib = copy_corpus(corpus, tmp_path / "clean" / "music", [*GOOD, *BAD])
    clean_db = tmp_path / "clean" / "library.duckdb"
    cli, log = start_cli(tmp_path, "analyze", str(clean_lib), "--db", str(clean_db), log="clean")
    output = finish(cli, log)
    assert cli.returncode == 0, output[-3000:]

    lib = copy_corpus(corpus, tmp_path / "music", [*GOOD, *BAD])
    db = tmp_path / "library.duckdb"
    # A good file hangs in the first run (it fails, and the next full rescan analyses it);
    # bad files hang in the other two.
    for n, hang in enumerate((GOOD[2], BAD[0], BAD[2])):
        output = faulty_run(tmp_path, lib, db, n, hang)
        assert "batch kept in" in output and "staged batch(es) into" in output, n

    runs = rows(db, "SELECT status, error, flow_run_id FROM runs ORDER BY started_at")
    assert [(status, error) for status, error, _ in runs] == [("completed", None)] * 3
    final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
    for _, _, flow_run_id in runs:
        states = task_run_states(flow_run_id)
        assert [(n, s) for n, s in states if s not in final] == []
    failures = dict(rows(db, "SELECT path, error_class FROM failures"))
    assert set(failures) == {str(lib / b) for b in BAD}
    assert failures[str(lib / BAD[2])] == "timeout"  # hung in the last run
    assert rows(db, "SELECT count(*), count(DISTINCT path) FROM track_features") == [
        (len(GOOD), len(GOOD))
    ]
    clean = {p.replace(str(clean_lib), str(lib)): v for p, v in library_values(clean_db).items()}
    soaked = library_values(db)
    assert sorted(soaked) == sorted(str(lib / g) for g in GOOD)
    for path, values in soaked.items():
        expected = (path, *clean[path][1:])
        differing = [
            name
            for name, a, b in zip(VALUES.split(", "), values, expected, strict=True)
            if not same(a, b)
        ]
        assert differing == [], (path, differing)
    assert not list(staging_dir(db).glob("*.batch"))
