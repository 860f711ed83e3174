"""What the subcommands share: the parser's one-line usage errors, the settings, checks."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

from playlista.errors import PlaylistaError


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line: what is wrong, and where the usage is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def count(text: str) -> int:
    """A whole number of at least 1, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is less than 1")
    return value


def defaults() -> Any:
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


def quiet_prefect(verbose: bool) -> None:
    """Prefect's own console lines only with ``--verbose``: the command says what matters.

    Every line still reaches the Prefect API; playlista's errors are printed as one line,
    and a bug raises with its traceback.
    """
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def output(path: str, *, folder: bool, option: str) -> None:
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
