"""Serve the analyze-library deployments from this process, for people without a work pool.

    .venv/bin/python deployments/serve.py /path/to/music [--db playlista.duckdb]

Serves ``analyze-library/nightly`` (incremental, every night at 02:30 UTC) and
``analyze-library/full-rescan`` (on demand), the same two deployments ``prefect.yaml``
declares; trigger runs from the UI or with ``prefect deployment run``.
"""

from __future__ import annotations

import argparse
import os

from prefect import serve

from flows.analyze_library import analyze_library

NIGHTLY_CRON = "30 2 * * *"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+")
    parser.add_argument("--db", default="playlista.duckdb")
    args = parser.parse_args()
    params = {"roots": [os.path.abspath(r) for r in args.roots], "db": os.path.abspath(args.db)}
    serve(
        analyze_library.to_deployment(
            name="nightly", cron=NIGHTLY_CRON, parameters=params, concurrency_limit=1
        ),
        analyze_library.to_deployment(
            name="full-rescan", parameters={**params, "full_rescan": True}, concurrency_limit=1
        ),
    )


if __name__ == "__main__":
    main()
