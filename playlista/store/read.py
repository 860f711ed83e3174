"""Reading the database: tracks for playlists, failures, similar tracks, the report's figures,
the views as Parquet, and a user's own read-only query."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import duckdb
import numpy as np

from playlista.errors import QueryError
from playlista.playlists.model import PlaylistSpec, Tracks
from playlista.store.file import connect
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


class Reader:
    """playlista's database, read: what the CLI, the playlists and the report ask of it."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str) -> None:
        self.con = con
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Self:
        """Open the database at ``path`` read-only; it must exist."""
        return cls(connect(path, read_only=True), os.fspath(path))

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def failures(self) -> list[tuple[Any, ...]]:
        """``(path, error_class, message, retryable, attempts, last_failed_at,
        kept_analysis_at)`` by class, path."""
        return self.con.execute(
            "SELECT path, error_class, message, retryable, attempts, last_failed_at, "
            "kept_analysis_at FROM failures ORDER BY error_class, path"
        ).fetchall()

    def similar(self, path: str, *, n: int, model: str) -> list[tuple[Any, ...]]:
        """``(path, title, artist, similarity)`` of the ``n`` tracks most like ``path``.

        Raises ``LookupError`` when ``path`` has no embedding from ``model``.
        """
        found = self.con.execute(
            "SELECT count(*) FROM track_musicnn WHERE path = ? AND model = ?", [path, model]
        ).fetchone()
        if not found or not found[0]:
            raise LookupError(f"{path} has no {model} embedding in the database")
        return self.con.execute(
            "SELECT path, title, artist, similarity "
            "FROM similar_tracks($path, n := $n, embedding_model := $model)",
            {"path": path, "n": n, "model": model},
        ).fetchall()

    def tracks(self, spec: PlaylistSpec) -> Tracks:
        """The candidate tracks for ``spec``: ``library`` rows matching its ``where`` (its
        seeds and path ends always in), in its ``order_by`` order, with their ``spec.model``
        embedding."""
        where = parse_filter(spec.where) if spec.where else Filter("true")
        params: dict[str, Any] = {**where.params, "model": spec.model}
        keep = [p for p in (*spec.seeds, spec.start, spec.end) if p]
        include = ""
        for i, path in enumerate(keep):  # exactly, or as the end of a path (`fof/a.ogg`)
            params[f"k{i}"] = path
            params[f"s{i}"] = "%/" + path.lstrip("/").replace("\\", "\\\\").replace("%", "\\%")
            include += f" OR path = $k{i} OR path LIKE $s{i} ESCAPE '\\'"
        rows = self.con.execute(
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

    def playlist_files(self, spec: str) -> list[str]:
        """The files of the playlists a spec made last time."""
        rows = self.con.execute(
            "SELECT file FROM playlists WHERE spec = ? AND file IS NOT NULL", [spec]
        ).fetchall()
        return [f for (f,) in rows]

    def playlists(self) -> list[tuple[Any, ...]]:
        """``(name, method, tracks, duration_s, title, file, created_at)`` of stored playlists."""
        return self.con.execute(
            "SELECT name, method, tracks, duration_s, title, file, created_at "
            "FROM playlists ORDER BY spec, name"
        ).fetchall()

    def export_parquet(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """Write each view of :data:`EXPORTED` to ``out_dir/<view>.parquet`` (temp, then
        rename)."""
        import pyarrow.parquet as pq

        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for view in EXPORTED:  # names from the constant above, never from input
            table = self.con.execute(f"SELECT * FROM {view}").to_arrow_table()
            path = folder / f"{view}.parquet"
            tmp = folder / f".{view}.parquet.tmp"
            pq.write_table(table, tmp)
            os.replace(tmp, path)
            written.append(path)
        return written

    def report_data(self, *, model: str = "MSD_musicnn") -> dict[str, Any]:
        """What the library report plots, as lists and arrays."""
        con = self.con

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
                    "SELECT camelot, count(*) FROM library WHERE camelot IS NOT NULL "
                    "GROUP BY camelot"
                ).fetchall()
            ),
            "loudness_energy": np.array(
                con.execute(
                    "SELECT loudness_lufs, energy FROM library "
                    "WHERE loudness_lufs IS NOT NULL AND energy IS NOT NULL"
                ).fetchall(),
                dtype=float,
            ).reshape(-1, 2),
            "embedding": np.array([e for e, _ in embeddings], dtype=float).reshape(
                len(embeddings), -1
            ),
            "embedding_tags": [t for _, t in embeddings],
            "failures": con.execute(
                "SELECT error_class, count(*) FROM failures GROUP BY error_class ORDER BY 2 DESC, 1"
            ).fetchall(),
            "playlists": int((con.execute("SELECT count(*) FROM playlists").fetchone() or (0,))[0]),
        }

    def query(self, sql: str) -> str:
        """The result of a user's ``sql`` as DuckDB prints it ('' when it returns none).

        Raises :class:`QueryError` with DuckDB's first line when the query fails.
        """
        try:
            result = self.con.sql(sql)
            return str(result) if result is not None else ""
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise QueryError(first, exc) from exc
