"""Shared fixtures: the read-only corpus, a real Prefect API, and an analysed library."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from playlista.settings import PREFECT_ENVIRONMENT
from playlista.worker import TENSORFLOW_ENVIRONMENT

# Set before Prefect is imported anywhere: a private Prefect home and playlista's settings.
os.environ.setdefault("PREFECT_HOME", str(Path(__file__).parent.parent / ".pytest_prefect"))
os.environ.update(PREFECT_ENVIRONMENT)
# MusiCNN in the test process runs as on the workers.
for _key, _value in TENSORFLOW_ENVIRONMENT.items():
    os.environ.setdefault(_key, _value)

CORPUS = Path(
    os.environ.get("PLAYLISTA_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus")
)


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "manifest.json").is_file():
        pytest.fail(f"corpus not found at {CORPUS}; set PLAYLISTA_CORPUS")
    return CORPUS


@pytest.fixture(scope="session")
def manifest(corpus: Path) -> dict[str, dict[str, Any]]:
    """The corpus manifest, keyed by path relative to the corpus."""
    return {e["file"]: e for e in json.loads((corpus / "manifest.json").read_text())}


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real Prefect API: a temporary server with its own database, for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def copy_corpus(corpus: Path, dest: Path, parts: list[str]) -> Path:
    """Copy corpus files or folders (relative paths) to ``dest``, writable, keeping the layout."""
    for part in parts:
        src = corpus / part
        target = dest / part
        if src.is_dir():
            shutil.copytree(src, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    for root, dirs, files in os.walk(dest):
        for name in dirs + files:
            p = os.path.join(root, name)
            os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR)
    return dest


def tree_digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by path relative to it."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def analysed_corpus(
    corpus: Path, prefect_api: None, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The corpus itself (good, damaged, bad), analysed once by the real flow on 2 processes.

    It is analysed in place, not copied: a test checks it comes out byte for byte the same.
    """
    from flows.analyze_library import analyze_library

    digests = tree_digests(corpus)
    db = tmp_path_factory.mktemp("db") / "playlista.duckdb"
    roots = [str(corpus / part) for part in ("good", "damaged", "bad")]
    state = analyze_library(roots=roots, db=str(db), workers=2, batch_size=4, return_state=True)
    assert state.is_completed(), state
    summary = state.result()
    return {
        "library": corpus,
        "db": db,
        "summary": summary,
        "flow_run_id": state.state_details.flow_run_id,
        "digests_before": digests,
    }


@contextmanager
def database_held_by_another_process(db: Path) -> Iterator[Path]:
    """Keep ``db`` open read-write in another process, as a person's SQL session would."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(db)!r}); print('ok', flush=True); "
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ok"
        yield db
    finally:
        holder.kill()
        holder.wait()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """After a run that included fault tests, one line per fault with its outcome."""
    lines = []
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            name = getattr(report, "fault_name", None)
            if name and (report.when == "call" or outcome != "passed"):
                lines.append((name, outcome.upper(), report.nodeid.split("::")[-1]))
    if lines:
        terminalreporter.section("fault matrix")
        width = max(len(name) for name, _, _ in lines)
        for name, outcome, test in sorted(lines):
            terminalreporter.write_line(f"{name:<{width}}  {outcome:<7} {test}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    marker = item.get_closest_marker("fault")
    if marker:
        outcome.get_result().fault_name = marker.args[0]  # type: ignore[attr-defined]
