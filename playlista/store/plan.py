"""Decide, against the database, what a scan of the library means: new, changed, moved, gone.

Everything is compared on the stat that discovery already has (size and mtime); the only
files opened are new ones whose size equals that of a missing file, to read the 128 KiB
fingerprint that tells a move from a coincidence.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from playlista.records import Failure, FileStat
from playlista.scan import fingerprint

log = logging.getLogger(__name__)

_BATCH_ROWS = 50_000

_CLASSIFY = """
SELECT s.path, s.size, s.mtime_ns,
    CASE
        WHEN f.path IS NULL THEN 'new'
        WHEN f.size <> s.size OR f.mtime_ns <> s.mtime_ns THEN
            CASE WHEN f.status = 'deleted' THEN 'new' ELSE 'changed' END
        WHEN x.analyzer_version = $version
          OR (x.path IS NULL AND e.path IS NOT NULL AND NOT e.retryable AND NOT $retry_failed) THEN
            CASE WHEN f.status = 'deleted' THEN 'restored' ELSE 'unchanged' END
        ELSE 'retried'
    END AS state,
    x.path IS NOT NULL AND (m.path IS NULL OR m.models < $models OR m.oldest <> $musicnn_version)
        AS musicnn_stale
FROM scan AS s
LEFT JOIN files AS f USING (path)
LEFT JOIN track_features AS x USING (path)
LEFT JOIN failures AS e USING (path)
LEFT JOIN (
    SELECT path, count(*) AS models, min(musicnn_version) AS oldest
    FROM track_musicnn GROUP BY path
) AS m USING (path)
"""

_MISSING = """
SELECT f.path, f.size, f.fingerprint
FROM files AS f
WHERE f.status = 'present'
  AND EXISTS (SELECT 1 FROM scan_roots AS r
              WHERE f.path = r.root OR starts_with(f.path, r.root || '/'))
  AND NOT EXISTS (SELECT 1 FROM scan AS s WHERE s.path = f.path)
