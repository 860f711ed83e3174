"""Bugs and run states surface: a bug fails the run loudly and its row says so; only a dead
worker becomes `task_failed`; samples no model can use are one file's failure."""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from distributed import KilledWorker
from distributed.comm import CommClosedError

from playlista.records import Failure, FileStat
from tests.cli_runs import GOOD, rows
from tests.conftest import copy_corpus

pytestmark = pytest.mark.slow


def run_row(db: Path) -> tuple[str, str | None]:
    ((status, error),) = rows(db, "SELECT status, error FROM runs")
    return status, error


@pytest.mark.fault("a bug in the analysis")
def test_a_bug_fails_the_run_loudly_and_its_row_says_so(corpus, prefect_api, tmp_path, monkeypatch):
    from flows.analyze_library import analyze_library

    lib = copy_corpus(corpus, tmp_path / "music", GOOD[:2])
    (lib / "bug_me.flac").write_bytes((corpus / GOOD[4]).read_bytes())
    monkeypatch.setenv("PLAYLISTA_FAULTS", json.dumps([{"match": "bug_me", "fault": "bug"}]))
    db = tmp_path / "library.duckdb"
    state = analyze_library(
        roots=[str(lib)], db=str(db), workers=2, batch_size=1, return_state=True
    )
    assert state.is_failed()
    raised = state.result(raise_on_failure=False)
    assert isinstance(raised, RuntimeError) and "injected bug" in str(raised)
    status, error = run_row(db)
    assert status == "failed"
    assert error.startswith("RuntimeError: ValueError in the decoder process") and "bug_me" in error
    # Not turned into rows: no file is recorded as failed because of it.
    assert rows(db, "SELECT count(*) FROM failures") == [(0,)]


@pytest.mark.fault("a run that cannot start its work")
def test_a_run_that_raises_is_recorded_failed_with_its_error(prefect_api, tmp_path):
    from flows.analyze_library import analyze_library

    db, gone = tmp_path / "library.duckdb", tmp_path / "unmounted"
    with pytest.raises(NotADirectoryError):
        analyze_library(roots=[str(gone)], db=str(db), workers=1)
    assert rows(db, "SELECT status FROM runs") == [("failed",)]
    assert run_row(db) == ("failed", f"NotADirectoryError: library root is not a folder: {gone}")
    assert rows(db, "SELECT count(*) FROM files") == [(0,)]


def far_beyond_full_scale(path: Path, sr: int = 22050) -> Path:
    """A 32-bit float WAV of finite samples near float32's largest: they overflow when mixed."""
    t = np.arange(10 * sr) / sr
    y = (3e38 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(path, np.stack([y, y], axis=1), sr, subtype="FLOAT")
    return path


@pytest.mark.fault("samples no model can use")
def test_samples_musicnn_refuses_are_one_files_failure_and_its_batch_goes_on(
    corpus, prefect_api, tmp_path
):
    from flows.analyze_library import analyze_library
    from playlista.runs.batches import make_batches
    from playlista.scan import discover

    lib = copy_corpus(corpus, tmp_path / "music", GOOD[:4])
    huge = far_beyond_full_scale(lib / "huge.wav")
    (batch,) = [b for b in make_batches(list(discover([lib])), batch_size=2, workers=1) if
                str(huge) in {f.path for f in b}]  # fmt: skip
    assert len(batch) == 2  # it shares its batch with a good file
    db = tmp_path / "library.duckdb"
    summary = analyze_library(roots=[str(lib)], db=str(db), workers=1, batch_size=2)
    assert (summary["analyzed"], summary["failed"]) == (4, 1)
    ((path, error_class, message),) = rows(db, "SELECT path, error_class, message FROM failures")
    assert (path, error_class) == (str(huge), "decode_error")
    assert "far beyond full scale" in message
    assert {p for (p,) in rows(db, "SELECT path FROM library")} == {str(lib / g) for g in GOOD[:4]}


def settled(exc: BaseException) -> Future:
    future: Future = Future()
    future.set_exception(exc)
    return future


def test_only_a_lost_worker_becomes_task_failed_and_a_bug_is_raised():
    from playlista.runs.batches import outcomes_of

    batch = [FileStat("/m/a.flac", 10, 1), FileStat("/m/b.flac", 20, 2)]
    dead = SimpleNamespace(address="tcp://127.0.0.1:40000")  # the scheduler's record of it
    for lost in (KilledWorker("analyze-batch-1", dead, 3), CommClosedError("Stream is closed")):
        outcomes = outcomes_of(settled(lost), batch)
        assert [o.path for o in outcomes] == ["/m/a.flac", "/m/b.flac"]
        assert all(isinstance(o, Failure) and o.error_class == "task_failed" for o in outcomes)
        assert all(o.retryable for o in outcomes)  # type: ignore[union-attr]
    with pytest.raises(TypeError, match="a bug"):
        outcomes_of(settled(TypeError("a bug")), batch)
