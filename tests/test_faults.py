"""The fault matrix: broken files, hung and crashing decoders, a dead worker, a killed flow, a
held database, a read-only corpus, loopback addresses. `make faults` prints one line each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import psutil
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from playlista.records import FileStat
from playlista.store.staging import staging_dir
from tests.cli_runs import (
    AS_USER,
    GOOD,
    PLAYLISTA,
    analysed_paths,
    analyze_args,
    api_url,
    finish,
    hold_when_planned,
    kill_a_busy_worker,
    release,
    rows,
    start_cli,
    task_run_states,
    wait_for,
    wait_for_plan,
)
from tests.conftest import copy_corpus, tree_digests
from tests.services import REPO

pytestmark = pytest.mark.slow

# -- 1. bad inputs ------------------------------------------------------------------------


def make_bad_inputs(corpus: Path, lib: Path) -> dict[str, tuple[str, ...]]:
    """Broken files of every kind, with the outcomes each may end in."""
    copy_corpus(corpus, lib, ["bad", *GOOD[:2]])
    made = lib / "made"
    made.mkdir()
    expect: dict[str, tuple[str, ...]] = {}
    (made / "zero.mp3").write_bytes(b"")
    expect["made/zero.mp3"] = ("empty_file",)
    flac = (corpus / GOOD[0]).read_bytes()
    (made / "truncated_mid_frame.flac").write_bytes(flac[: len(flac) // 2 + 777])
    expect["made/truncated_mid_frame.flac"] = ("analysed", "decode_error")
    (made / "notes.mp3").write_text("shopping list: milk, eggs\n" * 40)
    expect["made/notes.mp3"] = ("unsupported_format",)
    locked = made / "locked.flac"
    locked.write_bytes(flac)
    locked.chmod(0)
    expect["made/locked.flac"] = ("unreadable",)
    (made / "folder.ogg").mkdir()
    expect["made/folder.ogg"] = ("unreadable",)
    (made / "dangling.mp3").symlink_to(made / "gone.mp3")
    expect["made/dangling.mp3"] = ("unreadable",)
    with open(os.path.join(os.fsencode(made), b"caf\xe9.flac"), "wb") as f:
        f.write(flac)
    expect["made/caf\\xe9.flac"] = ("invalid_name",)
    mp3 = bytearray((corpus / "good/formats/war_of_freedom_60s.mp3").read_bytes())
    mp3[:4096] = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    (made / "corrupt_header.mp3").write_bytes(bytes(mp3))
    expect["made/corrupt_header.mp3"] = ("analysed", "decode_error", "unsupported_format")
    two_hours(made / "two_hours.wav")
    expect["made/two_hours.wav"] = ("analysed",)
    for name in GOOD[:2]:
        expect[name] = ("analysed",)
    for path in sorted((lib / "bad").iterdir()):
        expect[f"bad/{path.name}"] = (
            "empty_file",
            "no_audio",
            "decode_error",
            "unsupported_format",
        )
    return expect


BROKEN = ("empty_file", "no_audio", "decode_error", "unsupported_format")


def two_hours(path: Path, sr: int = 8000) -> None:
    """Two hours of mono 8 kHz audio: a 220 Hz tone with a click every half second."""
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as out:
        t = np.arange(60 * sr) / sr
        minute = 0.2 * np.sin(2 * np.pi * 220 * t)
        minute[:: sr // 2] += 0.6
        for _ in range(120):
            out.write(minute.astype(np.float32))


@pytest.mark.fault("bad inputs")
def test_every_bad_input_ends_as_a_row_with_a_class_and_no_worker_dies(corpus, tmp_path):
    lib = tmp_path / "music"
    expect = make_bad_inputs(corpus, lib)
    db = tmp_path / "library.duckdb"
    cli = [*AS_USER, PLAYLISTA, "analyze", str(lib), "--db", str(db), "--workers", "2"]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    run = subprocess.run(
        cli,
        env={**env, "PREFECT_HOME": str(tmp_path / "prefect")},
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    outcome = {os.path.relpath(p, lib): "analysed" for (p,) in rows(db, "SELECT path FROM library")}
    failures = rows(db, "SELECT path, error_class, message FROM failures")
    outcome.update({os.path.relpath(p, lib): c for p, c, _ in failures})
    assert set(outcome) == set(expect)
    for name, allowed in expect.items():
        assert outcome[name] in allowed, (name, outcome[name])
    messages = {os.path.relpath(p, lib): m for p, _, m in failures}
    assert "permission denied" in messages["made/locked.flac"]
    assert "is a folder" in messages["made/folder.ogg"]
    assert "symbolic link points to a missing file" in messages["made/dangling.mp3"]
    assert "not valid UTF-8" in messages["made/caf\\xe9.flac"]
    assert all(len(m) > 15 and "Traceback" not in m for m in messages.values())
    ((duration,),) = rows(db, "SELECT duration_s FROM library WHERE path LIKE '%two_hours%'")
    assert duration == pytest.approx(7200, abs=0.01)
    workers = rows(db, "SELECT DISTINCT worker FROM track_features")
    assert len(workers) <= 2  # a worker that died would come back under a new pid


@pytest.mark.fault("file deleted before analysis")
def test_a_file_deleted_between_discovery_and_analysis_is_recorded_then_marked_gone(
    corpus, tmp_path
):
    from playlista.analysis import analyze_file

    song = copy_corpus(corpus, tmp_path / "music", GOOD[:1]) / GOOD[0]
    seen = os.stat(song)
    song.unlink()
    failure = analyze_file(
        str(song), worker="w", seen=FileStat(str(song), seen.st_size, seen.st_mtime_ns)
    )
    assert failure.error_class == "file_vanished"  # type: ignore[union-attr]
    assert "disappeared" in failure.message  # type: ignore[union-attr]
    assert (failure.size, failure.mtime_ns) == (seen.st_size, seen.st_mtime_ns)  # type: ignore[union-attr]


# -- 2, 3, 7. hung and crashing decoders, transient and permanent failures ---------------


@pytest.mark.fault("hung decoder, crashing decoder, transient I/O error")
def test_hangs_and_crashes_are_recorded_and_a_transient_error_is_retried(
    corpus, prefect_api, tmp_path, monkeypatch, capsys
):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.analyze_library import analyze_library
    from playlista.cli import main

    lib = copy_corpus(corpus, tmp_path / "music", GOOD[:3])
    for name in ("hang_me", "abort_me", "flaky_me"):
        (lib / f"{name}.flac").write_bytes((corpus / GOOD[4]).read_bytes())
    rules = [
        {"match": "hang_me", "fault": "hang"},
        {"match": "abort_me", "fault": "abort"},
        {"match": "flaky_me", "fault": "eio", "times": 2, "state": str(tmp_path / "state")},
    ]
    monkeypatch.setenv("PLAYLISTA_FAULTS", json.dumps(rules))
    monkeypatch.setenv("PLAYLISTA_DECODE_TIMEOUT_SECONDS", "5")
    db = tmp_path / "library.duckdb"

    def run(**options: Any) -> dict[str, Any]:
        return analyze_library(roots=[str(lib)], db=str(db), workers=2, batch_size=3, **options)

    state = analyze_library(
        roots=[str(lib)], db=str(db), workers=2, batch_size=3, return_state=True
    )
    summary = state.result()
    assert (summary["analyzed"], summary["failed"]) == (4, 2)
    failures = {
        Path(p).stem: (c, m, r, a)
        for p, c, m, r, a in rows(
            db, "SELECT path, error_class, message, retryable, attempts FROM failures"
        )
    }
    assert failures["hang_me"][0] == "timeout" and "5 s" in failures["hang_me"][1]
    assert failures["abort_me"][0] == "crash" and "SIGABRT" in failures["abort_me"][1]
    assert all(not retryable and attempts == 1 for _, _, retryable, attempts in failures.values())
    # Every outcome came back from a worker, and no worker was replaced: a restarted worker
    # would add a third name (workers are named host:pid).
    workers = rows(
        db,
        "SELECT DISTINCT worker FROM (FROM track_features SELECT worker UNION ALL "
        "FROM failures SELECT worker)",
    )
    assert 1 <= len(workers) <= 2, workers
    # The flaky file failed twice (its batch, then the first retry) and then passed.
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    retried = [t for t in task_runs if t.name.startswith("retry-transient")]
    assert len(retried) == 1 and retried[0].run_count == 2
    assert rows(db, "SELECT count(*) FROM library WHERE path LIKE '%flaky_me%'") == [(1,)]

    again = run()  # permanent failures are not retried while the file is unchanged
    assert (again["analyzed"], again["failed"], again["retried"]) == (0, 0, 0)
    main(["failures", "--db", str(db)])
    listed = capsys.readouterr().out
    assert "timeout\tpermanent\t1" in listed and "crash\tpermanent\t1" in listed
    forced = run(retry_failed=True)
    assert (forced["retried"], forced["failed"]) == (2, 2)
    attempts = rows(db, "SELECT DISTINCT attempts FROM failures")
    assert attempts == [(2,)]


# -- 4. a worker killed -------------------------------------------------------------------


@pytest.mark.fault("worker killed")
def test_a_worker_killed_mid_run_loses_nothing_and_counts_nothing_twice(
    corpus, prefect_api, tmp_path
):
    lib, db = copy_corpus(corpus, tmp_path / "music", GOOD), tmp_path / "library.duckdb"
    env = {
        "PREFECT_API_URL": api_url(),  # a server that outlives the run, to read it after
        # Dask gives up on the batch at once (KilledWorker) instead of running it elsewhere:
        # the flow records it as task_failed and retries it, and the dead worker's task run
        # is one nobody ends (PrefectHQ/prefect#21638).
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
    }
    cli, log = start_cli(tmp_path, *analyze_args(lib, db), "--verbose", env=env)
    wait_for_plan(log)
    wait_for(lambda: analysed_paths(db) or {}, timeout=600, what="a first stored batch")
    _, in_flight = kill_a_busy_worker(log)
    assert in_flight and all(k.startswith("analyze") for k in in_flight), in_flight
    output = finish(cli, log)
    assert cli.returncode == 0, output[-3000:]
    assert rows(db, "SELECT count(*) FROM library") == [(len(GOOD),)]
    assert rows(db, "SELECT count(*) FROM failures") == [(0,)]
    assert rows(db, "SELECT analyzed, failed FROM runs") == [(len(GOOD), 0)]
    # Every task run of the finished flow run ended, the killed worker's too.
    ((flow_run_id,),) = rows(db, "SELECT flow_run_id FROM runs")
    states = task_run_states(flow_run_id)
    assert sum(name.startswith("analyze-batch") for name, _ in states) >= len(GOOD) - 1
    final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
    assert [(n, s) for n, s in states if s not in final] == []
    assert "CRASHED" in {s for _, s in states}, states  # the killed worker's
    assert [s for n, s in states if n.startswith("retry-transient")] == ["COMPLETED"]
    assert "lost with its worker" in output


# -- 5. the flow killed -------------------------------------------------------------------


@pytest.mark.fault("flow killed")
def test_after_the_flow_is_killed_the_next_run_finishes_without_redoing_work(corpus, tmp_path):
    lib = copy_corpus(corpus, tmp_path / "music", GOOD)
    db = tmp_path / "library.duckdb"
    args = analyze_args(lib, db)
    cli, log = start_cli(tmp_path, *args, "--verbose")
    wait_for_plan(log)
    wait_for(lambda: len(analysed_paths(db) or {}) >= 2, timeout=600, what="two stored batches")
    os.killpg(cli.pid, signal.SIGKILL)
    cli.wait()
    stored = analysed_paths(db)
    assert stored is not None and 2 <= len(stored) < len(GOOD)
    staged = sum(pq.read_table(p).num_rows for p in staging_dir(db).glob("*.batch/results.parquet"))
    rerun, log = start_cli(tmp_path, *args, log="rerun")
    output = finish(rerun, log)
    assert rerun.returncode == 0, output[-3000:]
    after = analysed_paths(db)
    assert after is not None and set(after) == {str(lib / g) for g in GOOD}
    assert {p: after[p] for p in stored} == stored  # nothing stored was analysed again
    assert rows(db, "SELECT count(*) = count(DISTINCT path) FROM track_features") == [(True,)]
    runs = rows(db, "SELECT status, analyzed FROM runs ORDER BY started_at")
    assert runs == [("interrupted", None), ("completed", len(GOOD) - len(stored) - staged)]


# -- 6. the database held by another process ---------------------------------------------


@pytest.mark.fault("database held during a run")
def test_batches_ready_while_the_database_is_held_are_staged_then_merged(corpus, tmp_path):
    lib, db = copy_corpus(corpus, tmp_path / "music", GOOD), tmp_path / "library.duckdb"
    cli, log = start_cli(tmp_path, *analyze_args(lib, db), "--verbose")
    holder = hold_when_planned(db, log)
    try:
        wait_for(lambda: list(staging_dir(db).glob("*.batch")), timeout=600, what="a staged batch")
    finally:
        release(holder)
    output = finish(cli, log)
    assert cli.returncode == 0, output[-3000:]
    assert "batch kept in" in output and "staged batch(es) into" in output
    assert not list(staging_dir(db).glob("*.batch"))  # merged at the next batch or the end
    assert rows(db, "SELECT count(*) FROM library") == [(len(GOOD),)]


@pytest.mark.fault("database held past the run")
def test_a_lock_that_outlasts_the_run_loses_nothing_and_the_next_run_merges(corpus, tmp_path):
    lib = copy_corpus(corpus, tmp_path / "music", GOOD[:3])
    db = tmp_path / "library.duckdb"
    args = analyze_args(lib, db)
    env = {"PLAYLISTA_WRITE_RETRIES": "1"}
    cli, log = start_cli(tmp_path, *args, "--verbose", env=env)
    holder = hold_when_planned(db, log)
    try:
        output = finish(cli, log)
        assert cli.returncode == 0, output[-3000:]
        assert "merged by the next run" in output
        staged = [sorted(p.name for p in b.iterdir()) for b in staging_dir(db).glob("*.batch")]
        batch = ["results", "track_features", "track_musicnn", "track_tags"]
        assert sorted(staged) == [[f"{t}.parquet" for t in batch]] * 3 + [["runs.parquet"]]
    finally:
        release(holder)
    assert rows(db, "SELECT count(*) FROM library") == [(0,)]
    rerun, log = start_cli(tmp_path, *args, log="rerun")
    output = finish(rerun, log)
    assert rerun.returncode == 0, output[-3000:]
    assert rows(db, "SELECT count(*) FROM library") == [(3,)]
    # The first run's last row was staged with its batches and merged: it says what it did.
    assert rows(db, "SELECT status, analyzed, error FROM runs ORDER BY started_at") == [
        ("completed", 3, None),
        ("completed", 0, None),
    ]
    assert not list(staging_dir(db).glob("*.batch"))


# -- 8. read-only corpus ------------------------------------------------------------------


@pytest.mark.fault("corpus read-only")
def test_a_full_run_leaves_every_corpus_file_byte_for_byte_unchanged(analysed_corpus, corpus):
    before = analysed_corpus["digests_before"]
    assert len(before) > 40 and tree_digests(corpus) == before


# -- 9. loopback --------------------------------------------------------------------------


@pytest.mark.fault("loopback by default")
def test_the_local_cluster_and_its_dashboard_listen_on_loopback_only():
    from distributed import Client

    from playlista.cluster import analysis_cluster

    with analysis_cluster(address=None, workers=2) as info, Client(info.address) as client:
        assert urlparse(info.address).hostname == "127.0.0.1"
        assert info.dashboard and urlparse(info.dashboard).hostname == "127.0.0.1"
        pids = {os.getpid(), *client.run(os.getpid).values()}
        assert all(urlparse(w).hostname == "127.0.0.1" for w in client.scheduler_info()["workers"])
        listening = [
            c
            for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids
        ]
    assert len(listening) >= 4  # scheduler, dashboard, and each worker's own server
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}


@pytest.mark.fault("loopback by default")
def test_the_prefect_server_the_project_starts_listens_on_loopback():
    dry = subprocess.run(
        ["make", "-n", "server"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "prefect server start --host 127.0.0.1 " in dry.stdout
    from playlista.settings import Settings

    assert Settings().host == "127.0.0.1"  # the local cluster's and its dashboard's
