"""Serve the analyze-library flow from this process, for people without a work pool.

    .venv/bin/python deployments/serve.py /path/to/music [--db playlista.duckdb]

Then trigger runs from the UI or with ``prefect deployment run 'analyze-library/ad-hoc'``.
"""

from __future__ import annotations

import argparse

from flows.analyze_library import analyze_library


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+")
    parser.add_argument("--db", default="playlista.duckdb")
    args = parser.parse_args()
    analyze_library.serve(name="ad-hoc", parameters={"roots": args.roots, "db": args.db})


if __name__ == "__main__":
    main()
