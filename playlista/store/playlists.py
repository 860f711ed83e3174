"""Reading tracks for playlists, storing playlists, exporting the views: the SQL side."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from playlista.playlists.model import Playlist, PlaylistSpec, Tracks
from playlista.store.where import Filter, order_clause, parse_filter

# What `playlista export` writes, one Parquet file each.
EXPORTED = (
    "library",
    "albums",
    "track_musicnn",
    "track_tag_scores",
    "failures",
    "runs",
    "playlists",
    "playlist_tracks",
)


def load_tracks(con: duckdb.DuckDBPyConnection, spec: PlaylistSpec) -> Tracks:
    """The candidate tracks for ``spec``: ``library`` rows matching its ``where`` (its seeds
    and path ends always in), in its ``order_by`` order, with their ``spec.model`` embedding."""
    where = parse_filter(spec.where) if spec.where else Filter("true")
    params: dict[str, Any] = {**where.params, "model": spec.model}
    keep = [p for p in (*spec.seeds, spec.start, spec.end) if p]
    include = ""
    for i, path in enumerate(keep):  # exactly, or as the end of a path (`fof/a.ogg`)
        params[f"k{i}"] = path
        params[f"s{i}"] = "%/" + path.lstrip("/").replace("\\", "\\\\").replace("%", "\\%")
        include += f" OR path = $k{i} OR path LIKE $s{i} ESCAPE '\\'"
    rows = con.execute(
        f"""
        WITH c AS (SELECT * FROM library WHERE ({where.sql}){include})
        SELECT c.path, c.title, c.artist, c.album, c.camelot, coalesce(c.top_tags, []),
               c.duration_s, c.bpm, c.loudness_lufs, c.energy, c.danceability, m.embedding
        FROM c
        LEFT JOIN track_musicnn AS m ON m.path = c.path AND m.model = $model
        {order_clause(spec.order_by, table="c")}
        """,
        params,
    ).fetchall()
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * 12
    width = max((len(e) for e in columns[11] if e is not None), default=200)
    embedding = np.array(
        [e if e is not None else [np.nan] * width for e in columns[11]], dtype=np.float32
    ).reshape(len(rows), width)

    def numbers(j: int) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in columns[j]], dtype=np.float64)

    return Tracks(
        paths=list(columns[0]),
        titles=list(columns[1]),
        artists=list(columns[2]),
        albums=list(columns[3]),
        camelot=list(columns[4]),
        top_tags=[list(t) for t in columns[5]],
        duration_s=numbers(6),
        bpm=numbers(7),
        loudness_lufs=numbers(8),
        energy=numbers(9),
        danceability=numbers(10),
        embedding=embedding,
    )


def spec_files(con: duckdb.DuckDBPyConnection, spec: str) -> list[str]:
    """The files of the playlists a spec made last time."""
    rows = con.execute(
        "SELECT file FROM playlists WHERE spec = ? AND file IS NOT NULL", [spec]
    ).fetchall()
    return [f for (f,) in rows]


def replace_playlists(
    con: duckdb.DuckDBPyConnection,
    spec: str,
    playlists: Sequence[Playlist],
    files: Sequence[str | None],
    durations: Sequence[float],
) -> None:
    """Replace every playlist ``spec`` made before with ``playlists``, in one transaction."""
    now = datetime.now(UTC)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "DELETE FROM playlist_tracks WHERE playlist IN "
            "(SELECT name FROM playlists WHERE spec = $spec) OR playlist IN "
            "(SELECT unnest($names))",
            {"spec": spec, "names": [p.name for p in playlists]},
        )
        con.execute(
            "DELETE FROM playlists WHERE spec = $spec OR name IN (SELECT unnest($names))",
            {"spec": spec, "names": [p.name for p in playlists]},
        )
        for playlist, file, duration in zip(playlists, files, durations, strict=True):
            con.execute(
                "INSERT INTO playlists VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    playlist.name,
                    spec,
                    playlist.title,
                    playlist.method,
                    json.dumps(playlist.parameters, sort_keys=True),
                    file,
                    len(playlist.paths),
                    duration,
                    now,
                ],
            )
            con.executemany(
                "INSERT INTO playlist_tracks VALUES (?, ?, ?)",
                [(playlist.name, i, p) for i, p in enumerate(playlist.paths, start=1)],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def playlist_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """``(name, method, tracks, duration_s, title, file, created_at)`` of stored playlists."""
    return con.execute(
        "SELECT name, method, tracks, duration_s, title, file, created_at "
        "FROM playlists ORDER BY spec, name"
    ).fetchall()


def export_parquet(con: duckdb.DuckDBPyConnection, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write each view of :data:`EXPORTED` to ``out_dir/<view>.parquet`` (temp, then rename)."""
    import pyarrow.parquet as pq

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for view in EXPORTED:  # names from the constant above, never from input
        table = con.execute(f"SELECT * FROM {view}").to_arrow_table()
        path = folder / f"{view}.parquet"
        tmp = folder / f".{view}.parquet.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        written.append(path)
    return written


def report_data(con: duckdb.DuckDBPyConnection, *, model: str = "MSD_musicnn") -> dict[str, Any]:
    """What the library report plots, as lists and arrays."""

    def column(sql: str) -> list[Any]:
        return [v for (v,) in con.execute(sql).fetchall()]

    totals = con.execute(
        "SELECT count(*), coalesce(sum(duration_s), 0) FROM library"
    ).fetchone() or (0, 0.0)
    embeddings = con.execute(
        "SELECT m.embedding, coalesce(l.top_tags[1], 'untagged') FROM library AS l "
        "JOIN track_musicnn AS m ON m.path = l.path AND m.model = ? ORDER BY l.path",
        [model],
    ).fetchall()
    return {
        "tracks": int(totals[0]),
        "hours": float(totals[1]) / 3600,
        "bpm": np.array(column("SELECT bpm FROM library WHERE bpm IS NOT NULL"), dtype=float),
        "camelot": dict(
            con.execute(
                "SELECT camelot, count(*) FROM library WHERE camelot IS NOT NULL GROUP BY camelot"
            ).fetchall()
        ),
        "loudness_energy": np.array(
            con.execute(
                "SELECT loudness_lufs, energy FROM library "
                "WHERE loudness_lufs IS NOT NULL AND energy IS NOT NULL"
            ).fetchall(),
            dtype=float,
        ).reshape(-1, 2),
        "embedding": np.array([e for e, _ in embeddings], dtype=float).reshape(len(embeddings), -1),
        "embedding_tags": [t for _, t in embeddings],
        "failures": con.execute(
            "SELECT error_class, count(*) FROM failures GROUP BY error_class ORDER BY 2 DESC, 1"
        ).fetchall(),
        "playlists": int((con.execute("SELECT count(*) FROM playlists").fetchone() or (0,))[0]),
    }
