"""The generate-playlists flow: every playlist of a YAML file (or given specs) made from the
database, written as M3U8 under one folder and stored; then the library report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact

from playlista.errors import PlaylistError
from playlista.playlists.generate import load_specs
from playlista.playlists.model import PlaylistSpec
from playlista.settings import Settings
from playlista.store import Store
from playlista.store.lock import sole_writer
from tasks.playlists import library_report, make_playlists

REPORT_NAME = "library-report.html"
# Made when neither a file nor specs are given: the library in clusters.
DEFAULT_SPECS = ({"name": "cluster", "method": "clusters"},)


@flow(name="generate-playlists", log_prints=False)
def generate_playlists(
    db: str | None = None,
    out_dir: str = "playlists",
    config: str | None = None,
    playlists: list[dict[str, Any]] | None = None,
    base: str | None = None,
    report: bool = True,
) -> dict[str, Any]:
    """Make the playlists of ``config`` (a YAML file) and ``playlists`` (entries like its
    entries) under ``out_dir``; paths in the files are absolute, or relative to ``base``.

    Takes the database's writer lock, so it waits for an analysis of the same file to end.
    """
    logger = get_run_logger()
    settings = Settings()
    db_path = os.path.abspath(db or settings.db)
    specs = [*(load_specs(config) if config else []), *map(PlaylistSpec.from_dict, playlists or [])]
    if not specs:
        specs = [PlaylistSpec.from_dict(dict(s)) for s in DEFAULT_SPECS]
    if len({s.name for s in specs}) != len(specs):
        raise PlaylistError("playlist names repeat between the file and the given playlists")
    out = os.path.abspath(out_dir)
    made: dict[str, list[tuple[str, str, int]]] = {}
    with sole_writer(db_path, wait_seconds=settings.writer_wait_seconds):
        Store.open(db_path).close()  # migrated before the tasks open it
        for spec in specs:
            made[spec.name] = make_playlists(db_path, spec, out, base)
        report_path = str(Path(out) / REPORT_NAME) if report else None
        if report_path:
            markdown = library_report(db_path, report_path)
    count = sum(len(v) for v in made.values())
    logger.info("%d playlists from %d specs under %s", count, len(specs), out)
    if report_path:
        create_markdown_artifact(
            key="library-report", markdown=markdown, description="The library report's figures"
        )
        create_link_artifact(
            key="library-report-file",
            link=Path(report_path).as_uri(),
            link_text=report_path,
            description="The library report as one HTML page",
        )
    return {"db": db_path, "out_dir": out, "playlists": made, "report": report_path}
