"""Opening playlista's DuckDB file, and telling a wrong file from a busy one."""

from __future__ import annotations

import os

import duckdb

from playlista.errors import DatabaseBusyError, DatabaseFileError

# The first bytes of every DuckDB file: a checksum, then this at offset 8.
_MAGIC, _MAGIC_AT = b"DUCK", 8


def connect(path: str | os.PathLike[str], *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the database file.

    Raises
    ------
    DatabaseBusyError
        Another process holds it.
    DatabaseFileError
        Read-only, and there is no database at ``path``; or ``path`` is not a DuckDB file.
    """
    try:
        return duckdb.connect(os.fspath(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DatabaseBusyError(os.fspath(path), exc) from exc
        check_database_file(path, must_exist=read_only)
        raise


def check_free(path: str | os.PathLike[str]) -> None:
    """Raise :class:`DatabaseBusyError` if another process holds the file.

    Opens it read-write, as a run does, so a missing file is made (empty) here.
    """
    connect(path).close()


def check_database_file(path: str | os.PathLike[str], *, must_exist: bool = False) -> None:
    """Raise :class:`DatabaseFileError` if ``path`` exists and is not a DuckDB file, or, with
    ``must_exist``, if there is no file.

    Looks at the file's first bytes only: nothing is opened for writing or locked.
    """
    if not os.path.lexists(path):
        if must_exist:
            raise DatabaseFileError(
                os.fspath(path),
                f"does not exist; make it with `playlista analyze MUSIC --db {path}`",
            )
        return
    if os.path.isdir(path):
        raise DatabaseFileError(os.fspath(path), "is a folder; give --db a file name")
    try:
        with open(path, "rb") as f:
            head = f.read(_MAGIC_AT + len(_MAGIC))
    except OSError as exc:
        raise DatabaseFileError(
            os.fspath(path), f"cannot be read ({exc.strerror or exc}); give --db another file", exc
        ) from exc
    if head and head[_MAGIC_AT:] != _MAGIC:
        raise DatabaseFileError(
            os.fspath(path),
            "is not a DuckDB database; give --db the file `playlista analyze` made, or a new name",
        )
