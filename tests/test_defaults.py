"""Every default has one home, the settings object: the flows, tasks, deployments, the CLI
and the analysis of one file take theirs from it."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
import yaml

from playlista.settings import AnalysisParams, Settings

ROOT = Path(__file__).resolve().parents[1]
# Flow parameters the settings own: left out, the flow takes the setting.
SETTINGS_OWNED = {
    "db",
    "batch_size",
    "workers",
    "min_workers",
    "max_workers",
    "dask_address",
    "follow_symlinks",
}


@pytest.fixture(autouse=True)
def no_environment(monkeypatch):
    for name in os.environ:
        if name.startswith("PLAYLISTA_"):
            monkeypatch.delenv(name)


def test_the_analysis_parameters_default_to_the_settings():
    assert AnalysisParams() == AnalysisParams.of(Settings())
    assert AnalysisParams().max_seconds == Settings().analysis_max_seconds > 0


def test_the_analysis_of_one_file_and_the_tasks_have_no_defaults_of_their_own():
    from playlista.analysis import analyze_file
    from tasks.analyze import analyze_batch, retry_transient

    assert inspect.signature(analyze_file).parameters["params"].default is None
    for task in (analyze_batch, retry_transient):
        assert all(
            p.default is inspect.Parameter.empty
            for p in inspect.signature(task.fn).parameters.values()
        ), task.name


def test_task_retries_are_the_settings():
    from tasks.analyze import TRANSIENT_BACKOFF_SECONDS, retry_transient
    from tasks.retry import with_retries
    from tasks.store import BUSY_BACKOFF_SECONDS, finish_run

    settings = Settings(transient_retries=5, write_retries=2)
    assert retry_transient.retries == finish_run.retries == 0  # nothing to shadow the setting
    retried = with_retries(retry_transient, settings.transient_retries, backoff_seconds=2.0)
    assert retried.retries == 5 and retried.retry_delay_seconds == [2, 4, 8, 16, 32]
    merged = with_retries(finish_run, settings.write_retries, backoff_seconds=1.0)
    assert merged.retries == 2 and merged.retry_delay_seconds == [1, 2]
    assert (TRANSIENT_BACKOFF_SECONDS, BUSY_BACKOFF_SECONDS) == (2.0, 1.0)


def test_the_flow_leaves_what_the_settings_own_to_them():
    from flows.analyze_library import analyze_library

    parameters = inspect.signature(analyze_library.fn).parameters
    assert parameters.keys() >= SETTINGS_OWNED
    assert {name: parameters[name].default for name in SETTINGS_OWNED} == dict.fromkeys(
        SETTINGS_OWNED
    )
    settings = Settings()
    resolved = settings.with_options(**dict.fromkeys(SETTINGS_OWNED))
    assert resolved == settings.model_copy(update={"db": Path(os.path.abspath(settings.db))})
    assert settings.with_options(batch_size=3, workers=None).batch_size == 3


def test_the_deployments_leave_what_the_settings_own_to_them():
    document = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    for spec in document["deployments"]:
        for name, value in spec.get("parameters", {}).items():
            if name in SETTINGS_OWNED:  # a value filled in when applied, or left to the flow
                assert value is None or str(value).startswith("{{ $"), (spec["name"], name)


def test_serving_the_deployments_defaults_to_the_settings_database_and_folder():
    from deployments.serve import parser

    args = parser().parse_args(["music"])
    assert (args.db, args.out) == (str(Settings().db), str(Settings().playlist_dir))


def test_the_playlists_flow_writes_to_the_settings_folder_when_given_none():
    from flows.generate_playlists import generate_playlists

    assert inspect.signature(generate_playlists.fn).parameters["out_dir"].default is None


def test_the_cli_leaves_what_the_settings_own_to_them(monkeypatch):
    from playlista.cli import _parser

    monkeypatch.setenv("PLAYLISTA_DB", "/elsewhere/music.duckdb")
    args = _parser().parse_args(["analyze", "music"])
    assert args.db == "/elsewhere/music.duckdb"
    given = {name: getattr(args, name) for name in SETTINGS_OWNED - {"db"}}
    assert given == dict.fromkeys(given)  # None: the flow takes the setting
    for command in (["failures"], ["sql", "SELECT 1"], ["playlist", "clusters", "x"]):
        assert _parser().parse_args(command).db == "/elsewhere/music.duckdb", command
    monkeypatch.setenv("PLAYLISTA_PLAYLIST_DIR", "/elsewhere/lists")
    for command in (["playlist", "clusters", "x"], ["playlist", "run", "lists.yaml"]):
        assert _parser().parse_args(command).out == "/elsewhere/lists", command
