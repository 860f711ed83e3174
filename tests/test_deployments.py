"""The deployments as a user runs them: `make server`, `make deploy`, `make worker`, and
`prefect deployment run`, all real processes talking to a real Prefect server."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.conftest import copy_corpus
from tests.services import REPO, background, free_port, http_ok, wait_until

pytestmark = pytest.mark.slow

CLIPS = [
    "good/rendered/bach_bwv351.flac",
    "good/rendered/mozart_k545.flac",
    "good/samples/loop_amen_full.flac",
    "bad/text_file.flac",
]


def make(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_full_rescan_deployment_runs_on_a_worker_and_its_dask_logs_reach_the_api(corpus, tmp_path):
    music = copy_corpus(corpus, tmp_path / "music", CLIPS)
    db = tmp_path / "library.duckdb"
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    # Both the server and its clients get their own Prefect home; the API URL is the one
    # variable that ties them together, as on a user's machine.
    env = {"SERVER_PORT": str(port), "SERVER_HOME": str(tmp_path / "server-home")}
    client_env = {"PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "client-home")}
    with background(["make", "server", *_vars(env)], log=tmp_path / "server.log") as server:
        health = f"{api}/health"
        wait_until(lambda: http_ok(health), timeout=180, what="server", log=tmp_path / "server.log")
        assert server.poll() is None
        deployed = make("deploy", f"MUSIC={tmp_path / 'elsewhere'}", f"DB={db}", env=env)
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        assert "analyze-library/nightly" in deployed.stdout
        assert "analyze-library/full-rescan" in deployed.stdout
        assert "generate-playlists/after-nightly" in deployed.stdout
        with background(["make", "worker", *_vars(env)], log=tmp_path / "worker.log"):
            run = subprocess.run(
                [
                    str(REPO / ".venv/bin/prefect"),
                    "deployment",
                    "run",
                    "analyze-library/full-rescan",
                    "--param",
                    f"roots={json.dumps([str(music)])}",
                    "--param",
                    "batch_size=1",
                    "--watch",
                    "--watch-timeout",
                    "600",
                ],
                env={**os.environ, **client_env},
                capture_output=True,
                text=True,
                timeout=700,
                check=False,
            )
            assert run.returncode == 0, run.stdout[-3000:] + (tmp_path / "worker.log").read_text()
            assert "Completed" in run.stdout
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout)
        assert flow_run_id, run.stdout
        logs = _flow_run_logs(api, flow_run_id.group(1), tmp_path)

    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM library").fetchone() == (3,)
        assert con.execute("SELECT count(*) FROM failures").fetchone() == (1,)
        full, roots = con.execute("SELECT full_rescan, roots FROM runs").fetchone()
        workers = set(
            w for (w,) in con.execute("SELECT DISTINCT worker FROM track_features").fetchall()
        )
    assert full is True and roots == [str(music)]  # the deployment's flag, the run's --param
    # Lines logged inside tasks on the Dask workers, which are other processes than the flow's.
    task_lines = [line for line in logs if line["task_run_id"] and "analysed" in line["message"]]
    assert len(task_lines) == 4, logs
    assert {line["message"].split()[1].rstrip(":") for line in task_lines} == workers
    assert any("dashboard" in line["message"] for line in logs if not line["task_run_id"])


def _vars(env: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in env.items()]


def _flow_run_logs(api: str, flow_run_id: str, tmp_path: Path) -> list[dict[str, str]]:
    """The flow run's log lines, read back from the server through Prefect's client."""
    script = (
        "import json, sys\n"
        "from prefect import get_client\n"
        "from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId\n"
        "with get_client(sync_client=True) as c:\n"
        "    logs = c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId("
        "any_=[sys.argv[1]])), limit=200)\n"
        "print(json.dumps([{'message': g.message, 'name': g.name, "
        "'task_run_id': str(g.task_run_id or '')} for g in logs]))\n"
    )
    out = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-c", script, flow_run_id],
        env={**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "client-home")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return list(json.loads(out.stdout))
