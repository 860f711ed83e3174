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

from playlista.checkout import on_path
from playlista.cli import analyze, playlist, read
from playlista.cli.common import Parser, defaults
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


def _parser() -> argparse.ArgumentParser:
    settings = defaults()
    parser = Parser(
        prog="playlista",
        description="Analyse a local music library into DuckDB with Prefect and Dask.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    analyze.add_parser(sub, settings)
    read.add_queries(sub, settings.db)
    playlist.add_parser(sub, settings)
    read.add_outputs(sub, settings.db)
    return parser


if __name__ == "__main__":
    sys.exit(main())
