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

from playlista.records import Failure, FileStat, UnlistedFolder
from playlista.scan import fingerprint
from playlista.store.arrow import RUN_COUNTERS

log = logging.getLogger(__name__)

_BATCH_ROWS = 50_000

# A file whose size and mtime match is unchanged. Its failure, when it has one, decides: a
# transient one is retried, a permanent one waits for a change (or --retry-failed), and the
# analysis it may still have from before stays as it is. Without a failure, an analysis of
# another analyser version is outdated and made again, and one whose MusiCNN rows are stale
# or missing gets MusiCNN alone again.
_CLASSIFY = """
SELECT s.path, s.size, s.mtime_ns,
    CASE
        WHEN f.path IS NULL THEN 'new'
        WHEN f.size <> s.size OR f.mtime_ns <> s.mtime_ns THEN
            CASE WHEN f.status = 'deleted' THEN 'new' ELSE 'changed' END
        WHEN e.path IS NOT NULL AND (e.retryable OR $retry_failed) THEN 'retried'
        WHEN e.path IS NOT NULL OR x.analyzer_version = $version THEN 'unchanged'
        ELSE 'outdated'
    END AS state,
    coalesce(f.status = 'deleted', false) AS was_deleted,
    e.path IS NOT NULL AS failed,
    coalesce(x.analyzer_version = $version, false)
      AND (m.path IS NULL OR m.models < $models OR m.oldest <> $musicnn_version) AS musicnn_stale
FROM scan AS s
LEFT JOIN files AS f USING (path)
LEFT JOIN track_features AS x USING (path)
LEFT JOIN failures AS e USING (path)
LEFT JOIN (
    SELECT path, count(*) AS models, min(musicnn_version) AS oldest
    FROM track_musicnn GROUP BY path
) AS m USING (path)
"""

# Under a scanned root, and not under a folder that could not be listed.
_UNDER_ROOTS = """
EXISTS (SELECT 1 FROM scan_roots AS r WHERE {path} = r.root OR starts_with({path}, r.prefix))
AND NOT EXISTS (SELECT 1 FROM scan_unlisted AS u
                WHERE {path} = u.path OR starts_with({path}, u.path || '/'))
"""

_MISSING = f"""
SELECT f.path, f.size, f.fingerprint
FROM files AS f
WHERE f.status = 'present'
  AND {_UNDER_ROOTS.format(path="f.path")}
  AND NOT EXISTS (SELECT 1 FROM scan AS s WHERE s.path = f.path)
"""

# Failures that discovery itself finds (a name that cannot be stored, a folder that cannot be
# listed) under the scanned roots, as recorded so far.
_SCAN_FAILURES = """
SELECT e.path FROM failures AS e
WHERE e.error_class IN ('invalid_name', 'unlistable')
  AND EXISTS (SELECT 1 FROM scan_roots AS r
              WHERE e.path = r.root OR starts_with(e.path, r.prefix))
"""