"""


@dataclass
class Plan:
    """What to do with one scan. ``moves`` pairs an old path with the file now holding it.

    ``to_analyze`` needs everything computed; ``to_refresh`` is unchanged and analysed, and
    needs only MusiCNN again (its version was bumped, or it was analysed without it).
    """

    to_analyze: list[FileStat] = field(default_factory=list)
    to_refresh: list[FileStat] = field(default_factory=list)
    moves: list[tuple[str, FileStat]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unstorable: list[Failure] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def make_plan(
    con: duckdb.DuckDBPyConnection,
    scan: Iterable[FileStat],
    *,
    roots: Sequence[str],
    analyzer_version: int,
    musicnn_version: int,
    musicnn_models: int,
    full_rescan: bool = False,
    retry_failed: bool = False,
) -> Plan:
    """Compare ``scan`` (every file now under ``roots``) with what the database holds."""
    plan = Plan()
    _load_scan(con, scan, roots, skipped=plan.skipped)
    plan.unstorable = [_unstorable(name) for name in plan.skipped]
    counts = dict.fromkeys(
        ("files_seen", "new", "changed", "unchanged", "moved", "deleted", "retried", "refreshed"),
        0,
    )
    plan.counts = counts
    new: list[FileStat] = []
    params = {
        "version": analyzer_version,
        "retry_failed": retry_failed,
        "musicnn_version": musicnn_version,
        "models": musicnn_models,
    }
    rows = con.execute(_CLASSIFY, params).fetchall()
    for path, size, mtime_ns, state, musicnn_stale in rows:
        counts["files_seen"] += 1
        stat = FileStat(path, size, mtime_ns)
        if full_rescan:
            counts[{"retried": "changed", "restored": "unchanged"}.get(state, state)] += 1
            plan.to_analyze.append(stat)
        elif state == "new":
            new.append(stat)
        elif state in ("unchanged", "restored"):
            counts["unchanged"] += 1
            if state == "restored":
                plan.restored.append(path)
            if musicnn_stale:
                counts["refreshed"] += 1
                plan.to_refresh.append(stat)
        else:
            counts[state] += 1
            plan.to_analyze.append(stat)
    missing = con.execute(_MISSING).fetchall()
    if full_rescan:
        plan.deleted = [path for path, _, _ in missing]
    else:
        plan.moves, unmatched = _match_moves(new, missing)
        plan.to_analyze.extend(unmatched)
        moved_from = {old for old, _ in plan.moves}
        plan.deleted = [path for path, _, _ in missing if path not in moved_from]
        counts["new"] = len(unmatched)
        counts["moved"] = len(plan.moves)
    counts["deleted"] = len(plan.deleted)
    con.execute("DROP TABLE scan")
    con.execute("DROP TABLE scan_roots")
    return plan


def _load_scan(
    con: duckdb.DuckDBPyConnection,
    scan: Iterable[FileStat],
    roots: Sequence[str],
    *,
    skipped: list[str],
) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE scan (path VARCHAR, size BIGINT, mtime_ns BIGINT)")
    chunk: list[FileStat] = []
    for stat in scan:
        if not _storable(stat.path):
            skipped.append(os.fsencode(stat.path).decode("utf-8", "backslashreplace"))
            log.warning("skipped %s: its name is not valid UTF-8", skipped[-1])
            continue
        chunk.append(stat)
        if len(chunk) >= _BATCH_ROWS:
            _append_scan(con, chunk)
            chunk = []
    _append_scan(con, chunk)
    con.execute("CREATE OR REPLACE TEMP TABLE scan_roots (root VARCHAR)")
    con.executemany(
        "INSERT INTO scan_roots VALUES (?)",
        [[os.path.abspath(r).rstrip("/") or "/"] for r in roots],
    )


def _unstorable(name: str) -> Failure:
    """A failure row for a file whose name cannot be a key, under its escaped name."""
    return Failure(
        path=name,
        size=None,
        mtime_ns=None,
        error_class="invalid_name",
        message="the file name is not valid UTF-8 (shown with \\x escapes); rename the file "
        "to have it analysed",
        retryable=False,
        worker="",
        failed_at=datetime.now(UTC),
    )


def _storable(path: str) -> bool:
    """DuckDB text is UTF-8: a name that is not (bytes kept as surrogates) cannot be a key."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _append_scan(con: duckdb.DuckDBPyConnection, chunk: list[FileStat]) -> None:
    if not chunk:
        return
    table = pa.table(
        {
            "path": [s.path for s in chunk],
            "size": pa.array([s.size for s in chunk], pa.int64()),
            "mtime_ns": pa.array([s.mtime_ns for s in chunk], pa.int64()),
        }
    )
    con.register("scan_chunk", table)
    con.execute("INSERT INTO scan SELECT DISTINCT ON (path) * FROM scan_chunk")
    con.unregister("scan_chunk")


def _match_moves(
    new: list[FileStat], missing: list[tuple[str, int, str | None]]
) -> tuple[list[tuple[str, FileStat]], list[FileStat]]:
    """Pair new files with missing ones of the same size and fingerprint, one to one."""
    by_key: dict[tuple[int, str], list[str]] = {}
    sizes = set()
    for path, size, digest in missing:
        if digest is not None:
            by_key.setdefault((size, digest), []).append(path)
            sizes.add(size)
    moves, unmatched = [], []
    for stat in new:
        old = None
        if stat.size in sizes:
            try:
                digest = fingerprint(stat.path, size=stat.size)
            except OSError as exc:
                log.warning("cannot fingerprint %s: %s", stat.path, exc)
            else:
                candidates = by_key.get((stat.size, digest))
                old = candidates.pop(0) if candidates else None
        if old is None:
            unmatched.append(stat)
        else:
            moves.append((old, stat))
    return moves, unmatched
