"""``playlista``: analyse a library, list failures, query the database.

A mistake (a bad option, a missing folder or database, an SQL error) is one line on stderr
that says what is wrong and what to do, with exit status 2 for usage errors and 1 otherwise,
and nothing is written. Anything else that goes wrong is a bug, and shows its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from playlista.checkout import on_path
from playlista.errors import FilterError, PlaylistaError
from playlista.settings import PREFECT_ENVIRONMENT


def main(argv: Sequence[str] | None = None) -> int:
    on_path()
    parser = _parser()
    args = parser.parse_args(argv)
    for name, value in PREFECT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    try:
        return int(args.run(args))
    except FilterError as exc:
        print(
            f"playlista: {exc}; see what a filter may use in the README's Playlists",
            file=sys.stderr,
        )
        return 1
    except PlaylistaError as exc:
        print(f"playlista: {exc}", file=sys.stderr)
        return 1


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line: what is wrong, and where the usage is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _count(text: str) -> int:
    """A whole number of at least 1, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is less than 1")
    return value


def _defaults() -> Any:
    """The settings, or a one-line usage error naming the environment variable that is wrong."""
    from pydantic import ValidationError

    from playlista.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = "PLAYLISTA_" + str(problem["loc"][0]).upper()
        value = os.environ.get(name, "")
        sys.stderr.write(f"playlista: {name}={value!r}: {problem['msg']}; correct it or unset it\n")
        raise SystemExit(2) from None


