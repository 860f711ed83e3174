"""A spec and the library's tracks in, playlists out: no database, no files."""

from __future__ import annotations

import numpy as np

from playlista.errors import PlaylistError
from playlista.playlists import methods
from playlista.playlists.clusters import kmeans
from playlista.playlists.model import Playlist, PlaylistSpec, Tracks

DEFAULT_LENGTH = {"similar": 25, "path": 10}


def build(spec: PlaylistSpec, tracks: Tracks) -> list[Playlist]:
    """The playlists ``spec`` makes from ``tracks`` (one, or one per cluster).

    ``tracks`` are the candidates as the store loaded them for this spec: filtered by
    ``where`` (the seeds and ends of a path always included), in ``order_by`` order.
    """
    params = spec.parameters()
    if spec.method == "clusters":
        usable = [i for i in range(len(tracks)) if np.isfinite(tracks.embedding[i]).all()]
        clusters = kmeans(
            embedding=tracks.embedding[usable],
            features=tracks.features()[usable],
            top_tags=[tracks.top_tags[i] for i in usable],
            k=spec.k,
        )
        return [
            Playlist(
                name=f"{spec.name}-{number}",
                spec=spec.name,
                title=cluster.title,
                method="clusters",
                parameters=params,
                paths=tuple(tracks.paths[usable[i]] for i in cluster.rows[: spec.limit]),
            )
            for number, cluster in enumerate(clusters, start=1)
        ]
    rows = _rows(spec, tracks)
    return [
        Playlist(
            name=spec.name,
            spec=spec.name,
            title=_title(spec, tracks),
            method=spec.method,
            parameters=params,
            paths=tuple(tracks.paths[i] for i in rows),
        )
    ]


def _rows(spec: PlaylistSpec, tracks: Tracks) -> list[int]:
    if spec.method == "rules":
        return list(range(len(tracks)))[: spec.limit]
    if spec.method == "similar":
        return methods.similar(
            embedding=tracks.embedding,
            seeds=[tracks.index_of(s) for s in spec.seeds],
            artists=tracks.artists,
            albums=tracks.albums,
            n=spec.limit or DEFAULT_LENGTH["similar"],
            artist_gap=spec.artist_gap,
            album_gap=spec.album_gap,
        )
    if spec.method == "path":
        assert spec.start and spec.end
        return methods.path(
            embedding=tracks.embedding,
            start=tracks.index_of(spec.start),
            end=tracks.index_of(spec.end),
            n=spec.limit or DEFAULT_LENGTH["path"],
        )
    if spec.method == "harmonic":
        start = tracks.index_of(spec.start) if spec.start else None
        return methods.harmonic(camelot_codes=tracks.camelot, bpm=tracks.bpm, start=start)[
            : spec.limit
        ]
    raise PlaylistError(f"unknown method {spec.method!r}")


def _title(spec: PlaylistSpec, tracks: Tracks) -> str:
    def name(path: str) -> str:
        i = tracks.index_of(path)
        return tracks.titles[i] or tracks.paths[i].rsplit("/", 1)[-1]

    if spec.method == "similar":
        return "like " + ", ".join(name(s) for s in spec.seeds)
    if spec.method == "path":
        assert spec.start and spec.end
        return f"from {name(spec.start)} to {name(spec.end)}"
    if spec.method == "harmonic":
        return f"harmonic mix{f' of {spec.where}' if spec.where else ''}"
    return spec.where or "every track"
