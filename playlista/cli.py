"""``playlista``: analyse a library, list failures, query the database."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from playlista.errors import PlaylistaError
from playlista.settings import PREFECT_ENVIRONMENT


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    for name, value in PREFECT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    try:
        return int(args.run(args))
    except PlaylistaError as exc:
        print(f"playlista: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    from playlista.settings import Settings

    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="playlista",
        description="Analyse a local music library into DuckDB with Prefect and Dask.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    analyze = sub.add_parser("analyze", help="analyse new and changed files under ROOTs")
    analyze.add_argument("roots", nargs="+", metavar="ROOT", help="folder of music")
    analyze.add_argument("--db", default=str(defaults.db), help="DuckDB file (%(default)s)")
    analyze.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="files per task (%(default)s)"
    )
    analyze.add_argument(
        "--workers",
        type=int,
        default=defaults.workers,
        help="local worker processes (default: one per core)",
    )
    analyze.add_argument(
        "--max-workers",
        type=int,
        default=defaults.max_workers,
        help="scale the local cluster by load up to this many workers",
    )
    analyze.add_argument(
        "--min-workers",
        type=int,
        default=defaults.min_workers,
        help="with --max-workers: the fewest workers kept (default 1)",
    )
    analyze.add_argument(
        "--dask-address",
        default=defaults.dask_address,
        help="scheduler of an existing Dask cluster (default: start one)",
    )
    analyze.add_argument(
        "--full-rescan", action="store_true", help="analyse every file again, changed or not"
    )
    analyze.add_argument(
        "--retry-failed",
        action="store_true",
        help="try again files that failed permanently and have not changed",
    )
    analyze.add_argument("--follow-symlinks", action="store_true", help="follow symbolic links")
    analyze.add_argument("--verbose", action="store_true", help="show every log line")
    analyze.set_defaults(run=_analyze)

    failures = sub.add_parser("failures", help="list files that could not be analysed")
    failures.add_argument("--db", default=str(defaults.db), help="DuckDB file (%(default)s)")
    failures.set_defaults(run=_failures)

    similar = sub.add_parser("similar", help="the tracks most like one track, by MusiCNN embedding")
    similar.add_argument("path", help="an analysed file")
    similar.add_argument("-n", type=int, default=10, help="how many (%(default)s)")
    similar.add_argument(
        "--model",
        default="MSD_musicnn",
        choices=("MSD_musicnn", "MTT_musicnn"),
        help="whose embedding (%(default)s)",
    )
    similar.add_argument("--db", default=str(defaults.db), help="DuckDB file (%(default)s)")
    similar.set_defaults(run=_similar)

    sql = sub.add_parser("sql", help="run one SQL query against the database, read-only")
    sql.add_argument("query", help='e.g. "SELECT title, bpm FROM library LIMIT 5"')
    sql.add_argument("--db", default=str(defaults.db), help="DuckDB file (%(default)s)")
    sql.set_defaults(run=_sql)
    return parser


def _analyze(args: argparse.Namespace) -> int:
    if not args.verbose:
        # The progress bar says what the per-task log lines would; they still reach the API.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    from flows.analyze_library import analyze_library
    from playlista.store import connect
    from playlista.store.lock import held

    if not held(args.db):
        # Not another run (that one the flow waits for): a person's session, say. Refuse
        # here, before any server or cluster starts.
        connect(args.db).close()
    summary = analyze_library(
        roots=args.roots,
        db=args.db,
        batch_size=args.batch_size,
        workers=args.workers,
        min_workers=args.min_workers,
        max_workers=args.max_workers,
        dask_address=args.dask_address,
        full_rescan=args.full_rescan,
        retry_failed=args.retry_failed,
        follow_symlinks=args.follow_symlinks,
        show_progress=True,
    )
    _print_summary(summary)
    return 0


def _print_summary(summary: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    from playlista.store.db import RUN_COUNTERS

    table = Table(title=f"playlista: {summary['db']}", show_header=False)
    for name in RUN_COUNTERS:
        table.add_row(name.replace("_", " "), str(summary[name]))
    audio = float(summary["audio_seconds"])  # type: ignore[arg-type]
    wall = float(summary["wall_seconds"])  # type: ignore[arg-type]
    table.add_row("audio analysed", f"{audio / 3600:.2f} h")
    table.add_row("wall time", f"{wall:.1f} s")
    table.add_row(
        "throughput",
        f"{int(summary['analyzed']) / wall:.2f} tracks/s"  # type: ignore[call-overload]
        if wall
        else "-",
    )
    Console().print(table)
    if summary["failed"]:
        print(f"see the failures with: playlista failures --db {summary['db']}")


def _failures(args: argparse.Namespace) -> int:
    from playlista.store import connect
    from playlista.store.db import failure_rows

    rows = failure_rows(connect(args.db, read_only=True))
    for path, error_class, message, retryable, attempts, _last in rows:
        kind = "transient" if retryable else "permanent"
        print(f"{error_class}\t{kind}\t{attempts}\t{path}\t{message}")
    print(f"{len(rows)} failure(s)", file=sys.stderr)
    return 0


def _similar(args: argparse.Namespace) -> int:
    from playlista.store import connect
    from playlista.store.db import similar_rows

    try:
        rows = similar_rows(
            connect(args.db, read_only=True), os.path.abspath(args.path), n=args.n, model=args.model
        )
    except LookupError as exc:
        print(f"playlista: {exc.args[0]}", file=sys.stderr)
        return 1
    for path, title, artist, similarity in rows:
        name = " - ".join(x for x in (artist, title) if x) or os.path.basename(path)
        print(f"{similarity:.3f}\t{name}\t{path}")
    return 0


def _sql(args: argparse.Namespace) -> int:
    from playlista.store import connect

    con = connect(args.db, read_only=True)
    print(con.sql(args.query))
    return 0


if __name__ == "__main__":
    sys.exit(main())
