"""The generate-playlists flow: every playlist of a YAML file (or given specs) made from the
database, written as M3U8 under one folder and stored; then the library report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact

from playlista.playlists.generate import playlists_to_make
from playlista.settings import Settings
from playlista.store import Store
from playlista.store.lock import sole_writer
from tasks.playlists import library_report, make_playlists

REPORT_NAME = "library-report.html"


@flow(name="generate-playlists", log_prints=False)
def generate_playlists(
    db: str | None = None,
    out_dir: str | None = None,
    config: str | None = None,
    playlists: list[dict[str, Any]] | None = None,
    base: str | None = None,
    report: bool = True,
    path_map: list[str] | None = None,
) -> dict[str, Any]:
    """Make the playlists of ``config`` (a YAML file) and ``playlists`` (entries like its
    entries) under ``out_dir`` (default: the settings' ``playlist_dir``); paths in the files
    are absolute, or relative to ``base``.

    ``path_map`` (``FROM=TO`` entries, added to the file's ``path_map:``) rewrites the paths
    written for the device that plays them; ``base`` is then that device's folder of the
    playlists. Tracks no mapping covers are left out of the files and listed under
    ``unmapped`` in the result. Takes the database's writer lock, so it waits for an
    analysis of the same file to end.
    """
    logger = get_run_logger()
    settings = Settings()
    db_path = os.path.abspath(db or settings.db)
    to_make = playlists_to_make(config, playlists or (), path_map or ())
    specs, mapping = to_make.specs, to_make.path_map
    out = os.path.abspath(out_dir or settings.playlist_dir)
    made: dict[str, list[tuple[str, str, int]]] = {}
    unmapped: dict[str, list[str]] = {}
    with sole_writer(db_path, wait_seconds=settings.writer_wait_seconds):
        Store.open(db_path).close()  # migrated before the tasks open it
        for spec in specs:
            written = make_playlists(db_path, spec, out, base, mapping)
            made[spec.name] = [(p.name, p.title, len(p.paths)) for p in written]
            unmapped.update({p.name: list(p.unmapped) for p in written if p.unmapped})
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
    return {
        "db": db_path,
        "out_dir": out,
        "playlists": made,
        "unmapped": unmapped,
        "report": report_path,
    }
