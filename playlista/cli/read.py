"""The read-only subcommands: failures, similar, sql, export and report."""

from __future__ import annotations

import argparse
import os
import sys

from playlista.cli.common import count, output
from playlista.errors import PlaylistaError


def add_queries(sub: argparse._SubParsersAction, db: object) -> None:
    """``failures``, ``similar`` and ``sql``."""
    failures = sub.add_parser("failures", help="list files that could not be analysed")
    failures.add_argument("--db", default=str(db), help="DuckDB file (%(default)s)")
    failures.set_defaults(run=_failures)

    similar = sub.add_parser("similar", help="the tracks most like one track, by MusiCNN embedding")
    similar.add_argument("path", help="an analysed file")
    similar.add_argument("-n", type=count, default=10, help="how many (%(default)s)")
    similar.add_argument(
        "--model",
        default="MSD_musicnn",
        choices=("MSD_musicnn", "MTT_musicnn"),
        help="whose embedding (%(default)s)",
    )
    similar.add_argument("--db", default=str(db), help="DuckDB file (%(default)s)")
    similar.set_defaults(run=_similar)

    sql = sub.add_parser("sql", help="run one SQL query against the database, read-only")
    sql.add_argument("query", help='e.g. "SELECT title, bpm FROM library LIMIT 5"')
    sql.add_argument("--db", default=str(db), help="DuckDB file (%(default)s)")
    sql.set_defaults(run=_sql)


def add_outputs(sub: argparse._SubParsersAction, db: object) -> None:
    """``export`` and ``report``."""
    export = sub.add_parser("export", help="write the views as Parquet files for other tools")
    export.add_argument("--parquet", required=True, metavar="DIR", help="folder to write to")
    export.add_argument("--db", default=str(db), help="DuckDB file (%(default)s)")
    export.set_defaults(run=_export)

    report = sub.add_parser("report", help="write the library report, one HTML page of plots")
    report.add_argument(
        "--out", default="library-report.html", help="HTML file to write (%(default)s)"
    )
    report.add_argument("--db", default=str(db), help="DuckDB file (%(default)s)")
    report.set_defaults(run=_report)


def _failures(args: argparse.Namespace) -> int:
    from playlista.store import Reader

    with Reader.open(args.db) as reader:
        rows = reader.failures()
    for path, error_class, message, retryable, attempts, _last, kept in rows:
        kind = "transient" if retryable else "permanent"
        if kept is not None:
            message += f" (the library keeps its analysis of {kept:%Y-%m-%d %H:%M})"
        print(f"{error_class}\t{kind}\t{attempts}\t{path}\t{message}")
    print(f"{len(rows)} failure(s)", file=sys.stderr)
    return 0


def _similar(args: argparse.Namespace) -> int:
    from playlista.store import Reader

    try:
        with Reader.open(args.db) as reader:
            rows = reader.similar(os.path.abspath(args.path), n=args.n, model=args.model)
    except LookupError as exc:
        raise PlaylistaError(
            f'{exc.args[0]}; see the analysed paths with `playlista sql "SELECT path FROM library"`'
        ) from None
    for path, title, artist, similarity in rows:
        name = " - ".join(x for x in (artist, title) if x) or os.path.basename(path)
        print(f"{similarity:.3f}\t{name}\t{path}")
    return 0


def _sql(args: argparse.Namespace) -> int:
    from playlista.errors import QueryError
    from playlista.store import Reader

    try:
        with Reader.open(args.db) as reader:
            text = reader.query(args.query)
    except QueryError as exc:
        first = exc.message
        if "read-only mode" in first:
            raise PlaylistaError(
                f"sql runs read-only queries ({first}); change the database with a DuckDB "
                "client while no run is writing it"
            ) from None
        raise PlaylistaError(
            f"the query failed: {first}; the tables and views are in the README's Schema"
        ) from None
    if text:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


def _export(args: argparse.Namespace) -> int:
    from playlista.store import Reader

    output(args.parquet, folder=True, option="--parquet")
    with Reader.open(args.db) as reader:
        written = reader.export_parquet(args.parquet)
    for path in written:
        print(path)
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from playlista.report import render_report
    from playlista.store import Reader

    output(args.out, folder=False, option="--out")
    with Reader.open(args.db) as reader:
        data = reader.report_data()
    page = render_report(data)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(out.resolve())
    return 0
