"""Prefect tasks of the playlists flow; they run in the flow process, the only writer."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from playlista.playlists.generate import generate
from playlista.playlists.model import Playlist, PlaylistSpec
from playlista.playlists.pathmap import PathMap
from playlista.report import figure_pngs, render_markdown, render_report
from playlista.store import Store


@task(name="make-playlists", cache_policy=NO_CACHE, persist_result=False)
def make_playlists(
    db: str, spec: PlaylistSpec, out_dir: str, base: str | None, path_map: PathMap
) -> list[Playlist]:
    """One spec's playlists, written and stored."""
    with Store.open(db, prepare=False) as store:
        return generate(store, spec, out_dir=out_dir, base=base, path_map=path_map)


@task(name="library-report", cache_policy=NO_CACHE, persist_result=False)
def library_report(db: str, out: str) -> str:
    """Write the HTML report to ``out``; return the same report as Markdown."""
    with Store.open(db, prepare=False) as store:
        data = store.report_data()
    pngs = figure_pngs(data)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(render_report(data, pngs=pngs), encoding="utf-8")
    return render_markdown(data, pngs=pngs)