@dataclass
class Plan:
    """What to do with one scan. ``moves`` pairs an old path with the file now holding it.

    ``to_analyze`` needs everything computed; ``to_refresh`` is unchanged and analysed, and
    needs only MusiCNN again (its version was bumped, or it was analysed without it).
    ``unstorable`` and ``unlisted`` are failures discovery found that are not recorded yet;
    ``resolved`` are recorded ones it no longer finds (the file was renamed, the folder can
    be listed again).
    """

    to_analyze: list[FileStat] = field(default_factory=list)
    to_refresh: list[FileStat] = field(default_factory=list)
    moves: list[tuple[str, FileStat]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unstorable: list[Failure] = field(default_factory=list)
    unlisted: list[Failure] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def make_plan(
    con: duckdb.DuckDBPyConnection,
    scan: Iterable[FileStat | UnlistedFolder],
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
    unlisted: list[UnlistedFolder] = []
    _load_scan(con, scan, roots, skipped=plan.skipped, unlisted=unlisted)
    # What planning counts; analysis adds the rest.
    counts = dict.fromkeys((k for k in RUN_COUNTERS if k not in ("analyzed", "failed")), 0)
    plan.counts = counts
    new: list[FileStat] = []
    params = {
        "version": analyzer_version,
        "retry_failed": retry_failed,
        "musicnn_version": musicnn_version,
        "models": musicnn_models,
    }
    rows = con.execute(_CLASSIFY, params).fetchall()
    for path, size, mtime_ns, state, was_deleted, failed, musicnn_stale in rows:
        counts["files_seen"] += 1
        stat = FileStat(path, size, mtime_ns)
        if was_deleted and state in ("unchanged", "retried", "outdated"):
            plan.restored.append(path)
        if full_rescan:
            counts[{"retried": "changed", "outdated": "changed"}.get(state, state)] += 1
            plan.to_analyze.append(stat)
        elif state == "new":
            new.append(stat)
        elif state == "unchanged":
            counts["unchanged"] += 1
            if musicnn_stale and not failed:
                counts["refreshed"] += 1
                plan.to_refresh.append(stat)
        else:
            counts[state] += 1
            (plan.to_refresh if musicnn_stale else plan.to_analyze).append(stat)
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
    _reconcile_scan_failures(con, plan, unlisted)
    for table in ("scan", "scan_roots", "scan_unlisted"):
        con.execute(f"DROP TABLE {table}")
    return plan


def _reconcile_scan_failures(
    con: duckdb.DuckDBPyConnection, plan: Plan, unlisted: list[UnlistedFolder]
) -> None:
    """Record what discovery found wrong once, and forget it once it is found no more.

    Nothing is attempted on such a path, so a run that finds it again adds no attempt.
    """
    recorded = {path for (path,) in con.execute(_SCAN_FAILURES).fetchall()}
    found = {*plan.skipped, *(u.path for u in unlisted)}
    plan.unstorable = [_unstorable(name) for name in plan.skipped if name not in recorded]
    plan.unlisted = [_unlistable(u) for u in unlisted if u.path not in recorded]
    plan.resolved = sorted(recorded - found)
    plan.counts["unlisted"] = len(unlisted)


def _load_scan(
    con: duckdb.DuckDBPyConnection,
    scan: Iterable[FileStat | UnlistedFolder],
    roots: Sequence[str],
    *,
    skipped: list[str],
    unlisted: list[UnlistedFolder],
) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE scan (path VARCHAR, size BIGINT, mtime_ns BIGINT)")
    chunk: list[FileStat] = []
    for stat in scan:
        if isinstance(stat, UnlistedFolder):
            if _storable(stat.path):  # one that is not is listed as its parent's entry
                unlisted.append(stat)
            continue
        if not _storable(stat.path):
            skipped.append(os.fsencode(stat.path).decode("utf-8", "backslashreplace"))
            log.warning("skipped %s: its name is not valid UTF-8", skipped[-1])
            continue
        chunk.append(stat)
        if len(chunk) >= _BATCH_ROWS:
            _append_scan(con, chunk)
            chunk = []
    _append_scan(con, chunk)
    # A root and the prefix of the paths under it: "/music" and "/music/", "/" and "/".
    con.execute("CREATE OR REPLACE TEMP TABLE scan_roots (root VARCHAR, prefix VARCHAR)")
    tops = [os.path.abspath(r).rstrip("/") for r in roots]
    con.executemany("INSERT INTO scan_roots VALUES (?, ?)", [[t or "/", t + "/"] for t in tops])
    con.execute("CREATE OR REPLACE TEMP TABLE scan_unlisted (path VARCHAR)")
    if unlisted:
        con.executemany("INSERT INTO scan_unlisted VALUES (?)", [[u.path] for u in unlisted])


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


def _unlistable(folder: UnlistedFolder) -> Failure:
    """A failure row for a folder discovery could not list; its files keep their status."""
    return Failure(
        path=folder.path,
        size=None,
        mtime_ns=None,
        error_class="unlistable",
        message=f"cannot list this folder ({folder.reason}); the files under it keep their "
        "status until it can be listed",
        retryable=True,
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
