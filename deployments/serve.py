"""Serve playlista's three deployments from this process, for people without a work pool.

    .venv/bin/python deployments/serve.py ROOT... [--db FILE]
        [--playlists playlists.yaml] [--out playlists] [--path-map FROM=TO ...]

Serves the deployments ``prefect.yaml`` declares, as it declares them (schedules, triggers,
concurrency), read from it: ``analyze-library/nightly`` (incremental, every night at 02:30
UTC; a run due while the last one still goes is cancelled), ``analyze-library/full-rescan``
(on demand) and ``generate-playlists/after-analysis`` (when a run of either completes, or
on demand). Trigger runs from the UI or with ``prefect deployment run``. Needs a Prefect
server (``PREFECT_API_URL``): the trigger is an automation, which the server evaluates.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron

from playlista.checkout import on_path
from playlista.settings import Settings

on_path()
from flows.analyze_library import analyze_library  # noqa: E402
from flows.generate_playlists import generate_playlists  # noqa: E402

PREFECT_YAML = Path(__file__).resolve().parents[1] / "prefect.yaml"
FLOWS: dict[str, Flow[..., Any]] = {
    "flows/analyze_library.py:analyze_library": analyze_library,
    "flows/generate_playlists.py:generate_playlists": generate_playlists,
}
_PLACEHOLDER = re.compile(r"^\{\{ \$(\w+) \}\}$")


def deployments(values: dict[str, Any], path_map: list[str]) -> list[RunnerDeployment]:
    """``prefect.yaml``'s deployments, their ``{{ $NAME }}`` parameters taken from
    ``values`` (a root placeholder stands for every root)."""
    document = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    made = []
    for spec in document["deployments"]:
        parameters = {k: _fill(v, values) for k, v in spec.get("parameters", {}).items()}
        if "roots" in parameters:
            parameters["roots"] = values["PLAYLISTA_MUSIC"]
        if "path_map" in parameters:
            parameters["path_map"] = path_map
        limit = spec.get("concurrency_limit")
        schedules = [Cron(s["cron"], timezone=s["timezone"]) for s in spec.get("schedules", [])]
        made.append(
            FLOWS[spec["entrypoint"]].to_deployment(
                name=spec["name"],
                description=spec.get("description"),
                tags=spec.get("tags"),
                parameters=parameters,
                schedules=schedules,
                triggers=[DeploymentEventTrigger(**t) for t in spec.get("triggers", [])],
                concurrency_limit=ConcurrencyLimitConfig(**limit) if limit else None,
            )
        )
    return made


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, str) and (found := _PLACEHOLDER.match(value)):
        return values[found.group(1)]
    return value


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+")
    settings = Settings()
    parser.add_argument("--db", default=str(settings.db))
    parser.add_argument(
        "--playlists", help="YAML file of playlists (default: the library in clusters)"
    )
    parser.add_argument("--out", default=str(settings.playlist_dir), help="folder of the playlists")
    parser.add_argument("--path-map", action="append", default=[], metavar="FROM=TO")
    return parser


def main() -> None:
    args = parser().parse_args()
    values = {
        "PLAYLISTA_MUSIC": [os.path.abspath(r) for r in args.roots],
        "PLAYLISTA_DB": os.path.abspath(args.db),
        "PLAYLISTA_PLAYLISTS": os.path.abspath(args.playlists) if args.playlists else None,
        "PLAYLISTA_PLAYLIST_DIR": os.path.abspath(args.out),
    }
    serve(*deployments(values, args.path_map))


if __name__ == "__main__":
    main()
