"""Make one spec's playlists from the database: M3U8 files under a folder, rows in DuckDB.

The writer (the flow process, or the CLI for local use) calls :func:`generate` once per spec.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from playlista.errors import PlaylistError
from playlista.playlists import m3u
from playlista.playlists.build import build
from playlista.playlists.model import Playlist, PlaylistSpec, Tracks
from playlista.playlists.pathmap import PathMap

log = logging.getLogger(__name__)
# Made when neither a file nor entries are given: the library in clusters.
DEFAULT_SPECS = ({"name": "cluster", "method": "clusters"},)


class PlaylistStore(Protocol):
    """What :func:`generate` needs of the database (:class:`playlista.store.Store` has it)."""

    def tracks(self, spec: PlaylistSpec) -> Tracks: ...

    def playlist_files(self, spec: str) -> list[str]: ...

    def replace_playlists(
        self,
        spec: str,
        playlists: Sequence[Playlist],
        files: Sequence[str | None],
        durations: Sequence[float],
    ) -> None: ...


def generate(
    store: PlaylistStore,
    spec: PlaylistSpec,
    *,
    out_dir: str | os.PathLike[str],
    base: str | os.PathLike[str] | None = None,
    path_map: PathMap | None = None,
) -> list[Playlist]:
    """Make ``spec``'s playlists, write each as ``out_dir/<name>.m3u8`` and replace the rows
    the spec made before; a file the spec made before and no longer makes is removed. The
    files change only once the rows have committed.

    With ``path_map``, the files hold the mapped paths (the rows keep the real ones) and a
    track that no mapping covers is left out of its file, named in ``Playlist.unmapped``.
    """
    tracks = store.tracks(spec)
    playlists = build(spec, tracks)
    targets = [m3u.target(out_dir, p.name) for p in playlists]  # every name checked first
    row = {path: i for i, path in enumerate(tracks.paths)}
    durations, texts, made = [], [], []
    for playlist in playlists:
        entries = [
            m3u.Entry(
                path=p,
                duration_s=float(tracks.duration_s[row[p]]),
                artist=tracks.artists[row[p]],
                title=tracks.titles[row[p]],
            )
            for p in playlist.paths
        ]
        durations.append(sum(e.duration_s or 0.0 for e in entries))
        entries, unmapped = _on_device(entries, path_map)
        texts.append(
            m3u.render(entries, title=playlist.title, base=os.fspath(base) if base else None)
        )
        made.append(dataclasses.replace(playlist, unmapped=unmapped))
    old = store.playlist_files(spec.name)
    m3u.write_after(
        targets,
        texts,
        lambda: store.replace_playlists(spec.name, playlists, [str(t) for t in targets], durations),
    )
    folder = Path(out_dir).resolve()
    for stale in set(old) - {str(t) for t in targets}:
        stale_path = Path(stale)
        if stale_path.parent == folder and stale_path.suffix == ".m3u8":
            stale_path.unlink(missing_ok=True)
    for playlist in made:
        log.info("%s: %d tracks (%s)", playlist.name, len(playlist.paths), playlist.title)
        if playlist.unmapped:
            log.warning(
                "%s: %d tracks under no --path-map prefix, left out of the file: %s",
                playlist.name,
                len(playlist.unmapped),
                ", ".join(playlist.unmapped[:5]) + (", ..." if len(playlist.unmapped) > 5 else ""),
            )
    return made


def _on_device(
    entries: list[m3u.Entry], path_map: PathMap | None
) -> tuple[list[m3u.Entry], tuple[str, ...]]:
    """``entries`` with their paths mapped, and the paths no mapping covers (left out)."""
    if not path_map:
        return entries, ()
    kept, unmapped = [], []
    for entry in entries:
        target = path_map.apply(entry.path)
        if target is None:
            unmapped.append(entry.path)
        else:
            kept.append(dataclasses.replace(entry, path=target))
    return kept, tuple(unmapped)


@dataclass(frozen=True)
class PlaylistFile:
    """A playlists YAML file: its entries, and the path map its files are written with."""

    specs: list[PlaylistSpec]
    path_map: PathMap = field(default_factory=PathMap)


def load_file(path: str | os.PathLike[str]) -> PlaylistFile:
    """The playlists of a YAML file: ``playlists:``, a list of entries, and an optional
    ``path_map:`` (``{FROM: TO}`` or a list of ``FROM=TO``); see the README."""
    import yaml

    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PlaylistError(f"{path}: {exc}") from exc
    entries = document.get("playlists") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise PlaylistError(f"{path}: expected a list under 'playlists:'")
    assert isinstance(document, dict)
    if unknown := sorted(set(document) - {"playlists", "path_map"}):
        raise PlaylistError(f"{path}: unknown keys {unknown}")
    specs = [PlaylistSpec.from_dict(e) for e in entries]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise PlaylistError(f"{path}: playlist names repeat: {sorted(names)}")
    mapping: Any = document.get("path_map")
    try:
        return PlaylistFile(specs, PathMap.parse(mapping))
    except PlaylistError as exc:
        raise PlaylistError(f"{path}: {exc}") from exc


def playlists_to_make(
    config: str | os.PathLike[str] | None = None,
    entries: Sequence[dict[str, Any]] = (),
    path_map: Sequence[str] = (),
) -> PlaylistFile:
    """What a run makes: the playlists of the YAML file ``config`` and then ``entries``
    (neither: :data:`DEFAULT_SPECS`), written with the file's path map and then
    ``path_map``'s ``FROM=TO`` entries."""
    file = load_file(config) if config else PlaylistFile([])
    specs = [*file.specs, *map(PlaylistSpec.from_dict, entries)]
    if not specs:
        specs = [PlaylistSpec.from_dict(dict(s)) for s in DEFAULT_SPECS]
    if len({s.name for s in specs}) != len(specs):
        raise PlaylistError("playlist names repeat between the file and the given playlists")
    return PlaylistFile(specs, PathMap.parse([*file.path_map.entries(), *path_map]))
