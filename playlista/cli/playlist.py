"""``playlista playlist``: make playlists with the generate-playlists flow, or list them."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from playlista.cli.common import count, output, quiet_prefect
from playlista.errors import PlaylistaError


def add_parser(sub: argparse._SubParsersAction, settings: Any) -> None:
    playlist = sub.add_parser(
        "playlist", help="make playlists (M3U8 files and database rows) from the library"
    )
    methods = playlist.add_subparsers(required=True, metavar="METHOD")

    def method(name: str, help: str) -> argparse.ArgumentParser:
        p = methods.add_parser(name, help=help)
        if name not in ("run", "list"):
            p.add_argument("name", help="playlist name; the file is OUT/NAME.m3u8")
        p.add_argument("--db", default=str(settings.db), help="DuckDB file (%(default)s)")
        if name != "list":
            p.add_argument(
                "--out", default=str(settings.playlist_dir), help="folder of the M3U8 files"
            )
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
        p.set_defaults(run=run, method=name)
        return p

    from_file = method("run", "every playlist of a YAML file, then the library report")
    from_file.add_argument("config", help="YAML file with a list under 'playlists:'")
    rules = method("rules", "tracks matching a filter")
    rules.add_argument("--where", required=True, help='e.g. "bpm BETWEEN 120 AND 130"')
    rules.add_argument("--order-by", help='a library column, e.g. "bpm" or "energy desc"')
    rules.add_argument("-n", "--limit", type=count, help="at most this many tracks")
    similar = method("similar", "the tracks nearest some seed tracks, artists spaced out")
    similar.add_argument("seeds", nargs="+", metavar="SEED", help="analysed file(s)")
    similar.add_argument("-n", "--limit", type=count, default=25, help="tracks (%(default)s)")
    path = method("path", "a smooth chain from track A to track B")
    path.add_argument("start", metavar="A")
    path.add_argument("end", metavar="B")
    path.add_argument("-n", "--limit", type=count, default=10, help="tracks, A and B included")
    harmonic = method("harmonic", "a set ordered for mixing: Camelot neighbours, close BPM")
    harmonic.add_argument("--where", help="which tracks (default: all)")
    harmonic.add_argument("--start", help="the first track (default: the slowest)")
    harmonic.add_argument("-n", "--limit", type=count, help="at most this many tracks")
    clusters = method("clusters", "k-means groups, each a playlist NAME-1, NAME-2, ...")
    clusters.add_argument("-k", type=count, help="how many (default: about sqrt(tracks/2))")
    clusters.add_argument("--where", help="which tracks (default: all)")
    for p in (similar, path, clusters):
        p.add_argument("--model", default="MSD_musicnn", choices=("MSD_musicnn", "MTT_musicnn"))
    method("list", "the playlists stored in the database")


def run(args: argparse.Namespace) -> int:
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
    output(args.out, folder=True, option="--out")
    _check_named_tracks(args.db, specs)
    quiet_prefect(verbose=False)
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
