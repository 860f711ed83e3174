"""The deployments as a user runs them: `make server`, `make deploy`, `make worker`, and
`prefect deployment run`, all real processes talking to a real Prefect server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

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
        # The run's completion starts the playlists deployment: its files go under tmp_path.
        lists = f"PLAYLIST_DIR={tmp_path / 'playlists'}"
        deployed = make("deploy", f"MUSIC={tmp_path / 'elsewhere'}", f"DB={db}", lists, env=env)
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        assert "analyze-library/nightly" in deployed.stdout
        assert "analyze-library/full-rescan" in deployed.stdout
        assert "generate-playlists/after-analysis" in deployed.stdout
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


def test_a_completed_analysis_starts_the_playlists_and_a_second_nightly_is_cancelled(
    corpus, tmp_path
):
    music = copy_corpus(corpus, tmp_path / "music", CLIPS[:3])
    db, out = tmp_path / "library.duckdb", tmp_path / "playlists"
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {"SERVER_PORT": str(port), "SERVER_HOME": str(tmp_path / "server-home")}
    client_env = {"PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "client-home")}
    with background(["make", "server", *_vars(env)], log=tmp_path / "server.log"):
        health = f"{api}/health"
        wait_until(lambda: http_ok(health), timeout=180, what="server", log=tmp_path / "server.log")
        deployed = make("deploy", f"MUSIC={music}", f"DB={db}", f"PLAYLIST_DIR={out}", env=env)
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        # The worker looks for runs every 2 s, so that the second nightly run is taken up
        # (and refused) while the first is still going.
        worker_env = {"PREFECT_WORKER_QUERY_SECONDS": "2"}
        with background(
            ["make", "worker", *_vars(env)], log=tmp_path / "worker.log", env=worker_env
        ):
            first = _run_deployment("analyze-library/nightly", client_env)
            _wait_for_state(api, first, "RUNNING", tmp_path, timeout=300)
            second = _run_deployment("analyze-library/nightly", client_env)
            _wait_for_state(api, second, "CANCELLED", tmp_path, timeout=120)
            cancelled = _flow_run(api, second, tmp_path)
            assert _flow_run(api, first, tmp_path)["state_type"] == "RUNNING"
            _wait_for_state(api, first, "COMPLETED", tmp_path, timeout=600)
            # Nobody asks for playlists: the analysis's completion starts them.
            wait_until(
                lambda: any(
                    r["state_type"] == "COMPLETED"
                    for r in _flow_runs(api, tmp_path, "generate-playlists")
                ),
                timeout=600,
                what="a completed generate-playlists run",
                log=tmp_path / "worker.log",
            )
            playlists = _flow_runs(api, tmp_path, "generate-playlists")
            analysis = _flow_run(api, first, tmp_path)
    assert "concurrency limit" in cancelled["message"], cancelled
    assert [r["deployment"] for r in playlists] == ["after-analysis"]  # one: for the first run
    assert playlists[0]["start_time"] >= analysis["end_time"]
    made = sorted(p.name for p in out.glob("*.m3u8"))
    assert made and all(name.startswith("cluster-") for name in made)
    assert (out / "library-report.html").is_file()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM library").fetchone() == (3,)
        rows = con.execute("SELECT count(*), sum(tracks) FROM playlists").fetchone()
    assert rows == (len(made), 3)


def _vars(env: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in env.items()]


def _run_deployment(name: str, client_env: dict[str, str]) -> str:
    """Start a run of deployment ``name`` as a person would; return its flow run's id."""
    run = subprocess.run(
        [str(REPO / ".venv/bin/prefect"), "deployment", "run", name],
        env={**os.environ, **client_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout)
    assert found, run.stdout
    return found.group(1)


def _query(api: str, tmp_path: Path, script: str, *args: str) -> Any:
    """Run ``script`` with a sync Prefect client ``c`` against ``api``; its printed JSON."""
    code = "import json, sys\nfrom prefect import get_client\n" + script
    out = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-c", code, *args],
        env={**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "client-home")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


_RUN_FIELDS = (
    "def row(r, deployments):\n"
    "    return {'id': str(r.id), 'state_type': r.state.type.value if r.state else None,\n"
    "            'message': (r.state.message or '') if r.state else '',\n"
    "            'deployment': deployments.get(r.deployment_id),\n"
    "            'start_time': r.start_time.isoformat() if r.start_time else '',\n"
    "            'end_time': r.end_time.isoformat() if r.end_time else ''}\n"
    "with get_client(sync_client=True) as c:\n"
    "    deployments = {d.id: d.name for d in c.read_deployments()}\n"
)


def _flow_run(api: str, flow_run_id: str, tmp_path: Path) -> Any:
    return _query(
        api,
        tmp_path,
        _RUN_FIELDS + "    print(json.dumps(row(c.read_flow_run(sys.argv[1]), deployments)))\n",
        flow_run_id,
    )


def _wait_for_state(api: str, flow_run_id: str, state: str, tmp_path: Path, *, timeout: float):
    wait_until(
        lambda: _flow_run(api, flow_run_id, tmp_path)["state_type"] == state,
        timeout=timeout,
        what=f"flow run {flow_run_id} {state}",
        log=tmp_path / "worker.log",
    )


def _flow_runs(api: str, tmp_path: Path, flow_name: str) -> list[dict[str, str]]:
    """Every run of the flow named ``flow_name``, oldest first."""
    script = _RUN_FIELDS + (
        "    from prefect.client.schemas.filters import FlowFilter, FlowFilterName\n"
        "    name = FlowFilter(name=FlowFilterName(any_=[sys.argv[1]]))\n"
        "    runs = c.read_flow_runs(flow_filter=name)\n"
        "    print(json.dumps(sorted((row(r, deployments) for r in runs), "
        "key=lambda r: r['start_time'])))\n"
    )
    return list(_query(api, tmp_path, script, flow_name))


def _flow_run_logs(api: str, flow_run_id: str, tmp_path: Path) -> list[dict[str, str]]:
    """The flow run's log lines, read back from the server through Prefect's client."""
    script = (
        "from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId\n"
        "with get_client(sync_client=True) as c:\n"
        "    logs = c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId("
        "any_=[sys.argv[1]])), limit=200)\n"
        "print(json.dumps([{'message': g.message, 'name': g.name, "
        "'task_run_id': str(g.task_run_id or '')} for g in logs]))\n"
    )
    return list(_query(api, tmp_path, script, flow_run_id))


def test_serve_offers_the_three_deployments_with_their_trigger_and_limits(prefect_api, tmp_path):
    from prefect.settings import PREFECT_API_URL

    api = str(PREFECT_API_URL.value())
    serving = [
        str(REPO / ".venv/bin/python"), "deployments/serve.py", str(tmp_path / "music"),
        "--db", str(tmp_path / "library.duckdb"), "--out", str(tmp_path / "lists"),
        "--path-map", "/srv/music=/music",
    ]  # fmt: skip
    script = textwrap.dedent(
        """
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

        def row(d):
            limit = d.global_concurrency_limit
            options = d.concurrency_options
            return {
                "name": d.name,
                "parameters": d.parameters,
                "crons": [s.schedule.cron for s in d.schedules],
                "limit": limit.limit if limit else None,
                "strategy": options.collision_strategy.value if options else None,
            }

        with get_client(sync_client=True) as c:
            ours = DeploymentFilter(tags=DeploymentFilterTags(all_=["playlista"]))
            found = {str(d.id): d for d in c.read_deployments(deployment_filter=ours)}
            automations = [
                {"deployment": found[deployment].name, "trigger": a.trigger.model_dump(mode="json")}
                for a in c.read_automations()
                if (deployment := str(getattr(a.actions[0], "deployment_id", ""))) in found
            ]
            print(json.dumps({"deployments": [row(d) for d in found.values()],
                              "automations": automations}))
        """
    )
    env = {"PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "home")}
    with background(serving, log=tmp_path / "serve.log", env=env):

        def registered() -> bool:
            found = _query(api, tmp_path, script)
            return len(found["deployments"]) == 3 and bool(found["automations"])

        wait_until(
            registered, timeout=180, what="the served deployments", log=tmp_path / "serve.log"
        )
        served = _query(api, tmp_path, script)
    by_name = {d["name"]: d for d in served["deployments"]}
    assert set(by_name) == {"nightly", "full-rescan", "after-analysis"}
    assert by_name["nightly"]["crons"] == ["30 2 * * *"]
    assert (by_name["nightly"]["limit"], by_name["nightly"]["strategy"]) == (1, "CANCEL_NEW")
    assert by_name["full-rescan"]["crons"] == by_name["after-analysis"]["crons"] == []
    assert by_name["full-rescan"]["strategy"] == "ENQUEUE"
    assert by_name["nightly"]["parameters"]["roots"] == [str(tmp_path / "music")]
    assert by_name["full-rescan"]["parameters"]["full_rescan"] is True
    assert by_name["after-analysis"]["parameters"]["path_map"] == ["/srv/music=/music"]
    assert by_name["after-analysis"]["parameters"]["out_dir"] == str(tmp_path / "lists")
    (automation,) = served["automations"]
    assert automation["deployment"] == "after-analysis"
    trigger = automation["trigger"]
    assert trigger["expect"] == ["prefect.flow-run.Completed"]
    assert {"prefect.resource.role": "flow", "prefect.resource.name": "analyze-library"} in (
        trigger["match_related"]
    )
    assert {
        "prefect.resource.role": "deployment",
        "prefect.resource.name": ["nightly", "full-rescan"],
    } in trigger["match_related"]
