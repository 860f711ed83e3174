"""``playlista analyze``: the analyze-library flow on a local or an existing Dask cluster."""

from __future__ import annotations

import argparse
import os
from typing import Any

from playlista.cli.common import count, quiet_prefect
from playlista.errors import PlaylistaError


def add_parser(sub: argparse._SubParsersAction, defaults: Any) -> None:
    analyze = sub.add_parser("analyze", help="analyse new and changed files under ROOTs")
    analyze.add_argument("roots", nargs="+", metavar="ROOT", help="folder of music")
    analyze.add_argument("--db", default=str(defaults.db), help="DuckDB file (%(default)s)")
    # None: not given here, and the flow takes PLAYLISTA_<NAME> or the built-in default.
    analyze.add_argument("--batch-size", type=count, help=f"files per task ({defaults.batch_size})")
    analyze.add_argument(
        "--workers", type=count, help="local worker processes (default: one per core)"
    )
    analyze.add_argument(
        "--max-workers",
        type=count,
        help="scale the local cluster by load up to this many workers",
    )
    analyze.add_argument(
        "--min-workers",
        type=count,
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
    analyze.add_argument(
        "--follow-symlinks",
        action="store_true",
        default=None,  # not given: PLAYLISTA_FOLLOW_SYMLINKS, or not followed
        help="follow symbolic links",
    )
    analyze.add_argument("--verbose", action="store_true", help="show every log line")
    analyze.set_defaults(run=run, parser=analyze)


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    from playlista.store.file import check_database_file

    for root in args.roots:  # before anything is written: no database, no lock file
        if not os.path.isdir(root):
            raise PlaylistaError(f"{root} is not a folder; give the folder(s) your music is in")
    check_database_file(args.db)
    if args.dask_address:
        from playlista.cluster import check_cluster

        check_cluster(args.dask_address, [os.path.abspath(r) for r in args.roots])
    quiet_prefect(args.verbose)
    from flows.analyze_library import analyze_library
    from playlista.store.file import check_free
    from playlista.store.lock import probe

    with probe(args.db) as no_run_writing:
        if no_run_writing:
            # A holder now is not a run (that one the flow waits for) but a person's
            # session, say: refuse here, before any server or cluster starts.
            check_free(args.db)
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


def _check_args(args: argparse.Namespace) -> None:
    """Options that cannot go together: a usage error, before anything starts."""
    parser = args.parser
    if args.min_workers is not None and args.max_workers is None:
        parser.error("--min-workers needs --max-workers")
    if args.min_workers is not None and args.min_workers > args.max_workers:
        parser.error(f"--min-workers {args.min_workers} is more than --max-workers")
    if args.workers is not None and args.max_workers is not None:
        parser.error("--workers is a fixed number, --max-workers a scaling one: give one")
    if args.dask_address and (args.workers or args.max_workers or args.min_workers):
        parser.error(
            "--workers, --min-workers and --max-workers size a local cluster, "
            "not one at --dask-address"
        )


def _print_summary(summary: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    from playlista.store.arrow import RUN_COUNTERS

    console = Console()
    console.print(f"playlista: {summary['db']}", soft_wrap=True)
    table = Table(show_header=False)
    for name in RUN_COUNTERS:
        if name != "unlisted" or summary[name]:
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
    console.print(table)
    if summary["staged"]:
        print(
            f"{summary['db']} was held by another process: {summary['staged']} batch(es) wait "
            f"in {summary['db']}.staged and are merged by the next run"
        )
    if summary["failed"] or summary["unlisted"]:
        print(f"see the failures with: playlista failures --db {summary['db']}")
