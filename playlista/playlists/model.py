"""The records playlists are made from and made of."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

import numpy as np

from playlista.errors import PlaylistError

Method = Literal["rules", "similar", "path", "harmonic", "clusters"]
METHODS: tuple[str, ...] = get_args(Method)
EMBEDDING_MODELS = ("MSD_musicnn", "MTT_musicnn")

# A playlist name becomes a file name: letters, digits and a few separators, no path.
_NAME = re.compile(r"^[\w][\w .,&()+=-]{0,119}$")


def check_name(name: str) -> str:
    """Return ``name`` if it can name a playlist file inside the output folder, else raise."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise PlaylistError(
            f"playlist name {name!r}: use letters, digits, spaces and . , & ( ) + = - _ "
            "(at most 120, no '/' or '..')"
        )
    return name


@dataclass(frozen=True)
class PlaylistSpec:
    """One named playlist to make, as a YAML entry or a command line gives it.

    ``limit`` is the number of tracks (``path``: including both ends); ``where`` filters the
    candidates of every method (see :mod:`playlista.store.where`).
    """

    name: str
    method: Method
    where: str | None = None
    order_by: str | None = None
    limit: int | None = None
    seeds: tuple[str, ...] = ()
    start: str | None = None
    end: str | None = None
    k: int | None = None
    model: str = "MSD_musicnn"
    artist_gap: int = 3
    album_gap: int = 2

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.method not in METHODS:
            raise PlaylistError(f"{self.name}: method is one of {', '.join(METHODS)}")
        if self.model not in EMBEDDING_MODELS:
            raise PlaylistError(f"{self.name}: model is one of {', '.join(EMBEDDING_MODELS)}")
        if self.limit is not None and self.limit < 1:
            raise PlaylistError(f"{self.name}: limit must be at least 1")
        if self.method == "similar" and not self.seeds:
            raise PlaylistError(f"{self.name}: a similar playlist needs seeds")
        if self.method == "path" and not (self.start and self.end):
            raise PlaylistError(f"{self.name}: a path playlist needs start and end")
        if self.method == "path" and self.limit is not None and self.limit < 2:
            raise PlaylistError(f"{self.name}: a path has at least 2 tracks")
        if self.k is not None and self.k < 1:
            raise PlaylistError(f"{self.name}: k must be at least 1")

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> PlaylistSpec:
        """A spec from a YAML mapping; unknown keys are an error, not ignored."""
        if not isinstance(entry, dict):
            raise PlaylistError(f"a playlist entry is a mapping, not {entry!r}")
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(entry) - known):
            raise PlaylistError(f"{entry.get('name', entry)}: unknown keys {unknown}")
        values = dict(entry)
        seeds = values.get("seeds", ())
        values["seeds"] = (seeds,) if isinstance(seeds, str) else tuple(seeds)
        try:
            return cls(**values)
        except TypeError as exc:
            raise PlaylistError(f"{entry.get('name', entry)}: {exc}") from exc

    def parameters(self) -> dict[str, Any]:
        """The spec without its name and method, defaults left out: stored as JSON."""
        defaults = {f.name: f.default for f in fields(self)}
        values = asdict(self)
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in values.items()
            if k not in ("name", "method") and v != defaults[k]
        }


@dataclass(frozen=True)
class Tracks:
    """Library rows playlists are made from, in columns; row ``i`` is one track.

    ``embedding`` is ``(n, d)`` float32, a row of NaN where the track has none; ``bpm``,
    ``duration_s``, ``loudness_lufs``, ``energy``, ``danceability`` are ``(n,)`` with NaN
    for unknown values.
    """

    paths: list[str]
    titles: list[str | None]
    artists: list[str | None]
    albums: list[str | None]
    camelot: list[str | None]
    top_tags: list[list[str]]
    duration_s: np.ndarray
    bpm: np.ndarray
    loudness_lufs: np.ndarray
    energy: np.ndarray
    danceability: np.ndarray
    embedding: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def index_of(self, path: str) -> int:
        """Row of ``path``: the exact path, or the one path ending in ``/path``."""
        try:
            return self.paths.index(path)
        except ValueError:
            pass
        suffix = "/" + path.lstrip("/")
        found = [i for i, p in enumerate(self.paths) if p.endswith(suffix)]
        if len(found) != 1:
            why = "matches no analysed track" if not found else f"matches {len(found)} tracks"
            raise PlaylistError(f"{path!r} {why}")
        return found[0]

    def features(self) -> np.ndarray:
        """``(n, 4)``: bpm, loudness, energy, danceability (NaN where unknown)."""
        return np.column_stack([self.bpm, self.loudness_lufs, self.energy, self.danceability])


@dataclass(frozen=True)
class Playlist:
    """A playlist made from a spec: its tracks in order, as paths.

    ``unmapped`` are the tracks left out of its file because no path mapping covers them.
    """

    name: str
    spec: str
    title: str
    method: Method
    parameters: dict[str, Any] = field(default_factory=dict)
    paths: tuple[str, ...] = ()
    unmapped: tuple[str, ...] = ()
