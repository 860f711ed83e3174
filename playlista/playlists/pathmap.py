"""Rewriting track paths for the device that plays a playlist: ``FROM=TO``, longest wins.

A library analysed at ``/srv/music`` is played from a phone that sees it as
``/storage/emulated/0/Music``, or from a container that mounts it at ``/music``. A path map
replaces the longest matching folder prefix of each path; a path under no prefix has no
place on the device, and :meth:`PathMap.apply` returns None for it.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from playlista.errors import PlaylistError


@dataclass(frozen=True)
class PathMap:
    """Folder prefixes and their replacements, longest prefix first."""

    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, entries: Mapping[str, str] | Iterable[str] | None) -> PathMap:
        """A map from ``{FROM: TO}`` or ``FROM=TO`` strings; FROM made absolute here.

        A later entry for the same FROM replaces an earlier one.
        """
        if entries is None:
            return cls()
        if isinstance(entries, str):
            raise PlaylistError(f"a path map is a list of FROM=TO entries, not {entries!r}")
        if isinstance(entries, Mapping):
            items = [(str(k), str(v)) for k, v in entries.items()]
        else:
            items = [_split(str(entry)) for entry in entries]
        pairs: dict[str, str] = {}
        for source, target in items:
            if not source or not target:
                raise PlaylistError(f"path map {source}={target}: both sides must be given")
            pairs[_folder(os.path.abspath(source))] = _folder(target)
        longest_first = sorted(pairs.items(), key=lambda p: len(p[0]), reverse=True)
        return cls(tuple(longest_first))

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def apply(self, path: str) -> str | None:
        """``path`` under the longest matching prefix's replacement; None if none matches."""
        for source, target in self.pairs:
            if path == source or path.startswith(source.rstrip("/") + "/"):
                rest = path[len(source) :].lstrip("/")
                return posixpath.join(target, rest) if rest else target
        return None

    def entries(self) -> list[str]:
        """The map as ``FROM=TO`` strings, as it is given on the command line."""
        return [f"{source}={target}" for source, target in self.pairs]


def _split(entry: str) -> tuple[str, str]:
    source, sep, target = entry.partition("=")
    if not sep:
        raise PlaylistError(f"path map {entry!r}: expected FROM=TO")
    return source.strip(), target.strip()


def _folder(path: str) -> str:
    """``path`` without a trailing separator (``/`` stays ``/``)."""
    return path.rstrip("/\\") or path[:1]