def _parser() -> argparse.ArgumentParser:
    defaults = _defaults()
    parser = _Parser(
        prog="playlista",
        description="Analyse a local music library into DuckDB with Prefect and Dask.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    analyze = sub.add_parser("analyze", help="analyse new and changed files under ROOTs")
    analyze.add_argument("roots", nargs="+", metavar="ROOT", help="folder of music")
    analyze.add_argument("--db", default=str(defaults.db), help="DuckDB file (%(default)s)")
    # None: not given here, and the flow takes PLAYLISTA_<NAME> or the built-in default.
    analyze.add_argument(
        "--batch-size", type=_count, help=f"files per task ({defaults.batch_size})"
    )
    analyze.add_argument(
        "--workers", type=_count, help="local worker processes (default: one per core)"
    )
    analyze.add_argument(
        "--max-workers",
        type=_count,
        help="scale the local cluster by load up to this many workers",
    )
    analyze.add_argument(
        "--min-workers",
        type=_count,
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
    analyze.set_defaults(run=_analyze, parser=analyze)

    failures = sub.add_parser("failures", help="list files that could not be analysed")
    failures.add_argument("--db", default=str(defaults.db), help="DuckDB file (%(default)s)")
    failures.set_defaults(run=_failures)

    similar = sub.add_parser("similar", help="the tracks most like one track, by MusiCNN embedding")
    similar.add_argument("path", help="an analysed file")
    similar.add_argument("-n", type=_count, default=10, help="how many (%(default)s)")
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

    _playlist_parser(sub, defaults.db)

    export = sub.add_parser("export", help="write the views as Parquet files for other tools")
    export.add_argument("--parquet", required=True, metavar="DIR", help="folder to write to")
    export.add_argument("--db", default=str(defaults.db), help="DuckDB file (%(default)s)")
    export.set_defaults(run=_export)

    report = sub.add_parser("report", help="write the library report, one HTML page of plots")
    report.add_argument(
        "--out", default="library-report.html", help="HTML file to write (%(default)s)"
    )
    report.add_argument("--db", default=str(defaults.db), help="DuckDB file (%(default)s)")
    report.set_defaults(run=_report)
    return parser


def _playlist_parser(sub: argparse._SubParsersAction, db: object) -> None:
    playlist = sub.add_parser(
        "playlist", help="make playlists (M3U8 files and database rows) from the library"
    )
    methods = playlist.add_subparsers(required=True, metavar="METHOD")

    def method(name: str, help: str) -> argparse.ArgumentParser:
        p = methods.add_parser(name, help=help)
        if name not in ("run", "list"):
            p.add_argument("name", help="playlist name; the file is OUT/NAME.m3u8")
        p.add_argument("--db", default=str(db), help="DuckDB file (%(default)s)")
        if name != "list":
            p.add_argument("--out", default="playlists", help="folder of the M3U8 files")
            p.add_argument(
                "--path-map",
                action="append",
                metavar="FROM=TO",
                help="write paths under FROM as under TO, for the device that plays them "
                "(repeatable; the longest FROM wins; tracks under none are left out)",
            )
            p.add_argument(
                "--base",
                help="write paths relative to this folder, the playlists' folder as the "
                "player sees it (default: absolute)",
            )
        p.set_defaults(run=_playlist, method=name)
        return p

    run = method("run", "every playlist of a YAML file, then the library report")
    run.add_argument("config", help="YAML file with a list under 'playlists:'")
    rules = method("rules", "tracks matching a filter")
    rules.add_argument("--where", required=True, help='e.g. "bpm BETWEEN 120 AND 130"')
    rules.add_argument("--order-by", help='a library column, e.g. "bpm" or "energy desc"')
    rules.add_argument("-n", "--limit", type=_count, help="at most this many tracks")
    similar = method("similar", "the tracks nearest some seed tracks, artists spaced out")
    similar.add_argument("seeds", nargs="+", metavar="SEED", help="analysed file(s)")
    similar.add_argument("-n", "--limit", type=_count, default=25, help="tracks (%(default)s)")
    path = method("path", "a smooth chain from track A to track B")
    path.add_argument("start", metavar="A")
    path.add_argument("end", metavar="B")
    path.add_argument("-n", "--limit", type=_count, default=10, help="tracks, A and B included")
    harmonic = method("harmonic", "a set ordered for mixing: Camelot neighbours, close BPM")
    harmonic.add_argument("--where", help="which tracks (default: all)")
    harmonic.add_argument("--start", help="the first track (default: the slowest)")
    harmonic.add_argument("-n", "--limit", type=_count, help="at most this many tracks")
    clusters = method("clusters", "k-means groups, each a playlist NAME-1, NAME-2, ...")
    clusters.add_argument("-k", type=_count, help="how many (default: about sqrt(tracks/2))")
    clusters.add_argument("--where", help="which tracks (default: all)")
    for p in (similar, path, clusters):
        p.add_argument("--model", default="MSD_musicnn", choices=("MSD_musicnn", "MTT_musicnn"))
    method("list", "the playlists stored in the database")


def _analyze(args: argparse.Namespace) -> int:
    _check_analyze_args(args)
    from playlista.store.file import check_database_file

    for root in args.roots:  # before anything is written: no database, no lock file
        if not os.path.isdir(root):
            raise PlaylistaError(f"{root} is not a folder; give the folder(s) your music is in")
    check_database_file(args.db)
    if args.dask_address:
        from playlista.cluster import check_cluster

        check_cluster(args.dask_address, [os.path.abspath(r) for r in args.roots])
    _quiet_prefect(args.verbose)
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


def _check_analyze_args(args: argparse.Namespace) -> None:
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


def _quiet_prefect(verbose: bool) -> None:
    """Prefect's own console lines only with ``--verbose``: the command says what matters.

    Every line still reaches the Prefect API; playlista's errors are printed as one line,
    and a bug raises with its traceback.
    """
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


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


def _playlist(args: argparse.Namespace) -> int:
    from playlista.playlists.generate import load_file
    from playlista.playlists.model import PlaylistSpec
    from playlista.playlists.pathmap import PathMap
    from playlista.store.file import check_database_file
    from playlista.store.where import order_clause, parse_filter

    if args.method == "list":
        return _list_playlists(args)
    PathMap.parse(args.path_map)  # refuse a malformed entry here, before any server starts
    if args.method == "run":
        specs = load_file(args.config).specs
    else:

        def track(p: str | None) -> str | None:  # a file here, or a path's end as stored
            return os.path.abspath(p) if p and os.path.exists(p) else p

        fields: dict[str, Any] = {
            "where": getattr(args, "where", None),
            "order_by": getattr(args, "order_by", None),
            "limit": getattr(args, "limit", None),
            "seeds": tuple(track(p) or p for p in getattr(args, "seeds", ())),
            "start": track(getattr(args, "start", None)),
            "end": track(getattr(args, "end", None)),
            "k": getattr(args, "k", None),
            "model": getattr(args, "model", "MSD_musicnn"),
        }
        specs = [PlaylistSpec(name=args.name, method=args.method, **fields)]
    for spec in specs:  # refuse a bad filter here, before any server starts
        if spec.where:
            parse_filter(spec.where)
        order_clause(spec.order_by)
    check_database_file(args.db, must_exist=True)  # the flow would make an empty one
    _output(args.out, folder=True, option="--out")
    _check_named_tracks(args.db, specs)
    _quiet_prefect(verbose=False)
    from flows.generate_playlists import generate_playlists

    run = args.method == "run"  # the flow reads the file itself, its path map too
    result = generate_playlists(
        db=args.db,
        out_dir=args.out,
        config=os.path.abspath(args.config) if run else None,
        playlists=None
        if run
        else [{"name": s.name, "method": s.method, **s.parameters()} for s in specs],
        base=_base(args.base, mapped=bool(args.path_map)),
        report=run,
        path_map=args.path_map,
    )
    for name, title, tracks in (row for rows in result["playlists"].values() for row in rows):
        print(f"{tracks}\t{name}\t{title}\t{os.path.join(result['out_dir'], name + '.m3u8')}")
    for name, paths in result["unmapped"].items():
        print(
            f"playlista: {name}: {len(paths)} tracks under no --path-map FROM were left out "
            f"of its file: {', '.join(paths[:3])}{', ...' if len(paths) > 3 else ''}",
            file=sys.stderr,
        )
    if result["report"]:
        print(f"report: {result['report']}")
    return 0


def _base(base: str | None, *, mapped: bool) -> str | None:
    """``--base`` as written into the files: a folder here, or, when paths are mapped, the
    playlists' folder on the device, taken as given."""
    if base is None or mapped:
        return base
    return os.path.abspath(base)


def _check_named_tracks(db: str, specs: Sequence[Any]) -> None:
    """Refuse a seed, start or end that names no analysed track, before any server starts.

    Skipped while a run writes the database: the flow waits for it, then finds the same.
    """
    from playlista.store import Reader
    from playlista.store.lock import run_writing

    named = [s for s in specs if s.seeds or s.start or s.end]
    if not named or run_writing(db):
        return
    with Reader.open(db) as reader:
        for spec in named:
            tracks = reader.tracks(spec)
            for path in (*spec.seeds, spec.start, spec.end):
                if not path:
                    continue
                try:
                    tracks.index_of(path)
                except PlaylistaError as exc:
                    raise PlaylistaError(
                        f"{exc}; give an analysed file, or the end of its path "
                        '(playlista sql "SELECT path FROM library")'
                    ) from None


def _list_playlists(args: argparse.Namespace) -> int:
    from playlista.store import Reader

    with Reader.open(args.db) as reader:
        rows = reader.playlists()
    for name, method, tracks, duration, title, file, _created in rows:
        print(f"{name}\t{method}\t{tracks}\t{duration / 60:.0f} min\t{title}\t{file}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from playlista.store import Reader

    _output(args.parquet, folder=True, option="--parquet")
    with Reader.open(args.db) as reader:
        written = reader.export_parquet(args.parquet)
    for path in written:
        print(path)
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from playlista.report import render_report
    from playlista.store import Reader

    _output(args.out, folder=False, option="--out")
    with Reader.open(args.db) as reader:
        data = reader.report_data()
    page = render_report(data)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(out.resolve())
    return 0


def _output(path: str, *, folder: bool, option: str) -> None:
    """Refuse, before anything runs, an output ``path`` that cannot be written as asked:
    a file where a folder is wanted or the reverse, or a place under a file or read-only."""
    if os.path.exists(path) and os.path.isdir(path) != folder:
        want = "a folder" if folder else "a file name"
        raise PlaylistaError(
            f"{path} is {'a file' if folder else 'a folder'}; give {option} {want}"
        )
    above = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above) or not os.access(above, os.W_OK):
        raise PlaylistaError(f"{path} cannot be written under {above}; give {option} another place")


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


if __name__ == "__main__":
    sys.exit(main())
