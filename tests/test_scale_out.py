"""The README's scale-out section, run as written on 127.0.0.1: a Prefect server, a Dask
scheduler, `dask worker --nworkers auto --preload playlista.preload`, and the analysis."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from contextlib import ExitStack

import duckdb
import pytest
from distributed import Client

from playlista.worker import worker_status
from tests.conftest import copy_corpus
from tests.services import REPO, background, free_port, http_ok, wait_until

pytestmark = pytest.mark.slow

CLIPS = [
    "good/rendered/bach_bwv269.flac",
    "good/rendered/bach_bwv351.flac",
    "good/rendered/mozart_k545.flac",
    "good/rendered/trance1.wav",
    "good/samples/loop_amen_full.flac",
    "good/formats/war_of_freedom_60s.mp3",
]


def scale_out_commands() -> list[str]:
    """The shell lines of the README's scale-out block, comments dropped."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Scaling out") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the scale-out section has no sh block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_the_readme_scale_out_section_runs_on_two_preloaded_workers(corpus, tmp_path):
    music = copy_corpus(corpus, tmp_path / "music", CLIPS)
    db = tmp_path / "library.duckdb"
    api_port, scheduler_port, dashboard_port = free_port(), free_port(), free_port()
    words = {
        "FLOWHOST": "127.0.0.1",
        "SCHEDULER": "127.0.0.1",
        "4200": str(api_port),
        "8786": str(scheduler_port),
        "8787": str(dashboard_port),
        "/srv/music": str(music),
        "library.duckdb": str(db),
    }
    env = {"PREFECT_HOME": str(tmp_path / "prefect-home")}
    scheduler = f"tcp://127.0.0.1:{scheduler_port}"
    commands = scale_out_commands()
    assert [c.split()[0] for c in commands] == [
        "make",
        "export",
        ".venv/bin/dask",
        ".venv/bin/dask",
        ".venv/bin/playlista",
    ]
    with ExitStack() as stack:
        for n, line in enumerate(commands):
            for word, value in words.items():
                line = line.replace(word, value)
            argv = shlex.split(line)
            log = tmp_path / f"step{n}.log"
            if argv[0] == "export":
                name, value = argv[1].split("=", 1)
                env[name] = value
            elif argv[:2] == ["make", "server"]:
                argv += [f"SERVER_PORT={api_port}", f"SERVER_HOME={tmp_path / 'server'}"]
                stack.enter_context(background(argv, log=log, env=env))
                wait_until(
                    lambda: http_ok(f"http://127.0.0.1:{api_port}/api/health"),
                    timeout=180,
                    what="Prefect server",
                    log=log,
                )
            elif argv[1] == "scheduler":
                stack.enter_context(background(argv, log=log, env=env))
                wait_until(
                    lambda log=log: "Scheduler at" in log.read_text(),  # type: ignore[misc]
                    timeout=60,
                    what="scheduler",
                )
            elif argv[1] == "worker":
                stack.enter_context(background(argv, log=log, env=env))
                client = stack.enter_context(Client(scheduler, timeout=60))
                client.wait_for_workers(2, timeout=300)
            else:
                result = subprocess.run(
                    argv,
                    cwd=REPO,
                    env={**os.environ, **env},
                    capture_output=True,
                    text=True,
                    timeout=900,
                    check=False,
                )
                assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        status = client.run(worker_status)

    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM library").fetchone() == (len(CLIPS),)
        per_worker = dict(
            con.execute("SELECT worker, count(*) FROM track_features GROUP BY worker").fetchall()
        )
    assert len(status) == 2
    for s in status.values():  # each loaded once, by the preload, before the run
        assert s["ready"] and s["loads"] == 1, s
    assert set(per_worker) == {s["worker"] for s in status.values()}, (per_worker, status)
    assert all(n >= 1 for n in per_worker.values())
    assert sum(per_worker.values()) == len(CLIPS)
