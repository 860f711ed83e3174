"""A folder that cannot be listed is unknown, not gone: its files keep their status, and the
folder is a failure the user can query and a count in the run's row."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from playlista.analysis import ANALYZER_VERSION, MUSICNN_VERSION
from playlista.store import Store
from tests.cli_runs import AS_USER, PLAYLISTA, rows
from tests.store.helpers import audio_file, track

pytestmark = pytest.mark.slow


def analyze_as_user(lib: Path, db: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return subprocess.run(
        [*AS_USER, PLAYLISTA, "analyze", str(lib), "--db", str(db), "--workers", "1"],
        env={**env, "PREFECT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.fault("a folder that cannot be listed")
def test_files_under_a_folder_that_cannot_be_listed_keep_their_status(tmp_path):
    lib, db = tmp_path / "music", tmp_path / "library.duckdb"
    songs = [audio_file(lib / "open" / "a.flac"), audio_file(lib / "shut" / "b.flac")]
    songs.append(audio_file(lib / "shut" / "deeper" / "c.flac"))
    # Analysed already (records written through the store, as tests/store does): the run
    # below has nothing to analyse, only to plan.
    with Store.open(db) as store:
        store.write_outcomes(
            [track(s, version=ANALYZER_VERSION, musicnn_version=MUSICNN_VERSION) for s in songs]
        )
    shut = lib / "shut"
    shut.chmod(0)
    try:
        run = analyze_as_user(lib, db, tmp_path / "prefect")
    finally:
        shut.chmod(0o755)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert rows(db, "SELECT path, status FROM files ORDER BY path") == [
        (str(s), "present") for s in songs
    ]
    assert rows(db, "SELECT count(*) FROM library") == [(3,)]
    ((path, error_class, message),) = rows(db, "SELECT path, error_class, message FROM failures")
    assert (path, error_class) == (str(shut), "unlistable")
    assert "Permission denied" in message and "keep their status" in message
    assert rows(db, "SELECT unlisted, deleted, unchanged FROM runs") == [(1, 0, 1)]
    assert "playlista failures" in run.stdout
    # Listable again: the failure goes, nothing was lost meanwhile.
    again = analyze_as_user(lib, db, tmp_path / "prefect")
    assert again.returncode == 0, again.stderr[-3000:]
    assert rows(db, "SELECT count(*) FROM failures") == [(0,)]
    assert rows(db, "SELECT unlisted, unchanged FROM runs ORDER BY started_at") == [
        (1, 1),
        (0, 3),
    ]
